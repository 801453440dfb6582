package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServerLeavesNoTrace runs the server binary through a session of
// submissions, resumptions, collection and refusals, with a distinctive
// User-Agent on every request, a plaintext marker inside the submitted
// files, bad tokens, a failed TLS handshake and a plain-HTTP request, and
// then searches everything the server wrote (stdout and stderr, across a
// restart) and every file it created for the client's address and ports,
// the User-Agent, the tokens and the marker. It also checks that every
// file and directory the server created is owner-only.
func TestServerLeavesNoTrace(t *testing.T) {
	e := newEnv(t)
	marker := fmt.Sprintf("PLAINTEXT-MARKER-%x", randomBytes(t, 8))
	userAgent := fmt.Sprintf("UA-MARKER-%x", randomBytes(t, 8))
	badToken := "tm1_" + strings.Repeat("X", 32)
	c := newAPIClient(t, e)
	c.userAgent = userAgent

	// A failed TLS handshake first: net/http logs those with the client's
	// address unless the server redacts it.
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	old := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err := old.Handshake(); err == nil {
		t.Fatal("the server accepted TLS 1.1")
	}
	tlsClientAddr := raw.LocalAddr().String()
	raw.Close()
	// Plain HTTP to the TLS port.
	plain, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	plainClientAddr := plain.LocalAddr().String()
	fmt.Fprintf(plain, "GET /v1/health HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n", userAgent)
	plain.Read(make([]byte, 512))
	plain.Close()

	// The caseworker's CLI, with the marker in the file and the metadata.
	src := writeFile(t, filepath.Join(t.TempDir(), "statement.txt"), []byte(strings.Repeat(marker+" said this.\n", 100)))
	e.submit([]string{"-case", marker}, src)

	// The API directly: one-shot, chunked with a resumption, refusals.
	file := c.encrypt(t, 2*apiChunkSize+7, 1)
	if _, err := c.oneShot(c.encrypt(t, 1000, 2)); err != nil {
		t.Fatal(err)
	}
	id, err := c.create(file)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := c.putChunk(id, 0, chunkAt(file, 0)); err != nil || code != http.StatusNoContent {
		t.Fatalf("chunk 0: %d %s %v", code, body, err)
	}
	e.kill()
	e.start()
	for i := 1; i < apiChunks(len(file)); i++ {
		if code, body, err := c.putChunk(id, i, chunkAt(file, i)); err != nil || code != http.StatusNoContent {
			t.Fatalf("chunk %d: %d %s %v", i, code, body, err)
		}
	}
	if code, body, err := c.do("POST", "/v1/uploads/"+id+"/finish", c.submit, nil); err != nil || code != http.StatusCreated {
		t.Fatalf("finish: %d %s %v", code, body, err)
	}
	for _, r := range []struct {
		method, path, token string
		body                []byte
		status              int
	}{
		{"GET", "/v1/recipients", badToken, nil, 401},
		{"GET", "/v1/recipients", "", nil, 401},
		{"GET", "/v1/submissions", c.submit, nil, 403},
		{"POST", "/v1/uploads", c.submit, []byte(`{"size":1,"name":"` + marker + `"}`), 400},
		{"POST", "/v1/submissions", c.submit, []byte(marker), 422},
		{"GET", "/v1/uploads/" + strings.Repeat("0", 32), c.submit, nil, 404},
	} {
		if code, body, err := c.do(r.method, r.path, r.token, r.body); err != nil || code != r.status {
			t.Fatalf("%s %s: %d %s %v, want %d", r.method, r.path, code, body, err, r.status)
		}
	}
	subs, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, s := range subs {
		want[s.ID] = s.SHA256
	}
	c.checkDownloads(t, want)
	e.collect(filepath.Join(t.TempDir(), "bundle"))

	checkOwnerOnly(t, e.data) // with the admin socket in place
	e.server.Process.Signal(syscall.SIGTERM)
	if err := e.server.Wait(); err != nil {
		t.Fatalf("server after SIGTERM: %v", err)
	}
	e.server = nil
	checkOwnerOnly(t, e.data)

	output := e.allOut.String()
	if !strings.Contains(output, "status=401") || !strings.Contains(output, "TLS handshake error from [client]") {
		t.Fatalf("the server's output lacks the expected log lines:\n%s", output)
	}
	var files bytes.Buffer
	err = filepath.WalkDir(e.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		files.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The server's own address is in its output by design ("listening
	// on"); a client's never is.
	withoutOwn := strings.ReplaceAll(output, e.addr, "[server]")
	clients := append(c.localAddrs(), tlsClientAddr, plainClientAddr)
	if len(clients) < 4 {
		t.Fatalf("only %d client connections recorded", len(clients))
	}
	for where, text := range map[string]string{"the server's output": withoutOwn, "the data directory": files.String()} {
		if strings.Contains(text, "127.0.0.1") {
			t.Errorf("%s holds the client address 127.0.0.1", where)
		}
		for _, addr := range clients {
			_, port, _ := net.SplitHostPort(addr)
			if strings.Contains(text, ":"+port) {
				t.Errorf("%s holds the client address %s", where, addr)
			}
		}
		for name, secret := range map[string]string{
			"the User-Agent": userAgent, "the submit token": e.submitTok, "the collect token": e.collTok,
			"the rejected token": badToken, "the plaintext marker": marker, "a private key": "AGE-SECRET-KEY",
		} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}
	t.Logf("searched %d bytes of server output and %d bytes of files for %d client addresses, the User-Agent, 3 tokens and the marker",
		len(output), files.Len(), len(clients))
}

// checkOwnerOnly fails the test for any file, directory or socket under dir
// (dir included) that group or others may access.
func checkOwnerOnly(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: group or others may access it", path, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 { // data, testimony.db, tls, tls/cert.pem, tls/key.pem
		t.Fatalf("only %d entries in the data directory", n)
	}
}
