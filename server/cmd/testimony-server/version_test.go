package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/server"
)

// TestServeVersion: serve names its version in the line it logs when it
// starts, for the operator, and never in a response, for anyone: neither
// GET /v1/health, which answers without a token, nor an unknown route
// names the program, its version or the Go version, in the body or a
// header.
func TestServeVersion(t *testing.T) {
	data, _ := initData(t, "")
	base, _, serr := serveInProcess(t, data)

	logged := "msg=serving version=" + strconv.Quote(version.String(progName)) + " "
	if !strings.Contains(serr.String(), logged) {
		t.Errorf("the start line lacks %q:\n%s", logged, serr.String())
	}

	certPEM, err := os.ReadFile(server.SelfSignedCertPath(data))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		t.Fatal("no certificate in the self-signed certificate file")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, path := range []string{"/v1/health", "/v1/no-such-route"} {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if path == "/v1/health" && resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		var answer strings.Builder
		answer.Write(body)
		for name, values := range resp.Header {
			answer.WriteString("\n" + name + ": " + strings.Join(values, ", "))
		}
		for _, secret := range []string{version.Version, runtime.Version(), progName} {
			if strings.Contains(answer.String(), secret) {
				t.Errorf("GET %s reveals %q:\n%s", path, secret, answer.String())
			}
		}
	}
}

// serveInProcess runs "serve -tls-self-signed" on data in this process
// until the test ends, and returns once it listens and its admin socket
// exists: its base URL and what it writes to stdout and stderr.
func serveInProcess(t *testing.T, data string) (base string, sout, serr *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sout, serr = new(lockedBuffer), new(lockedBuffer)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-data", data, "-addr", "127.0.0.1:0", "-tls-self-signed"}, sout, serr)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	listening := regexp.MustCompile(`listening on (https://127\.0\.0\.1:\d+) `)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(sout.String()); m != nil {
			if _, err := os.Stat(server.AdminSocketPath(data)); err == nil {
				return m[1], sout, serr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s\n%s", sout.String(), serr.String())
		}
	}
}
