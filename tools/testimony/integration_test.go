package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/server"
	"github.com/testimony-ngo/testimony/store"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// deployment is a real testimony server over TLS on 127.0.0.1 with a bbolt
// file in a temporary directory.
type deployment struct {
	t          *testing.T
	identity   *age.HybridIdentity
	db         *store.DB
	dataDir    string
	srv        *server.Server
	ts         *httptest.Server
	addr       string
	submitTok  string
	collectTok string
	logKey     string

	// rewriteRecipients, if set, edits every GET /v1/recipients answer,
	// as a compromised server would. rewriteLog does the same for the
	// answers of the log routes (path, body) -> body.
	rewriteRecipients func(*api.Recipients)
	rewriteLog        func(path string, body []byte) []byte
	// rewriteReceipt, if set, edits the receipt in the answer to POST
	// /v1/uploads/{id}/finish.
	rewriteReceipt func(*receipt.Receipt)

	mu sync.Mutex
	// cutAfterPuts makes the network fail (connections closed without an
	// answer) once this many chunks were stored; 0 disables it.
	cutAfterPuts int
	puts         int
}

func newDeployment(t *testing.T) *deployment {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	res, err := server.Init(dataDir, strings.NewReader("# reviewers\n"+id.Recipient().String()+"\n"), server.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := server.OpenAdmin(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	submitTok, _, err := admin.CreateToken(server.RoleSubmit, "caseworker")
	if err != nil {
		t.Fatal(err)
	}
	collectTok, _, err := admin.CreateToken(server.RoleCollect, "collector")
	if err != nil {
		t.Fatal(err)
	}
	admin.Close()
	db, err := store.Open(server.DBPath(dataDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := server.New(server.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, identity: id, db: db, dataDir: dataDir, srv: srv, submitTok: submitTok, collectTok: collectTok, logKey: res.LogKey}
	d.start("127.0.0.1:0")
	return d
}

// start serves on addr; restarting on the same address keeps the pins and
// outbox entries (keyed by host and port) valid.
func (d *deployment) start(addr string) {
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		d.t.Fatal(err)
	}
	h := d.srv.Handler()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		cut := d.cutAfterPuts > 0 && d.puts >= d.cutAfterPuts
		d.mu.Unlock()
		if cut {
			panic(http.ErrAbortHandler)
		}
		d.mu.Lock()
		rr, rl, rc := d.rewriteRecipients, d.rewriteLog, d.rewriteReceipt
		d.mu.Unlock()
		switch {
		case rc != nil && strings.HasSuffix(r.URL.Path, "/finish"):
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var body receipt.Receipt
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				panic(err)
			}
			rc(&body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.Code)
			json.NewEncoder(w).Encode(&body)
			return
		case rr != nil && r.URL.Path == "/v1/recipients":
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var body api.Recipients
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				panic(err)
			}
			rr(&body)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(&body)
			return
		case rl != nil && strings.HasPrefix(r.URL.Path, "/v1/log/"):
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			w.WriteHeader(rec.Code)
			w.Write(rl(r.URL.Path, rec.Body.Bytes()))
			return
		}
		sw := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if r.Method == http.MethodPut && sw.code == http.StatusNoContent {
			d.mu.Lock()
			d.puts++
			d.mu.Unlock()
		}
	}))
	ts.Listener.Close()
	ts.Listener = l
	// Handshake failures are what some tests provoke.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	d.ts = ts
	d.addr = l.Addr().String()
	d.t.Cleanup(ts.Close)
}

// restart closes the server and starts it again on the same address.
func (d *deployment) restart() {
	d.ts.CloseClientConnections()
	d.ts.Close()
	d.mu.Lock()
	d.cutAfterPuts, d.puts = 0, 0
	d.mu.Unlock()
	d.start(d.addr)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (d *deployment) pin() string {
	sum := sha256.Sum256(d.ts.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// setNote installs a signed recipients note through the running server's
// admin API, as "testimony-server recipients set" does.
func (d *deployment) setNote(msg []byte) {
	d.t.Helper()
	rec := httptest.NewRecorder()
	d.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/recipients", bytes.NewReader(msg)))
	if rec.Code != http.StatusOK {
		d.t.Fatalf("recipients set: %d %s", rec.Code, rec.Body)
	}
}

// org is an organisation signing key, as made by "testimony-review org init".
type org struct {
	signer, verifier string
}

func newOrg(t *testing.T, name string) org {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return org{skey, vkey}
}

// sign returns the recipients note of version for ids, signed by o.
func (o org) sign(t *testing.T, version uint64, ids ...*age.HybridIdentity) []byte {
	t.Helper()
	var lines []string
	for _, id := range ids {
		lines = append(lines, id.Recipient().String())
	}
	set, err := recipients.Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := recipients.SignNote(set, version, o.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// client is one user of the CLI with its own state directory.
type client struct {
	t    *testing.T
	home string
	env  map[string]string
	// stdin, if set, is the next command's standard input.
	stdin io.Reader
}

func newUser(t *testing.T, token string) *client {
	home := filepath.Join(t.TempDir(), "home")
	return &client{t: t, home: home, env: map[string]string{"TESTIMONY_HOME": home, "TESTIMONY_TOKEN": token}}
}

func (c *client) run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	cl := &cli{
		stdin:  c.stdin,
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return c.env[k] },
		now:    time.Now,
		retry:  retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3},
		sleep:  retry.Sleep,
	}
	code = cl.main(context.Background(), args)
	return out.String(), errb.String(), code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestEndToEnd submits over real TLS, loses the server half way through
// the upload, resumes after a restart, collects into a bundle, and
// decrypts what was collected.
func TestEndToEnd(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	dir := t.TempDir()
	video := make([]byte, 3<<20+12345)
	rand.Read(video)
	videoPath := writeFile(t, filepath.Join(dir, "interview.mp4"), video)
	notesPath := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("marker-7f3a: the crossing was at night\n"))

	// The network dies after two chunks are stored.
	d.cutAfterPuts = 2
	stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(),
		"-case", "NK-2026-041", "-lang", "ko", "-date", "2026-11-27", "-consent", "research", videoPath, notesPath)
	if code != 1 || stdout != "" {
		t.Fatalf("interrupted submit: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "testimony: hint: check the network connection") || !strings.Contains(stderr, "testimony resume") {
		t.Errorf("interrupted submit does not say how to go on:\n%s", stderr)
	}
	if !strings.Contains(stderr, "first connection to "+d.addr) {
		t.Errorf("first use of the server was not announced:\n%s", stderr)
	}
	stdout, _, _ = cw.run("status")
	if !strings.Contains(stdout, "outbox: 1") || !strings.Contains(stdout, "started") {
		t.Errorf("status after the interruption:\n%s", stdout)
	}

	// The server comes back; resume sends only what is missing, with the
	// TLS pin remembered from submit. The cut stops new requests after
	// two chunks are stored; a chunk already on its way beside them may
	// still arrive.
	d.mu.Lock()
	before := d.puts
	d.mu.Unlock()
	d.restart()
	stdout, stderr, code = cw.run("resume")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	id := lastLine(stdout)
	if !ids.ValidSubmission(id) || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("resume printed %q, want one submission id", stdout)
	}
	rec, err := os.ReadFile(filepath.Join(cw.home, "receipts", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Size int64 }
	json.Unmarshal(rec, &r)
	chunks := int((r.Size + server.ChunkSize - 1) / server.ChunkSize)
	if chunks < 4 || before < 2 || d.puts != chunks-before {
		t.Errorf("resume stored %d chunks of %d after %d were stored, want only the %d missing ones", d.puts, chunks, before, chunks-before)
	}
	des, _ := os.ReadDir(filepath.Join(cw.home, "outbox"))
	for _, de := range des {
		if de.Name() != ".lock" {
			t.Errorf("outbox still holds %s", de.Name())
		}
	}
	stdout, _, _ = cw.run("status")
	if !strings.Contains(stdout, "outbox: empty") || !strings.Contains(stdout, id) {
		t.Errorf("status after resume:\n%s", stdout)
	}

	// A second, uninterrupted submission prints its id as the last line.
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), notesPath)
	if code != 0 || !ids.ValidSubmission(lastLine(stdout)) {
		t.Fatalf("submit: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	id2 := lastLine(stdout)

	// Collect with the certificate as CA instead of a pin.
	col := newUser(t, d.collectTok)
	caFile := writeFile(t, filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.ts.Certificate().Raw}))
	bundleDir := filepath.Join(t.TempDir(), "bundle")
	stdout, stderr, code = col.run("collect", "-server", d.ts.URL, "-ca", caFile, "-o", bundleDir)
	if code != 0 || !strings.Contains(stdout, "bundled log entries 0 to 1: 2 submission(s)") || !strings.Contains(stdout, "(2 downloaded, 0 already there)") {
		t.Fatalf("collect: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	// Again into the same directory: nothing new since the last bundle.
	stdout, stderr, code = col.run("collect", "-server", d.ts.URL, "-ca", caFile, "-o", bundleDir)
	if code != 0 || !strings.Contains(stdout, "nothing new in the log since size 2") ||
		!strings.Contains(stderr, "testimony: replaced the bundle.json in "+bundleDir+", which covered log entries 0 to 1") ||
		!strings.Contains(stderr, `run "testimony collect -since 0"`) {
		t.Fatalf("second collect: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	// Everything again, from the start of the log: nothing downloaded twice.
	stdout, stderr, code = col.run("collect", "-server", d.ts.URL, "-ca", caFile, "-since", "0", "-o", bundleDir)
	if code != 0 || !strings.Contains(stdout, "(0 downloaded, 2 already there)") {
		t.Fatalf("collect -since 0: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	b, err := bundle.Read(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	e1, ok1 := b.Lookup(id)
	_, ok2 := b.Lookup(id2)
	if !ok1 || !ok2 || len(b.Submissions) != 2 || len(b.Leaves) != 2 || b.LogKey != d.logKey {
		t.Fatalf("bundle lists %+v, want %s and %s", b.Submissions, id, id2)
	}
	if e1.Index != 0 {
		t.Errorf("first submission is at log index %d, want 0", e1.Index)
	}
	// What the reviewer will decrypt is exactly what was submitted.
	f, err := os.Open(filepath.Join(bundleDir, id+".age"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain, err := age.Decrypt(f, d.identity)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	os.Mkdir(out, 0o700)
	res, err := envelope.Extract(plain, out, envelope.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Manifest; m == nil || m.Case != "NK-2026-041" || m.Language != "ko" || m.InterviewDate != "2026-11-27" || len(m.Files) != 2 {
		t.Errorf("manifest = %+v", res.Manifest)
	}
	// The manifest is signed with the device key that init prints.
	deviceKey, _, code := cw.run("init")
	if code != 0 || res.SignatureStatus != envelope.SigValid || res.Signature == nil || res.Signature.Key != strings.TrimSpace(deviceKey) {
		t.Errorf("envelope signature %v %+v, device key %q", res.SignatureStatus, res.Signature, deviceKey)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "interview.mp4")); !bytes.Equal(got, video) {
		t.Error("decrypted interview.mp4 differs from the submitted file")
	}

	// Nothing plaintext reached the server's store.
	if raw, err := os.ReadFile(server.DBPath(d.dataDir)); err == nil && bytes.Contains(raw, []byte("marker-7f3a")) {
		t.Error("plaintext marker found in the server's database")
	}
}

// TestChangedKeysRefused: if the server's keys differ from the pin, submit
// refuses before encrypting anything, until the user accepts the change.
func TestChangedKeysRefused(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
		t.Fatalf("first submit failed:\n%s", stderr)
	}

	// Pretend the pin came from a different key, as if the server had
	// been replaced since.
	pinFile := filepath.Join(cw.home, "pins", api.HostPort(mustURL(t, d.ts.URL))+".json")
	data, err := os.ReadFile(pinFile)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateHybridIdentity()
	data = bytes.Replace(data, []byte(d.identity.Recipient().String()), []byte(other.Recipient().String()), 1)
	writeFile(t, pinFile, data)

	stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || stdout != "" {
		t.Fatalf("submit with changed keys: exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{
		"testimony: error: the recipients of " + api.HostPort(mustURL(t, d.ts.URL)) + " changed since they were pinned",
		"compromised",
		"testimony: hint: verify the new keys with your organisation out of band",
		"-accept-new-recipients",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if l, _ := os.ReadDir(filepath.Join(cw.home, "outbox")); len(l) > 1 {
		t.Errorf("something was encrypted to unconfirmed keys: %v", l)
	}

	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-accept-new-recipients", file)
	if code != 0 || !ids.ValidSubmission(lastLine(stdout)) || !strings.Contains(stderr, "accepted new keys") {
		t.Fatalf("submit -accept-new-recipients: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
}

func TestWrongTokenAndPin(t *testing.T) {
	d := newDeployment(t)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))

	_, stderr, code := newUser(t, "tm1_wrongwrongwrongwrongwrongwrongwr").run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "testimony: hint: the access token was refused") {
		t.Errorf("wrong token: exit %d\n%s", code, stderr)
	}

	_, stderr, code = newUser(t, d.collectTok).run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || !strings.Contains(stderr, "403") {
		t.Errorf("collect token used to submit: exit %d\n%s", code, stderr)
	}

	_, stderr, code = newUser(t, d.submitTok).run("submit", "-server", d.ts.URL, "-pin", strings.Repeat("0", 64), file)
	if code != 1 || !strings.Contains(stderr, "does not match the pinned fingerprint") ||
		!strings.Contains(stderr, "hint: do not go on: check the -pin value with the operator through another channel than this server") ||
		strings.Contains(stderr, "presented") || strings.Contains(strings.ToLower(stderr), d.pin()[:16]) {
		t.Errorf("wrong pin: exit %d\n%s", code, stderr)
	}

	_, stderr, code = newUser(t, d.submitTok).run("submit", "-server", d.ts.URL, file)
	if code != 1 || !strings.Contains(stderr, "hint: if "+d.addr+" uses its own certificate, pass -ca FILE or -pin SHA256") {
		t.Errorf("self-signed server without -ca or -pin: exit %d\n%s", code, stderr)
	}
}

func TestLocalRecipientsFile(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "a.txt"), []byte("testimony"))
	recips := writeFile(t, filepath.Join(dir, "recipients.txt"), []byte("# org key\n"+d.identity.Recipient().String()+"\n"))
	stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-recipients", recips, file)
	if code != 0 || !ids.ValidSubmission(lastLine(stdout)) {
		t.Fatalf("submit -recipients: exit %d\n%s", code, stderr)
	}
	x, _ := age.GenerateX25519Identity()
	wrongType := writeFile(t, filepath.Join(dir, "x25519.txt"), []byte(x.Recipient().String()+"\n"))
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-recipients", wrongType, file)
	if code != 1 || !strings.Contains(stderr, "the recipients file is of type X25519, but the server accepts only mlkem768x25519") {
		t.Errorf("submit with X25519 recipients to a hybrid server: exit %d\n%s", code, stderr)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := api.ParseServer(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
