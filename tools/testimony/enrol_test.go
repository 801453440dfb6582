package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// keyID names a key as the messages do.
var keyID = caseworker.KeyID

// enrolmentFor writes the enrolment file an operator would make for d's
// submit token, naming the organisation key of o.
func enrolmentFor(t *testing.T, d *deployment, o org) (string, *enrol.Enrolment) {
	t.Helper()
	name, err := enrol.KeyName(o.verifier)
	if err != nil {
		t.Fatal(err)
	}
	e := &enrol.Enrolment{Server: d.ts.URL, Pin: d.pin(), LogKey: d.logKey, OrgKeyName: name, Token: d.submitTok, Role: "submit", Name: "caseworker"}
	file := filepath.Join(t.TempDir(), "caseworker.enrol")
	if err := enrol.WriteFile(file, e); err != nil {
		t.Fatal(err)
	}
	return file, e
}

// TestEnrol: init -enrol with the organisation key from the card sets up
// everything; submit, resume and receipts verify then need no token, no
// -pin and no -log-key; TESTIMONY_TOKEN still overrides the stored token.
func TestEnrol(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 1, d.identity))
	file, _ := enrolmentFor(t, d, o)
	cw := newUser(t, "")
	delete(cw.env, "TESTIMONY_TOKEN")

	stdout, stderr, code := cw.run("init", "-enrol", file, "-org-key", o.verifier)
	if code != 0 || !strings.HasPrefix(stdout, "tdk1") {
		t.Fatalf("init -enrol: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	tokenPath := filepath.Join(cw.home, "tokens", api.HostPort(mustURL(t, d.ts.URL)))
	for _, want := range []string{
		"testimony: pinned the organisation key " + keyID(o.verifier) + " in ",
		"testimony: pinned the log key " + keyID(d.logKey) + " in ",
		"testimony: remembered the certificate check for https://" + d.addr + " in ",
		"is ready: 1 mlkem768x25519 recipient(s)",
		"testimony: saved the submit token \"caseworker\" for https://" + d.addr + " in " + tokenPath + "; later commands to this server need no TESTIMONY_TOKEN or -token-file",
		"testimony: warning: the enrolment file " + file + " holds your access token\n",
		"testimony: hint: delete it now: rm " + file + "\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("init -enrol: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout+stderr, d.submitTok) {
		t.Error("init -enrol printed the token")
	}
	fi, err := os.Stat(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("stored token mode %v, want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(tokenPath); string(data) != d.submitTok+"\n" {
		t.Errorf("stored token %q", data)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("init -enrol without -delete-enrol removed the file: %v", err)
	}

	a := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, a)
	if code != 0 || len(lastLine(stdout)) != 32 {
		t.Fatalf("submit after init -enrol: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	if _, stderr, code := cw.run("receipts", "verify", "-server", d.ts.URL); code != 0 {
		t.Fatalf("receipts verify after init -enrol: exit %d\n%s", code, stderr)
	}

	// resume finds the stored token by the entry's server.
	d.mu.Lock()
	d.cutAfterPuts, d.puts = 1, 0
	d.mu.Unlock()
	big := writeFile(t, filepath.Join(t.TempDir(), "b.bin"), make([]byte, 3<<20))
	if _, _, code := cw.run("submit", "-server", d.ts.URL, big); code == 0 {
		t.Fatal("submit through a cut network succeeded")
	}
	d.mu.Lock()
	d.cutAfterPuts = 0
	d.mu.Unlock()
	stdout, stderr, code = cw.run("resume")
	if code != 0 || len(lastLine(stdout)) != 32 {
		t.Fatalf("resume after init -enrol: exit %d, stdout %q\n%s", code, stdout, stderr)
	}

	// TESTIMONY_TOKEN and -token-file override the stored token.
	cw.env["TESTIMONY_TOKEN"] = d.collectTok
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, a); code != 1 || !strings.Contains(stderr, "this token's role does not allow this") {
		t.Fatalf("submit with TESTIMONY_TOKEN set to a collect token: exit %d\n%s", code, stderr)
	}
	delete(cw.env, "TESTIMONY_TOKEN")
	wrong := writeFile(t, filepath.Join(t.TempDir(), "wrong.token"), []byte(d.collectTok+"\n"))
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-token-file", wrong, a); code != 1 || !strings.Contains(stderr, "this token's role does not allow this") {
		t.Fatalf("submit -token-file with a collect token: exit %d\n%s", code, stderr)
	}

	// Another user with -delete-enrol: the file is gone afterwards.
	file2, _ := enrolmentFor(t, d, o)
	cw2 := newUser(t, "")
	delete(cw2.env, "TESTIMONY_TOKEN")
	_, stderr, code = cw2.run("init", "-enrol", file2, "-org-key", o.verifier, "-delete-enrol")
	if code != 0 || !strings.Contains(stderr, "testimony: deleted the enrolment file "+file2+"\n") || strings.Contains(stderr, "delete it now") {
		t.Fatalf("init -enrol -delete-enrol: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(file2); err == nil {
		t.Error("-delete-enrol left the enrolment file")
	}
	if _, stderr, code := cw2.run("submit", "-server", d.ts.URL, a); code != 0 {
		t.Fatalf("submit after -delete-enrol: exit %d\n%s", code, stderr)
	}
}

// TestEnrolRefused: a file naming another organisation key, a changed,
// oversized or unknown-version file, and a pin that does not match the
// server leave no token, no pins and no remembered certificate behind.
func TestEnrolRefused(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 1, d.identity))
	other := newOrg(t, "testimony-org")
	good, e := enrolmentFor(t, d, o)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	otherFile, _ := enrolmentFor(t, d, other)
	wrongPin := *e
	wrongPin.Pin = strings.Repeat("0", 64)
	wrongPinFile := filepath.Join(t.TempDir(), "wrong-pin.enrol")
	if err := enrol.WriteFile(wrongPinFile, &wrongPin); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name, file string
		want       []string
	}{
		{"other organisation", otherFile, []string{
			"testimony: error: the enrolment file " + otherFile + " names the organisation key " + keyID(other.verifier) + ", but your organisation's key is " + keyID(o.verifier) + "\n",
			"testimony: hint: the file was made for another organisation, or changed on its way: do not use it\n",
			"testimony: hint: compare the key with the card you were given in person, and ask your operator for a new enrolment file\n"}},
		{"tampered", writeFile(t, filepath.Join(dir, "tampered.enrol"), []byte(strings.Replace(string(data), d.pin(), d.pin()[:60]+"zzzz", 1))), []string{
			"tampered.enrol: malformed enrolment file: pin is not 64 lowercase hex digits\n",
			"testimony: hint: the file was damaged or changed on its way; do not edit it, ask your operator for a new one\n"}},
		{"unknown field", writeFile(t, filepath.Join(dir, "extra.enrol"), []byte(strings.Replace(string(data), `"role"`, `"org_key": "x", "role"`, 1))), []string{
			"extra.enrol: malformed enrolment file: unknown field \"org_key\"\n"}},
		{"oversized", writeFile(t, filepath.Join(dir, "big.enrol"), append(data, make([]byte, enrol.MaxSize)...)), []string{
			"big.enrol: enrolment file is too large (more than 65536 bytes)\n",
			"testimony: hint: pass the enrolment file (.enrol) your operator made with \"testimony-server token create -enrol\", not another file\n"}},
		{"version 2", writeFile(t, filepath.Join(dir, "v2.enrol"), []byte(strings.Replace(string(data), `"version": 1`, `"version": 2`, 1))), []string{
			"v2.enrol: unknown enrolment file version 2 (this program reads version 1)\n",
			"testimony: hint: the file was made by a newer testimony-server; install the newer testimony your operator uses, or ask for a file this version reads\n"}},
		{"wrong pin", wrongPinFile, []string{
			"server certificate does not match the pinned fingerprint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cw := newUser(t, "")
			delete(cw.env, "TESTIMONY_TOKEN")
			stdout, stderr, code := cw.run("init", "-enrol", tt.file, "-org-key", o.verifier)
			if code != 1 {
				t.Fatalf("exit %d, stdout %q\n%s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, name := range []string{"tokens", "tls"} {
				if des, _ := os.ReadDir(filepath.Join(cw.home, name)); len(des) > 0 {
					t.Errorf("a refused enrolment left %s/%s", name, des[0].Name())
				}
			}
			if tt.name != "wrong pin" {
				if _, err := os.Stat(filepath.Join(cw.home, "trust.json")); err == nil {
					t.Error("a refused enrolment pinned keys in trust.json")
				}
			}
			if strings.Contains(stderr, d.submitTok) {
				t.Error("the token was printed")
			}
		})
	}
}

// TestEnrolCA: an enrolment file with a CA certificate instead of a pin is
// remembered like -ca.
func TestEnrolCA(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 1, d.identity))
	name, _ := enrol.KeyName(o.verifier)
	ca, err := enrol.CanonicalCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.ts.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.enrol")
	e := &enrol.Enrolment{Server: d.ts.URL, CA: string(ca), LogKey: d.logKey, OrgKeyName: name, Token: d.submitTok, Role: "submit", Name: "caseworker"}
	if err := enrol.WriteFile(file, e); err != nil {
		t.Fatal(err)
	}
	cw := newUser(t, "")
	delete(cw.env, "TESTIMONY_TOKEN")
	if _, stderr, code := cw.run("init", "-enrol", file, "-org-key", o.verifier); code != 0 || !strings.Contains(stderr, "remembered the certificate check") {
		t.Fatalf("init -enrol with a CA: exit %d\n%s", code, stderr)
	}
	saved, err := os.ReadFile(filepath.Join(cw.home, "tls", api.HostPort(mustURL(t, d.ts.URL))+".json"))
	if err != nil || !strings.Contains(string(saved), `"ca": "-----BEGIN CERTIFICATE-----`) {
		t.Fatalf("remembered CA: %s, %v", saved, err)
	}
	a := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, a); code != 0 {
		t.Fatalf("submit after init -enrol with a CA: exit %d\n%s", code, stderr)
	}
}
