package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/internal/version"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDev runs the demo deployment and checks that its private key lives
// outside the data directory, that the printed commands name real files, and
// that the tokens work.
func TestDev(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	data := filepath.Join(tmp, "data")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", data}, &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "go run ./tools/testimony app\n") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("dev exited with %d:\n%s\n%s", code, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("dev did not start:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	out := stdout.String()
	if !strings.Contains(stderr.String(), "private keys NEVER touch the") {
		t.Errorf("no warning about the demo key:\n%s", stderr.String())
	}
	if logged := "msg=serving version=" + strconv.Quote(version.String(progName)) + " "; !strings.Contains(stderr.String(), logged) {
		t.Errorf("the start line lacks %q:\n%s", logged, stderr.String())
	}
	m := regexp.MustCompile(`demo keys and tokens \(outside the data directory\): (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no demo directory in:\n%s", out)
	}
	demo := m[1]
	if rel, err := filepath.Rel(data, demo); err != nil || !strings.HasPrefix(rel, "..") {
		t.Fatalf("demo directory %s is inside the data directory %s", demo, data)
	}
	cert := filepath.Join(data, "tls", "cert.pem")
	url := regexp.MustCompile(`-server (https://127\.0\.0\.1:\d+) `).FindStringSubmatch(out)
	for _, want := range []string{
		"go run ./tools/testimony init -enrol " + filepath.Join(demo, "caseworker.enrol") + " -org-key testimony-org+",
		"go run ./tools/testimony submit -server https://127.0.0.1:",
		"TESTIMONY_TOKEN=$(cat " + filepath.Join(demo, "collect.token") + ") go run ./tools/testimony collect -server https://127.0.0.1:",
		" -o bundle\n",
		"export TESTIMONY_HOME=" + filepath.Join(demo, "caseworker-home") + " TESTIMONY_REVIEW_HOME=" + filepath.Join(demo, "reviewer-home") + "\n",
		"go run ./tools/testimony-review open -log-key testimony-log-",
		" -i " + filepath.Join(demo, "reviewer.key") + " -o out bundle\n",
		"TLS certificate SHA-256 fingerprint: ",
		"run after the export and init lines: go run ./tools/testimony app\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if url == nil {
		t.Fatalf("no server URL in:\n%s", out)
	}

	// The secrets are files of mode 0600 in the demo directory; the
	// identity is there, and nowhere in the data directory.
	for _, name := range []string{"reviewer.key", "org.key", "caseworker.enrol", "submit.token", "collect.token"} {
		fi, err := os.Stat(filepath.Join(demo, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", name, fi.Mode().Perm(), err)
		}
	}
	if key, _ := os.ReadFile(filepath.Join(demo, "reviewer.key")); !bytes.Contains(key, []byte("AGE-SECRET-KEY-PQ-1")) {
		t.Fatal("reviewer.key holds no identity, so the search below proves nothing")
	}
	noSecretIn(t, data)
	if strings.Contains(out+stderr.String(), "AGE-SECRET-KEY") {
		t.Error("dev printed the private key")
	}

	pemData, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tok := range []string{"submit.token", "collect.token"} {
		token, err := os.ReadFile(filepath.Join(demo, tok))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", url[1]+"/v1/recipients", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tok, resp.StatusCode)
		}
	}

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dev exited with %d after shutdown:\n%s", code, stderr.String())
	}
	noSecretIn(t, data)
}

func TestDevRefusesNonLoopback(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-addr", "0.0.0.0:8443"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "only on a loopback address") {
		t.Fatalf("stderr: %s", stderr.String())
	}
}

func TestDevRefusesUsedDataDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "something"), nil, 0o600)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-data", dir}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "needs a fresh data directory") {
		t.Fatalf("stderr: %s", stderr.String())
	}
}

// noSecretIn fails if any file under dir contains an age private key, in
// either case (Bech32 allows both).
func noSecretIn(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(bytes.ToUpper(data), []byte("AGE-SECRET-KEY")) {
			t.Errorf("%s contains AGE-SECRET-KEY", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files in %s", dir)
	}
}
