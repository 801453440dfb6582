// Package e2e runs the three real binaries against each other: the server
// over real TLS on 127.0.0.1 with a real bbolt file, the caseworker's and
// collector's CLI, and the reviewer's CLI.
package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once for all tests in this package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "testimony-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir,
		"../../server/cmd/testimony-server", "../../server/cmd/testimony-dev", "../testimony", "../testimony-review", "filippo.io/age/cmd/age")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// env is one deployment: a data directory, a reviewer identity, tokens, and
// a caseworker home.
type env struct {
	t         *testing.T
	dir       string
	data      string
	identity  string
	recips    string
	submitTok string
	collTok   string
	logKey    string
	orgKey    string // the organisation's signing key file, when the deployment has one
	orgPub    string // its verifier key
	home      string
	addr      string
	server    *exec.Cmd
	serverOut *bytes.Buffer
	allOut    bytes.Buffer // everything the server ever printed, across restarts
}

func newEnv(t *testing.T) *env { return setUp(t, false) }

// newOrgEnv is a deployment as the README's walk-through makes it: the
// recipients are signed by an organisation key the server was told about.
func newOrgEnv(t *testing.T) *env { return setUp(t, true) }

func setUp(t *testing.T, withOrg bool) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, data: filepath.Join(dir, "data"), home: filepath.Join(dir, "home"),
		identity: filepath.Join(dir, "reviewer.key"), recips: filepath.Join(dir, "recipients.txt")}
	out := e.run(nil, bin("testimony-review"), "keygen", "-o", e.identity)
	if err := os.WriteFile(e.recips, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "age1pq1") || strings.Count(out, "\n") != 1 {
		t.Fatalf("keygen printed %q, want one age1pq1 recipient line", out)
	}
	initArgs := []string{"init", "-data", e.data, "-recipients", e.recips}
	var note string
	if withOrg {
		e.orgKey = filepath.Join(dir, "org.key")
		e.orgPub = strings.TrimSpace(e.run(nil, bin("testimony-review"), "org", "init", "-o", e.orgKey))
		note = writeFile(t, filepath.Join(dir, "recipients.note"),
			[]byte(e.run(nil, bin("testimony-review"), "recipients", "sign", "-org", e.orgKey, "-version", "1", e.recips)))
		initArgs = append(initArgs, "-org-key", e.orgPub)
	}
	initOut := e.run(nil, bin("testimony-server"), initArgs...)
	if withOrg {
		e.run(nil, bin("testimony-server"), "recipients", "set", "-data", e.data, note)
	}
	for _, line := range strings.Split(initOut, "\n") {
		if k, ok := strings.CutPrefix(line, "log key: "); ok {
			e.logKey = k
		}
	}
	if e.logKey == "" {
		t.Fatalf("testimony-server init printed no log key:\n%s", initOut)
	}
	e.submitTok = strings.TrimSpace(e.run(nil, bin("testimony-server"), "token", "create", "-data", e.data, "-role", "submit", "-name", "laptop"))
	e.collTok = strings.TrimSpace(e.run(nil, bin("testimony-server"), "token", "create", "-data", e.data, "-role", "collect", "-name", "collector"))
	e.addr = freeAddr(t)
	e.start()
	t.Cleanup(func() {
		if e.server != nil && e.server.Process != nil {
			e.server.Process.Kill()
			e.server.Wait()
		}
	})
	return e
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs a command to completion and returns its stdout; it fails the
// test on a non-zero exit.
func (e *env) run(extraEnv []string, name string, args ...string) string {
	e.t.Helper()
	out, err := e.runErr(extraEnv, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) runErr(extraEnv []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_REVIEW_HOME="+filepath.Join(e.dir, "review"))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func (e *env) start() {
	e.t.Helper()
	e.serverOut = &bytes.Buffer{}
	cmd := exec.Command(bin("testimony-server"), "serve", "-data", e.data, "-addr", e.addr, "-tls-self-signed")
	cmd.Stdout = io.MultiWriter(e.serverOut, &e.allOut)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.server = cmd
	client := e.httpClient(10 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if client != nil {
			resp, err := client.Get("https://" + e.addr + "/v1/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
		client = e.httpClient(10 * time.Second)
	}
	e.t.Fatalf("server did not become ready:\n%s", e.serverOut.String())
}

func (e *env) kill() {
	e.t.Helper()
	e.server.Process.Signal(syscall.SIGKILL)
	e.server.Wait()
	e.server = nil
}

func (e *env) certFile() string { return filepath.Join(e.data, "tls", "cert.pem") }

// httpClient trusts only the server's self-signed certificate; nil until the
// certificate exists.
func (e *env) httpClient(timeout time.Duration) *http.Client {
	pem, err := os.ReadFile(e.certFile())
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func (e *env) url() string { return "https://" + e.addr }

func (e *env) submit(extra []string, files ...string) string {
	e.t.Helper()
	args := append([]string{"submit", "-server", e.url(), "-ca", e.certFile()}, extra...)
	out := e.run([]string{"TESTIMONY_TOKEN=" + e.submitTok}, bin("testimony"), append(args, files...)...)
	return lastLine(out)
}

func (e *env) collect(bundle string) {
	e.t.Helper()
	e.run([]string{"TESTIMONY_TOKEN=" + e.collTok}, bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-o", bundle)
}

func (e *env) open(bundle, out string) string {
	e.t.Helper()
	return e.run(nil, bin("testimony-review"), "open", "-log-key", e.logKey, "-i", e.identity, "-o", out, bundle)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func pngImage(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		for y := 0; y < 48; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameFile fails unless the opened file equals want byte for byte.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("opened file missing: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what was submitted (%d bytes, want %d)", path, len(got), len(want))
	}
}

// TestCoreLoop submits three files, kills the server with SIGKILL in the
// middle of a chunked upload, restarts it, resumes, collects, opens, and
// compares every file byte for byte.
func TestCoreLoop(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	korean := []byte("국경경비대가 강을 건너던 사람들에게 총을 쐈습니다.\n2019년 겨울, 혜산 근처.\n")
	random5 := randomBytes(t, 5<<20)
	img := pngImage(t)
	big := randomBytes(t, 40<<20)

	idKorean := e.submit([]string{"-case", "K-1", "-lang", "ko", "-consent", "documentation"}, writeFile(t, filepath.Join(src, "증언.txt"), korean))
	idImage := e.submit(nil, writeFile(t, filepath.Join(src, "map.png"), img))

	// The 5 MiB file and a 40 MiB file go up together, throttled so that the
	// server can be killed while the upload is in flight.
	rndPath := writeFile(t, filepath.Join(src, "random.bin"), random5)
	bigPath := writeFile(t, filepath.Join(src, "big.bin"), big)
	client := exec.Command(bin("testimony"), "submit", "-server", e.url(), "-ca", e.certFile(), "-limit-rate", "4194304", rndPath, bigPath)
	client.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_TOKEN="+e.submitTok)
	var clientOut bytes.Buffer
	client.Stdout, client.Stderr = &clientOut, &clientOut
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUploadInFlight(t, filepath.Join(e.home, "outbox"))
	time.Sleep(1500 * time.Millisecond)
	e.kill()
	client.Process.Signal(syscall.SIGKILL)
	client.Wait()
	if strings.Contains(clientOut.String(), "\n") && len(receiptFiles(t, e.home)) > 2 {
		t.Fatalf("the throttled upload finished before the server was killed; output:\n%s", clientOut.String())
	}

	e.start()
	resumed := e.run([]string{"TESTIMONY_TOKEN=" + e.submitTok}, bin("testimony"), "resume", "-server", e.url(), "-ca", e.certFile())
	idBig := lastLine(resumed)
	if len(idBig) != 32 {
		t.Fatalf("resume printed %q, want a submission id", resumed)
	}
	if got := len(receiptFiles(t, e.home)); got != 3 {
		t.Fatalf("%d receipts after resume, want 3", got)
	}

	bundle := filepath.Join(e.dir, "bundle")
	e.collect(bundle)
	out := filepath.Join(e.dir, "out")
	summary := e.open(bundle, out)
	for _, id := range []string{idKorean, idImage, idBig} {
		if !strings.Contains(summary, id) {
			t.Errorf("open summary does not mention %s:\n%s", id, summary)
		}
	}
	sameFile(t, filepath.Join(out, idKorean, "증언.txt"), korean)
	sameFile(t, filepath.Join(out, idImage, "map.png"), img)
	sameFile(t, filepath.Join(out, idBig, "random.bin"), random5)
	sameFile(t, filepath.Join(out, idBig, "big.bin"), big)

	var m struct {
		Case     string `json:"case"`
		Language string `json:"language"`
	}
	data, err := os.ReadFile(filepath.Join(out, idKorean, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Case != "K-1" || m.Language != "ko" {
		t.Fatalf("manifest of the Korean testimony: %s (%v)", data, err)
	}

	// Collecting everything again and opening it changes nothing and loses
	// nothing.
	e.run([]string{"TESTIMONY_TOKEN=" + e.collTok}, bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-since", "0", "-o", bundle)
	again := e.open(bundle, out)
	if strings.Count(again, "already open") != 3 {
		t.Fatalf("second open should report three submissions already open:\n%s", again)
	}
}

// waitForUploadInFlight waits until the client has created an upload on the
// server for a complete outbox entry: one whose metadata records it, next
// to its ciphertext N.age (an upload may begin while N.age.part is still
// being written, and would then be discarded by a resume).
func waitForUploadInFlight(t *testing.T, outbox string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(outbox)
		for _, ent := range entries {
			if !strings.HasSuffix(ent.Name(), ".json") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(outbox, ent.Name()))
			_, errAge := os.Stat(filepath.Join(outbox, strings.TrimSuffix(ent.Name(), ".json")+".age"))
			if err == nil && errAge == nil && bytes.Contains(data, []byte(`"upload_id":"`)) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the client never started a chunked upload")
}

func receiptFiles(t *testing.T, home string) []string {
	entries, err := os.ReadDir(filepath.Join(home, "receipts"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range entries {
		if strings.HasSuffix(ent.Name(), ".json") {
			names = append(names, ent.Name())
		}
	}
	return names
}

// TestNoPlaintextOnServer submits a file with a unique marker and proves the
// marker appears nowhere in the data directory or in the server's output,
// and that no private key ever reaches the data directory.
func TestNoPlaintextOnServer(t *testing.T) {
	e := newEnv(t)
	marker := fmt.Sprintf("MARKER-%x", randomBytes(t, 16))
	src := writeFile(t, filepath.Join(t.TempDir(), "statement.txt"),
		[]byte(strings.Repeat("testimony line "+marker+"\n", 200)))
	e.submit([]string{"-case", marker}, src)
	e.kill()
	for _, needle := range []string{marker, "AGE-SECRET-KEY"} {
		err := filepath.WalkDir(e.data, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(data, []byte(needle)) {
				t.Errorf("%s found in %s", needle, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.allOut.String(), needle) {
			t.Errorf("%s found in the server's output", needle)
		}
	}
	for _, secret := range []string{e.submitTok, e.collTok} {
		if strings.Contains(e.allOut.String(), secret) {
			t.Error("a token appears in the server's output")
		}
	}
}

// TestAgeInterop posts a file made by plain tar and the age tool built from
// filippo.io/age with a one-shot request, then collects and opens it.
func TestAgeInterop(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	content := []byte("made with tar and age, no manifest\n")
	writeFile(t, filepath.Join(src, "note.txt"), content)
	tarPath := filepath.Join(e.dir, "plain.tar")
	e.run(nil, "tar", "-C", src, "-cf", tarPath, "note.txt")
	agePath := filepath.Join(e.dir, "plain.tar.age")
	e.run(nil, bin("age"), "-R", e.recips, "-o", agePath, tarPath)

	// Exactly the request docs/api.md gives for curl users.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed for the one-shot interop test: apt-get install -y curl")
	}
	out := e.run(nil, curl, "--silent", "--show-error", "--fail-with-body",
		"--cacert", e.certFile(), "-H", "Authorization: Bearer "+e.submitTok,
		"--data-binary", "@"+agePath, e.url()+"/v1/submissions")
	var receipt struct {
		ID     string `json:"id"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(out), &receipt); err != nil || len(receipt.ID) != 32 {
		t.Fatalf("one-shot upload with curl answered %q (%v)", out, err)
	}

	bundle := filepath.Join(e.dir, "bundle")
	e.collect(bundle)
	opened := filepath.Join(e.dir, "out")
	summary := e.open(bundle, opened)
	if !strings.Contains(summary, "no manifest") {
		t.Errorf("open should mark the plain tar as having no manifest:\n%s", summary)
	}
	sameFile(t, filepath.Join(opened, receipt.ID, "note.txt"), content)
	// The bundle's ciphertext is a standard age file: the age tool opens it.
	plain := e.run(nil, bin("age"), "-d", "-i", e.identity, filepath.Join(bundle, receipt.ID+".age"))
	if !strings.Contains(plain, "made with tar and age") {
		t.Error("the age tool could not decrypt the bundled ciphertext")
	}
}
