package main

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/server"
)

// socks5Proxy is a minimal SOCKS5 server (RFC 1928: no authentication,
// CONNECT only) standing in for Tor: it records the address each client
// asked for and connects every request to dial.
type socks5Proxy struct {
	ln   net.Listener
	dial func() (net.Conn, error)

	mu        sync.Mutex
	requested []string
}

func newSOCKS5Proxy(t *testing.T, dial func() (net.Conn, error)) *socks5Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &socks5Proxy{ln: ln, dial: dial}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *socks5Proxy) url() string { return "socks5h://" + p.ln.Addr().String() }

func (p *socks5Proxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requested...)
}

func (p *socks5Proxy) serve(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	c.Write([]byte{5, 0}) // no authentication
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4: // IPv4, IPv6: the client resolved the name itself
		ip := make([]byte, 4)
		if req[3] == 4 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		host = "ip:" + net.IP(ip).String()
	case 3: // a domain name, for the proxy to resolve
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return
		}
		host = "name:" + string(name)
	default:
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return
	}
	p.mu.Lock()
	p.requested = append(p.requested, host+":"+strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	p.mu.Unlock()
	up, err := p.dial()
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}

// onionServer runs testimony-server's Run on a unix socket only, as behind
// a Tor onion service, and returns the socket, the certificate pin and a
// submit token.
func onionServer(t *testing.T) (sock, pin, token string) {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	if _, err := server.Init(dataDir, strings.NewReader(id.Recipient().String()+"\n"), server.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, err := server.OpenAdmin(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err = admin.CreateToken(server.RoleSubmit, "caseworker")
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(t.TempDir(), "https.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan server.ReadyInfo, 1), make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.RunConfig{DataDir: dataDir, UnixPath: sock, SelfSigned: true, Ready: func(i server.ReadyInfo) { ready <- i }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case info := <-ready:
		return sock, info.Fingerprint, token
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return
}

// TestSubmitThroughSOCKSToOnion submits to an .onion address the way Tor
// users do: the client talks SOCKS5 to the proxy and hands it the name
// (never an address it resolved), and the proxy reaches the server on its
// unix socket, where TLS and the pin still hold.
func TestSubmitThroughSOCKSToOnion(t *testing.T) {
	sock, pin, token := onionServer(t)
	proxy := newSOCKS5Proxy(t, func() (net.Conn, error) { return net.Dial("unix", sock) })
	const onion = "testimonyintakeexampleabcdefghijklmnopqrstuvwxyz234567ad.onion"
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))

	cw := newUser(t, token)
	stdout, stderr, code := cw.run("submit", "-server", "https://"+onion, "-pin", pin, "-proxy", proxy.url(), file)
	if code != 0 {
		t.Fatalf("submit through the proxy: exit %d\n%s", code, stderr)
	}
	if id := lastLine(stdout); len(id) != 32 {
		t.Errorf("submit printed %q, want a submission id", stdout)
	}
	seen := proxy.seen()
	if len(seen) == 0 {
		t.Fatal("the proxy saw no connection")
	}
	for _, s := range seen {
		if s != "name:"+onion+":443" {
			t.Errorf("the proxy was asked for %s, want the name %s:443", s, onion)
		}
	}

	// TESTIMONY_PROXY does the same without the flag.
	cw.env["TESTIMONY_PROXY"] = proxy.url()
	if _, stderr, code := cw.run("submit", "-server", "https://"+onion, file); code != 0 {
		t.Fatalf("submit with TESTIMONY_PROXY: exit %d\n%s", code, stderr)
	}
	if n := len(proxy.seen()); n <= len(seen) {
		t.Errorf("TESTIMONY_PROXY was not used: %d connections before, %d after", len(seen), n)
	}
}

// TestProxyFlagRefused checks that a proxy that is not SOCKS5 is refused
// before anything is created, with the Tor example as the fix.
func TestProxyFlagRefused(t *testing.T) {
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	for _, tc := range []struct{ flag, env, want string }{
		{"http://127.0.0.1:8080", "", "-proxy: proxy \"http://127.0.0.1:8080\" must start with socks5h://"},
		{"socks5h://127.0.0.1", "", "is not a URL like socks5h://127.0.0.1:9050"},
		{"", "127.0.0.1:9050", "TESTIMONY_PROXY: proxy \"127.0.0.1:9050\""},
	} {
		cw := newUser(t, "tm1_unusedunusedunusedunusedunused12")
		args := []string{"submit", "-server", "https://intake.example.org"}
		if tc.flag != "" {
			args = append(args, "-proxy", tc.flag)
		}
		args = append(args, file)
		if tc.env != "" {
			cw.env["TESTIMONY_PROXY"] = tc.env
		}
		_, stderr, code := cw.run(args...)
		if code == 0 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "hint: with Tor running on this machine: -proxy socks5h://127.0.0.1:9050") {
			t.Errorf("-proxy %q TESTIMONY_PROXY %q: exit %d\n%s", tc.flag, tc.env, code, stderr)
		}
		if _, err := os.Stat(cw.home); !os.IsNotExist(err) {
			t.Errorf("-proxy %q: the state directory was created: %v", tc.flag, err)
		}
	}
}
