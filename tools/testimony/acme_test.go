package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/internal/testenv"
	"github.com/testimony-ngo/testimony/server"
)

// TestACMEWithPebble gets the server's certificate from Pebble, Let's
// Encrypt's test CA, run on loopback: Pebble really validates the name with
// TLS-ALPN-01 against the running server (its DNS lookups go to a resolver
// in this test that answers 127.0.0.1, and its TLS-ALPN port is the
// server's), and the caseworker's client then submits over the issued
// certificate, trusting only Pebble's root and checking the name.
func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Pebble")
	}
	work := t.TempDir()
	pebbleBin := filepath.Join(work, "pebble")
	build := exec.Command(testenv.GoTool(t), "build", "-o", pebbleBin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "cannot build Pebble (a tool dependency in go.mod): %v\n%s", err, out)
	}
	const domain = "intake.testimony.test"
	dnsAddr := fakeDNS(t)

	// The testimony server first: Pebble must know its port.
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(work, "data")
	if _, err := server.Init(dataDir, strings.NewReader(id.Recipient().String()+"\n"), server.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, err := server.OpenAdmin(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := admin.CreateToken(server.RoleSubmit, "caseworker")
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	srvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvPort := srvLn.Addr().(*net.TCPAddr).Port

	// Pebble's API speaks TLS with a certificate made here, which the
	// server's ACME client trusts through its own http.Client.
	wfeCert, wfeKey, wfePool := loopbackCert(t)
	writeFile(t, filepath.Join(work, "wfe.pem"), wfeCert)
	writeFile(t, filepath.Join(work, "wfe.key"), wfeKey)
	apiAddr, mgmtAddr := freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           apiAddr,
		"managementListenAddress": mgmtAddr,
		"certificate":             filepath.Join(work, "wfe.pem"),
		"privateKey":              filepath.Join(work, "wfe.key"),
		"httpPort":                5002, // HTTP-01 is not offered by the server
		"tlsPort":                 srvPort,
		"keyAlgorithm":            "ecdsa",
	}})
	writeFile(t, filepath.Join(work, "pebble.json"), cfg)
	var pebbleLog syncWriter
	pebble := exec.Command(pebbleBin, "-config", filepath.Join(work, "pebble.json"), "-dnsserver", dnsAddr)
	pebble.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	pebble.Stdout, pebble.Stderr = &pebbleLog, &pebbleLog
	if err := pebble.Start(); err != nil {
		testenv.SkipOrFail(t, "cannot run Pebble: %v", err)
	}
	t.Cleanup(func() {
		pebble.Process.Kill()
		pebble.Wait()
		if t.Failed() {
			t.Logf("pebble:\n%s", pebbleLog.String())
		}
	})
	acmeClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: wfePool}}}
	directory := "https://" + apiAddr + "/dir"
	waitHTTP(t, acmeClient, directory)
	root := waitHTTP(t, acmeClient, "https://"+mgmtAddr+"/roots/0")
	rootFile := writeFile(t, filepath.Join(work, "pebble-root.pem"), root)

	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan server.ReadyInfo, 1), make(chan error, 1)
	var serverLog syncWriter
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server:\n%s", serverLog.String())
		}
	})
	go func() {
		done <- server.Run(ctx, server.RunConfig{
			Logger:    slog.New(slog.NewTextHandler(&serverLog, nil)),
			DataDir:   dataDir,
			Listeners: []net.Listener{srvLn},
			ACME:      &server.ACMEConfig{Domain: domain, Email: "ops@testimony.test", DirectoryURL: directory, HTTPClient: acmeClient},
			Ready:     func(i server.ReadyInfo) { ready <- i },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}

	// The client reaches the name through a SOCKS5 proxy that connects it
	// to the server, so the name (which no real DNS knows) is checked
	// against the certificate as on the internet.
	proxy := newSOCKS5Proxy(t, func() (net.Conn, error) { return net.Dial("tcp", srvLn.Addr().String()) })
	serverURL := fmt.Sprintf("https://%s:%d", domain, srvPort)
	file := writeFile(t, filepath.Join(work, "a.txt"), []byte("testimony"))
	cw := newUser(t, token)
	stdout, stderr, code := cw.run("submit", "-server", serverURL, "-ca", rootFile, "-proxy", proxy.url(), file)
	if code != 0 {
		t.Fatalf("submit over the ACME certificate: exit %d\n%s", code, stderr)
	}
	if id := lastLine(stdout); len(id) != 32 {
		t.Errorf("submit printed %q, want a submission id", stdout)
	}

	// The certificate chains to Pebble's root and names the domain.
	rootPool := x509.NewCertPool()
	rootPool.AppendCertsFromPEM(root)
	conn, err := tls.Dial("tcp", srvLn.Addr().String(), &tls.Config{ServerName: domain, RootCAs: rootPool})
	if err != nil {
		t.Fatalf("TLS to the server with Pebble's root: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname(domain); err != nil || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("served certificate: names %v, issuer %q, %v", leaf.DNSNames, leaf.Issuer.CommonName, err)
	}

	// The account key and the certificate with its key are in the data
	// directory, readable by the server's user only.
	cache := server.ACMECacheDir(dataDir)
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("ACME cache %s: %v, mode %v; want 0700", cache, err, fi.Mode().Perm())
	}
	des, _ := os.ReadDir(cache)
	var names []string
	for _, de := range des {
		info, _ := de.Info()
		names = append(names, de.Name())
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", de.Name(), info.Mode().Perm())
		}
	}
	if !containsPrefix(names, domain) || !containsPrefix(names, "acme_account") {
		t.Errorf("ACME cache holds %v, want the account key and the certificate for %s", names, domain)
	}
}

func containsPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// waitHTTP GETs url until it answers 200, while the process behind it
// starts, and returns the body.
func waitHTTP(t *testing.T, c *http.Client, url string) []byte {
	t.Helper()
	var lastErr error
	for range 300 {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return nil
}

// freePort returns a loopback address with a port that was free a moment
// ago, for Pebble, which takes its addresses from its configuration file.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// loopbackCert makes a self-signed certificate for 127.0.0.1 and returns
// it, its key and a pool that trusts it.
func loopbackCert(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble api"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), pool
}

// fakeDNS answers every A query with 127.0.0.1 and every other query with
// no record, as the zone of a test domain that lives on this machine. It
// speaks DNS over TCP (RFC 1035 4.2.2), which is what Pebble's -dnsserver
// client uses, and returns the address for that flag.
func fakeDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var n [2]byte
					if _, err := io.ReadFull(c, n[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(n[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					reply := dnsAnswer(q)
					if reply == nil {
						return
					}
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(reply))), reply...))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dnsAnswer builds the reply to a one-question query (RFC 1035 4.1).
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 || q[4] != 0 || q[5] != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := int(q[i+1])<<8 | int(q[i+2])
	answers := byte(0)
	if qtype == 1 {
		answers = 1
	}
	r := []byte{q[0], q[1], 0x85, 0x80, 0, 1, 0, answers, 0, 0, 0, 0}
	r = append(r, question...)
	if answers == 1 {
		// Name: a pointer to the question's; type A, class IN, TTL 60.
		r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
	}
	return r
}

// syncWriter collects a child process's output from two pipes.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
