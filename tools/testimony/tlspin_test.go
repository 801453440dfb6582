package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// replaceCertificate restarts d on its address with a new self-signed
// certificate, as an operator who replaced it (or someone intercepting the
// connection) would present. It returns the new certificate's pin.
func (d *deployment) replaceCertificate(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "intake"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	handler := d.ts.Config.Handler
	d.ts.CloseClientConnections()
	d.ts.Close()
	var l net.Listener
	for range 50 {
		if l, err = net.Listen("tcp", d.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(handler)
	ts.Listener.Close()
	ts.Listener = l
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	d.ts = ts
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// colons writes a pin as browsers and openssl show it: AB:CD:….
func colons(pin string) string {
	var parts []string
	for i := 0; i < len(pin); i += 2 {
		parts = append(parts, strings.ToUpper(pin[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// TestTLSPinRemembered: the pin given to init -server (in the colon form)
// is remembered for the server; submit and receipts verify then need no
// -pin; a replaced certificate is refused with its own message; a
// different -pin only with -replace-pin.
func TestTLSPinRemembered(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 1, d.identity))
	cw := newUser(t, d.submitTok)
	_, stderr, code := cw.run("init", "-org-key", o.verifier, "-log-key", d.logKey, "-server", d.ts.URL, "-pin", colons(d.pin()))
	if code != 0 || !strings.Contains(stderr, "testimony: remembered the certificate check for https://"+d.addr+" in ") {
		t.Fatalf("init -server -pin: exit %d\n%s", code, stderr)
	}
	saved, err := os.ReadFile(filepath.Join(cw.home, "tls", api.HostPort(mustURL(t, d.ts.URL))+".json"))
	if err != nil || !strings.Contains(string(saved), `"pin": "`+d.pin()+`"`) {
		t.Fatalf("remembered pin file: %s, %v", saved, err)
	}

	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, file)
	if code != 0 || strings.Contains(stderr, "remembered") {
		t.Fatalf("submit without -pin: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	if _, stderr, code := cw.run("receipts", "verify", "-server", d.ts.URL); code != 0 {
		t.Fatalf("receipts verify without -pin: exit %d\n%s", code, stderr)
	}
	// Another spelling of the same address (a zero-padded port) uses
	// the remembered check, not a fresh first use.
	_, port, _ := net.SplitHostPort(d.addr)
	if _, stderr, code := cw.run("submit", "-server", "https://127.0.0.1:0"+port, file); code != 0 || strings.Contains(stderr, "remembered") || strings.Contains(stderr, "first connection") {
		t.Fatalf("submit to https://127.0.0.1:0%s: exit %d\n%s", port, code, stderr)
	}
	// The same pin again, in any form, is fine and quiet.
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", strings.ToUpper(d.pin()), file); code != 0 || strings.Contains(stderr, "remembered") {
		t.Fatalf("submit with the same pin: exit %d\n%s", code, stderr)
	}

	// The server now presents another certificate.
	oldPin := d.pin()
	newPin := d.replaceCertificate(t)
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, file)
	if code != 1 || stdout != "" ||
		!strings.Contains(stderr, "testimony: error: the certificate of https://"+d.addr+" is not the one remembered in ") ||
		!strings.Contains(stderr, "someone may be intercepting the connection, or the operator replaced the certificate") ||
		!strings.Contains(stderr, "testimony: hint: only if it was, run the command again with -pin NEW -replace-pin") {
		t.Fatalf("submit to a replaced certificate: exit %d\n%s", code, stderr)
	}
	outboxEmpty(t, cw)
	if _, stderr, code := cw.run("receipts", "verify", "-server", d.ts.URL); code != 1 || !strings.Contains(stderr, "is not the one remembered") {
		t.Fatalf("receipts verify to a replaced certificate: exit %d\n%s", code, stderr)
	}
	// The new fingerprint alone is not enough: the change must be stated.
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", newPin, file)
	if code != 1 || !strings.Contains(stderr, "testimony: error: -pin "+newPin+" differs from the certificate check remembered for https://"+d.addr+" in ") ||
		!strings.Contains(stderr, "(fingerprint "+oldPin+", since ") || !strings.Contains(stderr, "testimony: hint: if the certificate was really replaced, add -replace-pin") {
		t.Fatalf("submit with another -pin: exit %d\n%s", code, stderr)
	}
	outboxEmpty(t, cw)
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", newPin, "-replace-pin", file)
	if code != 0 || !strings.Contains(stderr, "testimony: replaced the certificate check remembered for https://"+d.addr) {
		t.Fatalf("submit -replace-pin: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, file); code != 0 {
		t.Fatalf("submit after the replacement: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-replace-pin", file); code != 1 || !strings.Contains(stderr, "-replace-pin needs the new -pin SHA256 or -ca FILE") {
		t.Fatalf("-replace-pin alone: exit %d\n%s", code, stderr)
	}
}

// TestTLSCARemembered: the collector's first collect remembers its -pin
// (or -ca); later collects need neither, and a certificate that no longer
// chains to the remembered CA is refused.
func TestTLSCARemembered(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
		t.Fatal(stderr)
	}

	col := newUser(t, d.collectTok)
	dir := filepath.Join(t.TempDir(), "bundle")
	_, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-log-key", d.logKey, "-o", dir)
	if code != 0 || !strings.Contains(stderr, "remembered the certificate check for https://"+d.addr) {
		t.Fatalf("first collect: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-o", dir); code != 0 {
		t.Fatalf("collect without -pin: exit %d\n%s", code, stderr)
	}

	ca := newUser(t, d.collectTok)
	caFile := writeFile(t, filepath.Join(t.TempDir(), "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.ts.Certificate().Raw}))
	if _, stderr, code := ca.run("collect", "-server", d.ts.URL, "-ca", caFile, "-o", filepath.Join(t.TempDir(), "b")); code != 0 || !strings.Contains(stderr, "remembered the certificate check") {
		t.Fatalf("collect -ca: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := ca.run("collect", "-server", d.ts.URL, "-o", filepath.Join(t.TempDir(), "c")); code != 0 {
		t.Fatalf("collect with the remembered CA: exit %d\n%s", code, stderr)
	}
	d.replaceCertificate(t)
	_, stderr, code = ca.run("collect", "-server", d.ts.URL, "-o", filepath.Join(t.TempDir(), "d"))
	if code != 1 || !strings.Contains(stderr, "is not the one remembered in") || !strings.Contains(stderr, "-ca NEWFILE -replace-pin") {
		t.Fatalf("collect with a certificate the remembered CA did not sign: exit %d\n%s", code, stderr)
	}
	_, stderr, code = col.run("collect", "-server", d.ts.URL, "-o", dir)
	if code != 1 || !strings.Contains(stderr, "is not the one remembered in") {
		t.Fatalf("collect with a replaced certificate: exit %d\n%s", code, stderr)
	}
}

// TestResumeUsesRememberedPin: an upload interrupted before the server's
// certificate was replaced resumes with the check remembered since, not
// the stale one it was submitted with.
func TestResumeUsesRememberedPin(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.bin"), make([]byte, 3<<20))
	d.cutAfterPuts = 1
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 1 || !strings.Contains(stderr, "testimony resume") {
		t.Fatalf("interrupted submit: exit %d\n%s", code, stderr)
	}
	d.mu.Lock()
	d.cutAfterPuts = 0
	d.mu.Unlock()
	newPin := d.replaceCertificate(t)
	if _, stderr, code := cw.run("resume"); code != 1 || !strings.Contains(stderr, "is not the one remembered") {
		t.Fatalf("resume before the replacement is confirmed: exit %d\n%s", code, stderr)
	}
	// Someone who intercepts the connection tells the caseworker to pass
	// the new fingerprint to resume: a -pin that differs from the
	// remembered check is refused, as it is for every other command.
	if _, stderr, code := cw.run("resume", "-pin", newPin); code != 1 || !strings.Contains(stderr, "differs from the certificate check remembered") {
		t.Fatalf("resume -pin with a fingerprint other than the remembered one: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := cw.run("init", "-server", d.ts.URL, "-pin", newPin, "-replace-pin"); code != 0 || !strings.Contains(stderr, "replaced the certificate check") {
		t.Fatalf("init -replace-pin: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := cw.run("resume")
	if code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("resume: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
}
