package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/server"
)

// lockedBuffer is an io.Writer a running command and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// initData initializes a deployment in a new directory, with the
// organisation key orgKey if not empty, and returns it and the log key.
func initData(t *testing.T, orgKey string) (dir, logKey string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	res, err := server.Init(dir, strings.NewReader(id.Recipient().String()+"\n"), server.InitOptions{OrgKey: orgKey})
	if err != nil {
		t.Fatal(err)
	}
	return dir, res.LogKey
}

// TestTokenCreateEnrol: token create -enrol, run while serve runs, writes
// a 0600 enrolment file with the token (which works), the URL, the pin of
// the self-signed certificate, the log key and the organisation key's
// name, prints no token, and never overwrites a file.
func TestTokenCreateEnrol(t *testing.T) {
	orgKey := newOrgKey(t)
	data, logKey := initData(t, orgKey)

	_, sout, _ := serveInProcess(t, data)

	file := filepath.Join(t.TempDir(), "laptop-3.enrol")
	stdout, stderr, code := runCmd(t, "token", "create", "-data", data, "-role", "submit", "-name", "laptop-3",
		"-enrol", file, "-url", "https://intake.example.org:8443/")
	if code != 0 || stdout != "" {
		t.Fatalf("token create -enrol: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"created submit token ", " (laptop-3) and wrote it to the enrolment file " + file + " (mode 0600)",
		"it pins the server's certificate from the self-signed certificate " + server.SelfSignedCertPath(data),
		"hint: hand the file to the caseworker in person (it holds the token), with the organisation key card; they run: testimony init -enrol " + file + " -org-key KEY",
		"hint: then delete your copy: rm " + file,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "tm1_") {
		t.Errorf("the token was printed:\n%s", stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("enrolment file mode %v, want 0600", fi.Mode().Perm())
	}
	e, err := enrol.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(server.SelfSignedCertPath(data))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	orgName, _ := enrol.KeyName(orgKey)
	want := enrol.Enrolment{
		Server: "https://intake.example.org:8443", Pin: server.Fingerprint(b.Bytes),
		LogKey: logKey, OrgKeyName: orgName, Token: e.Token, Role: "submit", Name: "laptop-3",
	}
	if *e != want {
		t.Errorf("enrolment file:\n got %+v\nwant %+v", *e, want)
	}
	if !strings.Contains(sout.String(), "fingerprint: "+want.Pin) {
		t.Errorf("the pin is not the fingerprint serve printed:\n%s", sout.String())
	}
	if strings.Contains(string(mustRead(t, file)), "PRIVATE") {
		t.Error("the enrolment file holds a private key")
	}
	// The token in the file is the one the server knows.
	admin, err := server.OpenAdmin(data)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	tokens, err := admin.Tokens()
	if err != nil || len(tokens) != 1 || tokens[0].Name != "laptop-3" || !strings.HasPrefix(e.Token, "tm1_") {
		t.Fatalf("tokens: %+v, %v", tokens, err)
	}

	// An existing file is refused before any token is made.
	before := mustRead(t, file)
	_, stderr, code = runCmd(t, "token", "create", "-data", data, "-role", "submit", "-name", "laptop-4",
		"-enrol", file, "-url", "https://intake.example.org")
	if code != 1 || !strings.Contains(stderr, "error: enrolment file "+file+" already exists") {
		t.Fatalf("second token create -enrol: exit %d\n%s", code, stderr)
	}
	if !bytes.Equal(mustRead(t, file), before) {
		t.Error("the enrolment file was changed")
	}
	if tokens, _ := admin.Tokens(); len(tokens) != 1 {
		t.Errorf("a refused enrolment made a token: %+v", tokens)
	}
}

// TestTokenCreateEnrolRefused: without an organisation key, -url or a
// usable -pin/-ca, no file and no token are made.
func TestTokenCreateEnrolRefused(t *testing.T) {
	noOrg, _ := initData(t, "")
	orgKey := newOrgKey(t)
	withOrg, _ := initData(t, orgKey)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	tests := []struct {
		name, data string
		args       []string
		err, hint  string
	}{
		{"no org key", noOrg, []string{"-url", "https://intake.example.org"},
			"error: this deployment has no organisation key, and an enrolment file must name it",
			"hint: the organisation key is given at init (testimony-server init -org-key)"},
		{"no url", withOrg, nil,
			"error: -enrol needs -url, the server's address as caseworkers reach it", "hint: add e.g. -url https://intake.example.org"},
		{"http url", withOrg, []string{"-url", "http://intake.example.org"},
			`error: -url: server "http://intake.example.org" must start with https://`, "hint: give the address caseworkers connect to"},
		{"bad pin", withOrg, []string{"-url", "https://intake.example.org", "-pin", "abcd"},
			`error: -pin "abcd" is not a certificate fingerprint`, "hint: give the SHA-256 of the server certificate"},
		{"key as ca", withOrg, []string{"-url", "https://intake.example.org", "-ca", keyFile},
			`holds a "EC PRIVATE KEY" block; want only CERTIFICATE blocks`, "hint: give the PEM certificate of the CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.enrol")
			args := append([]string{"token", "create", "-data", tt.data, "-role", "submit", "-name", "x", "-enrol", file}, tt.args...)
			stdout, stderr, code := runCmd(t, args...)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.err) || !strings.Contains(stderr, tt.hint) {
				t.Fatalf("exit %d, stdout %q\n%s", code, stdout, stderr)
			}
			if _, err := os.Stat(file); err == nil {
				t.Error("a refused enrolment wrote a file")
			}
			out, _, _ := runCmd(t, "token", "list", "-data", tt.data)
			if strings.Contains(out, "submit") {
				t.Errorf("a refused enrolment made a token:\n%s", out)
			}
		})
	}
	if _, stderr, code := runCmd(t, "token", "create", "-data", withOrg, "-role", "submit", "-name", "y", "-url", "https://intake.example.org"); code != 1 ||
		!strings.Contains(stderr, "error: -url, -pin and -ca need -enrol FILE") {
		t.Fatalf("-url without -enrol: exit %d\n%s", code, stderr)
	}
}

// newOrgKey returns a new organisation verifier key.
func newOrgKey(t *testing.T) string {
	_, vkey, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTokenCreateEnrolCA: -ca puts the CA in canonical PEM into the file,
// without the comments of the operator's file.
func TestTokenCreateEnrolCA(t *testing.T) {
	data, _ := initData(t, newOrgKey(t))
	if _, err := server.SelfSignedCertificate(data, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	certPEM := mustRead(t, server.SelfSignedCertPath(data))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, append([]byte("# our CA\n"), certPEM...), 0o600)
	file := filepath.Join(t.TempDir(), "x.enrol")
	_, stderr, code := runCmd(t, "token", "create", "-data", data, "-role", "collect", "-name", "collector",
		"-enrol", file, "-url", "https://127.0.0.1:8443", "-ca", caFile)
	if code != 0 || !strings.Contains(stderr, "it pins the server's certificate from the CA certificate "+caFile) {
		t.Fatalf("token create -enrol -ca: exit %d\n%s", code, stderr)
	}
	e, err := enrol.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	if e.CA != string(certPEM) || e.Pin != "" || e.Role != "collect" {
		t.Errorf("enrolment: %+v", e)
	}
}
