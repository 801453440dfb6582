package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// healthOver asks GET /v1/health through dial, trusting only the data
// directory's self-signed certificate for the name localhost.
func healthOver(t *testing.T, dir string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) string {
	t.Helper()
	pool, _ := certPool(t, dir)
	c := &http.Client{Transport: &http.Transport{
		DialContext:     dial,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://localhost/v1/health")
	if err != nil {
		t.Fatalf("GET /v1/health: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/health: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

func unixDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}
}

// TestServeUnixSocket serves HTTPS on a unix socket only, as for a Tor
// onion service: TLS stays on with the self-signed certificate, a stale
// socket file from a killed server is replaced, and the file is removed
// on shutdown.
func TestServeUnixSocket(t *testing.T) {
	dir, _ := initDir(t)
	sock := filepath.Join(t.TempDir(), "https.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	// A listener closed without unlinking leaves the file, as SIGKILL does.
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	r := startConfig(t, RunConfig{DataDir: dir, UnixPath: sock, SelfSigned: true})
	if r.info.Unix != sock || r.info.Addr.Network() != "unix" {
		t.Errorf("ReadyInfo = %+v, want the unix socket %s", r.info, sock)
	}
	if body := healthOver(t, dir, unixDialer(sock)); !strings.Contains(body, "ok") {
		t.Errorf("health: %s", body)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v, want 0666", fi.Mode().Perm())
	}
	// Plain HTTP on the socket gets no API answer: TLS stays on.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
	reply, _ := io.ReadAll(conn)
	conn.Close()
	if strings.Contains(string(reply), "200 OK") {
		t.Errorf("plain HTTP on the unix socket was answered: %q", reply)
	}
	r.stop()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after shutdown: %v", err)
	}
}

func TestServeUnixSocketRefusesOtherFiles(t *testing.T) {
	dir, _ := initDir(t)
	path := filepath.Join(t.TempDir(), "https.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), RunConfig{DataDir: dir, UnixPath: path, SelfSigned: true})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Run = %v, want a refusal to replace a regular file", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "keep me" {
		t.Errorf("the file in the way was changed: %q", got)
	}
	// A socket another server answers on is not taken over either.
	other, _ := initDir(t)
	sock := filepath.Join(t.TempDir(), "https.sock")
	startConfig(t, RunConfig{DataDir: other, UnixPath: sock, SelfSigned: true})
	err = Run(context.Background(), RunConfig{DataDir: dir, UnixPath: sock, SelfSigned: true})
	if err == nil || !strings.Contains(err.Error(), "another server answers") {
		t.Fatalf("Run = %v, want a refusal to take another server's socket", err)
	}
	healthOver(t, other, unixDialer(sock))
}

// activationFD returns a duplicate of a fresh loopback listener's
// descriptor, as systemd would pass it, and the listener's address.
func activationFD(t *testing.T) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return dupFD(t, ln.(*net.TCPListener)), ln.Addr().String()
}

// dupFD returns a duplicate of c's descriptor that no *os.File owns, as
// activationListeners takes over and closes the descriptors it is given.
func dupFD(t *testing.T, c interface{ File() (*os.File, error) }) int {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestSocketActivation serves a socket passed the way systemd passes it
// (LISTEN_PID, LISTEN_FDS, descriptors in a row), with no -addr at all.
func TestSocketActivation(t *testing.T) {
	fd, addr := activationFD(t)
	env := map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}
	lns, err := activationListeners(func(k string) string { return env[k] }, os.Getpid(), fd)
	if err != nil {
		t.Fatal(err)
	}
	if len(lns) != 1 || lns[0].Addr().String() != addr {
		t.Fatalf("listeners %v, want one on %s", lns, addr)
	}
	dir, _ := initDir(t)
	r := startConfig(t, RunConfig{DataDir: dir, Listeners: lns, SelfSigned: true})
	if r.info.Activated != 1 || r.info.Addr.String() != addr {
		t.Errorf("ReadyInfo = %+v, want the activated socket %s", r.info, addr)
	}
	healthOver(t, dir, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	})
}

func TestActivationListenersEnv(t *testing.T) {
	pid := os.Getpid()
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantNoAct bool
		wantErr   string
	}{
		{"none", map[string]string{}, true, ""},
		{"other process", map[string]string{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "1"}, true, ""},
		{"no count", map[string]string{"LISTEN_PID": strconv.Itoa(pid)}, false, "LISTEN_FDS"},
		{"zero", map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "0"}, false, "LISTEN_FDS"},
		{"too many", map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "17"}, false, "LISTEN_FDS"},
		{"not a number", map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "x"}, false, "LISTEN_FDS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lns, err := activationListeners(func(k string) string { return tc.env[k] }, pid, 1<<20)
			if lns != nil {
				t.Errorf("got listeners %v", lns)
			}
			if errors.Is(err, ErrNoActivation) != tc.wantNoAct || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v", err)
			}
		})
	}
	// A descriptor that is not a listening socket is refused with its number.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "1"}
	if _, err := activationListeners(func(k string) string { return env[k] }, pid, fd); err == nil || !strings.Contains(err.Error(), "socket "+strconv.Itoa(fd)) {
		t.Errorf("a plain file as LISTEN_FD: err = %v", err)
	}
}
