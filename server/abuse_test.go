package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The abuse tests talk to Run over real TLS on 127.0.0.1 with hand-written
// HTTP/1.1, because the requests they send are ones a well-behaved client
// library refuses to make: negative lengths, bodies that never end, paths
// full of dots, headers sent one byte at a time. The handler tests
// (handler_test.go) cover the same routes through httptest; these add what
// only a real connection shows: how much of a body the server reads, and
// what net/http answers before a handler ever runs.

// abuseServer is Run on an initialized data directory, with the request log
// kept for inspection.
type abuseServer struct {
	t    *testing.T
	dir  string
	addr string
	pool *x509.CertPool
	logs *syncBuffer
	stop func()
}

// startAbuseServer runs the server on dir (initialized) with cfg's limits.
func startAbuseServer(t *testing.T, dir string, cfg RunConfig) *abuseServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan ReadyInfo, 1)
	done := make(chan error, 1)
	s := &abuseServer{t: t, dir: dir, logs: &syncBuffer{}}
	cfg.DataDir, cfg.Addr, cfg.SelfSigned = dir, "127.0.0.1:0", true
	cfg.Logger = slog.New(slog.NewTextHandler(s.logs, nil))
	cfg.Ready = func(i ReadyInfo) { ready <- i }
	go func() { done <- Run(ctx, cfg) }()
	select {
	case info := <-ready:
		s.addr = info.Addr.String()
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	s.pool, _ = certPool(t, dir)
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after shutdown", err)
		}
	}
	t.Cleanup(s.stop)
	return s
}

func (s *abuseServer) dial() *tls.Conn {
	s.t.Helper()
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		s.t.Fatal(err)
	}
	return conn
}

// client is an ordinary HTTPS client for the requests that are not abuse.
func (s *abuseServer) client() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool}, DisableKeepAlives: true}}
}

func (s *abuseServer) do(method, path, token string, body []byte, header ...string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "https://"+s.addr+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// requestLines returns the request log's lines, one per request a handler
// answered.
func (s *abuseServer) requestLines() []string {
	var lines []string
	for _, l := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(l, " msg=request ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitRequestLine waits for the n-th request line (counting from 1) and
// returns it. The line is written when the handler returns, which can be a
// moment after the client has its answer.
func (s *abuseServer) waitRequestLine(n int) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lines := s.requestLines(); len(lines) >= n {
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("request log line %d never came:\n%s", n, s.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var bytesInField = regexp.MustCompile(` bytes_in=(\d+) `)

// rawRequest is one hand-written HTTP/1.1 request.
type rawRequest struct {
	method, path string
	auth         string   // the Authorization header's value, if any
	header       []string // further header lines, "Name: value"
	body         []byte
	// length is the Content-Length to declare; "" means len(body), and
	// "none" declares none.
	length string
	// stream, if positive, sends body followed by zero bytes up to stream
	// bytes in all, with chunked transfer encoding.
	stream int64
	// endless sends body followed by zero bytes until the server closes
	// the connection (or 256 MiB), after declaring length.
	endless bool
}

// send writes r on a new connection and reads the answer. The body is
// written concurrently with reading, as a client that does not wait for
// the server would; sent reports how many body bytes went out.
func (s *abuseServer) send(r rawRequest) (resp *http.Response, body []byte, sent int64) {
	s.t.Helper()
	conn := s.dial()
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.path, s.addr)
	if r.auth != "" {
		fmt.Fprintf(&head, "Authorization: %s\r\n", r.auth)
	}
	for _, h := range r.header {
		head.WriteString(h + "\r\n")
	}
	switch {
	case r.stream > 0:
		head.WriteString("Transfer-Encoding: chunked\r\n")
	case r.length == "":
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(r.body))
	case r.length != "none":
		fmt.Fprintf(&head, "Content-Length: %s\r\n", r.length)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		s.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { sent = writeRawBody(conn, r) })
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.t.Fatalf("%s %s: no answer: %v", r.method, r.path, err)
	}
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the answer: %v", r.method, r.path, err)
	}
	// Closing ends a writer that is still sending into a server that has
	// stopped reading.
	conn.Close()
	wg.Wait()
	return resp, body, sent
}

func writeRawBody(conn net.Conn, r rawRequest) int64 {
	const piece = 64 << 10
	var sent int64
	zeros := make([]byte, piece)
	switch {
	case r.stream > 0:
		write := func(p []byte) bool {
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(p), p); err != nil {
				return false
			}
			sent += int64(len(p))
			return true
		}
		if len(r.body) > 0 && !write(r.body) {
			return sent
		}
		for sent < r.stream {
			if !write(zeros[:min(piece, r.stream-sent)]) {
				return sent
			}
		}
		io.WriteString(conn, "0\r\n\r\n")
	case r.endless:
		n, _ := conn.Write(r.body)
		sent += int64(n)
		for sent < 256<<20 {
			n, err := conn.Write(zeros)
			sent += int64(n)
			if err != nil {
				break
			}
		}
	default:
		n, _ := conn.Write(r.body)
		sent += int64(n)
	}
	return sent
}

// abuseFixture is the state the abuse table works on: an open upload with
// only chunk 1 stored, and a finished one.
type abuseFixture struct {
	open, done       string
	file             []byte // the open upload's age file
	collect, submit  string
	revoked, unknown string
}

// TestHTTPAbuse is one table of hostile requests over real TLS: chunk
// indexes out of range, negative or huge; bodies larger than declared,
// than the route allows, or endless; invalid lengths; declared sizes
// negative or beyond 64 bits; ids full of path characters; wrong content
// types; unknown JSON fields; a second finish; missing, malformed, revoked
// and wrong-role tokens. Each gets its exact status and message, the
// security headers, and a request log line showing how much of the body
// the handler read; afterwards the store holds exactly what it held before.
func TestHTTPAbuse(t *testing.T) {
	const maxSize = 3 * ChunkSize
	dir, recipient := initDir(t)
	a, err := OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fx abuseFixture
	for _, tok := range []struct {
		dst        *string
		role, name string
	}{{&fx.submit, RoleSubmit, "laptop"}, {&fx.collect, RoleCollect, "collector"}, {&fx.revoked, RoleSubmit, "stolen"}} {
		if *tok.dst, _, err = a.CreateToken(tok.role, tok.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RevokeToken("stolen"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	fx.unknown = tokenPrefix + strings.Repeat("Q", 32)
	s := startAbuseServer(t, dir, RunConfig{MaxSize: maxSize})

	fx.file = encrypt(t, bytes.Repeat([]byte("testimony "), (2*ChunkSize+1000)/10), recipient)
	c0, c1, c2 := chunkOf(fx.file, 0), chunkOf(fx.file, 1), chunkOf(fx.file, 2)
	code, body := s.do("POST", "/v1/uploads", fx.submit, fmt.Appendf(nil, `{"size":%d,"sha256":"%s"}`, len(fx.file), sha(fx.file)))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct{ ID string }
	json.Unmarshal(body, &created)
	fx.open = created.ID
	if code, body := s.do("PUT", "/v1/uploads/"+fx.open+"/chunks/1", fx.submit, c1, "Chunk-SHA256", sha(c1)); code != 204 {
		t.Fatalf("chunk 1: %d %s", code, body)
	}
	small := encrypt(t, []byte("an acknowledged testimony"), recipient)
	code, body = s.do("POST", "/v1/submissions", fx.submit, small)
	if code != 201 {
		t.Fatalf("one-shot: %d %s", code, body)
	}
	json.Unmarshal(body, &created)
	fx.done = created.ID
	big := encrypt(t, bytes.Repeat([]byte("x"), maxSize+ChunkSize), recipient)
	// Valid JSON as far as it goes: an object left open, then whitespace.
	jsonWhitespace := append([]byte(`{"size":1`), bytes.Repeat([]byte(" "), 1<<20)...)

	u := "/v1/uploads/" + fx.open
	last := len(c2)
	bearer := func(tok string) string { return "Bearer " + tok }
	sub, coll := bearer(fx.submit), bearer(fx.collect)
	shaOf := func(b []byte) string { return "Chunk-SHA256: " + sha(b) }
	json415 := `Content-Type %q is not accepted here; use application/json or application/x-www-form-urlencoded`
	const noRoute = "no such route; see docs/api.md"
	const unlimited = -1

	tests := []struct {
		name string
		req  rawRequest
		// status and msg are the exact answer: msg is the JSON "error",
		// or for an answer net/http gives on its own (netHTTP), the body.
		status  int
		msg     string
		netHTTP bool
		// maxRead bounds the body bytes the handler read (bytes_in in the
		// request log); unlimited skips the check.
		maxRead int64
	}{
		// Chunk indexes: only digits match the route; a number too large
		// for an int is a 400, one beyond the upload's chunks a 422.
		{"negative chunk index", rawRequest{method: "PUT", path: u + "/chunks/-1", auth: sub, header: []string{shaOf(c0)}, body: c0},
			404, noRoute, false, 0},
		{"chunk index with a plus sign", rawRequest{method: "PUT", path: u + "/chunks/+1", auth: sub, header: []string{shaOf(c1)}, body: c1},
			404, noRoute, false, 0},
		{"chunk index in hex", rawRequest{method: "PUT", path: u + "/chunks/0x1", auth: sub, header: []string{shaOf(c1)}, body: c1},
			404, noRoute, false, 0},
		{"chunk index one past the last", rawRequest{method: "PUT", path: u + "/chunks/3", auth: sub, header: []string{shaOf(c2)}, body: c2},
			422, "chunk index 3 is out of range: this upload has chunks 0 to 2", false, 0},
		{"chunk index 2^31", rawRequest{method: "PUT", path: u + "/chunks/2147483648", auth: sub, header: []string{shaOf(c2)}, body: c2},
			422, "chunk index 2147483648 is out of range: this upload has chunks 0 to 2", false, 0},
		{"chunk index 2^64", rawRequest{method: "PUT", path: u + "/chunks/18446744073709551616", auth: sub, header: []string{shaOf(c2)}, body: c2},
			400, `chunk index "18446744073709551616" is not a valid index`, false, 0},

		// Chunk bodies.
		{"chunk larger than declared", rawRequest{method: "PUT", path: u + "/chunks/2", auth: sub, header: []string{shaOf(c2)}, body: append(bytes.Clone(c2), 0)},
			422, fmt.Sprintf("chunk 2 must be exactly %d bytes, but Content-Length is %d", last, last+1), false, 0},
		{"chunk larger than declared, streamed", rawRequest{method: "PUT", path: u + "/chunks/2", auth: sub, header: []string{shaOf(c2)}, body: c2, stream: int64(last + 1)},
			422, fmt.Sprintf("chunk 2 must be exactly %d bytes, got %d", last, last+1), false, int64(last + 1)},
		{"chunk shorter than declared", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c0[:100])}, body: c0[:100]},
			422, "chunk 0 must be exactly 1048576 bytes, but Content-Length is 100", false, 0},
		{"chunk body whose hash lies", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c1)}, body: c0},
			422, "Chunk-SHA256 does not match the 1048576 bytes received for chunk 0; send the chunk again", false, ChunkSize + 1},
		{"chunk with a different body at a stored index", rawRequest{method: "PUT", path: u + "/chunks/1", auth: sub, header: []string{shaOf(c0)}, body: c0},
			409, "chunk 1 is already stored with different bytes; a chunk cannot be changed, start a new upload if the file changed", false, ChunkSize + 1},

		// Oversized bodies: refused on the declared length without reading
		// a byte, or as soon as the limit is crossed.
		{"chunk declaring 1 TiB", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c0)}, length: "1099511627776", endless: true},
			413, "request body of 1099511627776 bytes is larger than this route's limit of 1048576 bytes", false, 0},
		{"chunk streamed past 1 MiB", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c0)}, stream: 64 << 20},
			413, "request body is larger than this route's limit of 1048576 bytes", false, ChunkSize + 1},
		{"JSON body declaring 1 GiB", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, length: "1073741824", endless: true},
			413, "request body of 1073741824 bytes is larger than this route's limit of 4096 bytes", false, 0},
		{"JSON body streamed past 4 KiB", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: jsonWhitespace, stream: int64(len(jsonWhitespace))},
			413, "JSON body is larger than 4096 bytes", false, maxJSONBody + 1},
		{"one-shot declaring more than -max-size", rawRequest{method: "POST", path: "/v1/submissions", auth: sub, length: "1099511627776", endless: true},
			413, "request body of 1099511627776 bytes is larger than this route's limit of 3145728 bytes", false, 0},
		{"one-shot streamed past -max-size", rawRequest{method: "POST", path: "/v1/submissions", auth: sub, body: big, stream: int64(len(big))},
			413, "the submission is larger than this server's limit of 3145728 bytes", false, maxSize + 1},

		// Lengths net/http refuses before any handler runs.
		{"negative Content-Length", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c0)}, length: "-1"},
			400, "400 Bad Request", true, unlimited},
		{"two Content-Lengths", rawRequest{method: "PUT", path: u + "/chunks/0", auth: sub, header: []string{shaOf(c0), "Content-Length: 5"}, length: "7"},
			400, "400 Bad Request", true, unlimited},
		{"headers over 16 KiB", rawRequest{method: "GET", path: "/v1/health", header: []string{"X-Pad: " + strings.Repeat("p", 64<<10)}},
			431, "431 Request Header Fields Too Large", true, unlimited},

		// Declared sizes.
		{"declared size negative", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":-1}`)},
			400, `field "size" must be at least 1, not -1`, false, unlimited},
		{"declared size zero", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":0}`)},
			400, `field "size" must be at least 1, not 0`, false, unlimited},
		{"declared size above -max-size", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":3145729}`)},
			413, "a submission of 3145729 bytes is larger than this server's limit of 3145728 bytes", false, unlimited},
		{"declared size 2^63-1", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":9223372036854775807}`)},
			413, "a submission of 9223372036854775807 bytes is larger than this server's limit of 3145728 bytes", false, unlimited},
		{"declared size beyond 64 bits", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":18446744073709551616}`)},
			400, `field "size" must be a number without fraction or exponent, below 2^63, not 18446744073709551616`, false, unlimited},
		{"declared size with an exponent", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":1e3}`)},
			400, `field "size" must be a number without fraction or exponent, below 2^63, not 1e3`, false, unlimited},

		// Ids with path characters match no route; nothing is cleaned and
		// redirected.
		{"dot-dot before an id", rawRequest{method: "PUT", path: "/v1/uploads/../uploads/" + fx.open + "/chunks/0", auth: sub, header: []string{shaOf(c0)}, body: c0},
			404, noRoute, false, 0},
		{"dot-dot after an id", rawRequest{method: "POST", path: u + "/chunks/../finish", auth: sub},
			404, noRoute, false, 0},
		{"encoded dot-dot and slashes as the id", rawRequest{method: "PUT", path: "/v1/uploads/%2e%2e%2f%2e%2e%2ftestimony.db/chunks/0", auth: sub, header: []string{shaOf(c0)}, body: c0},
			404, noRoute, false, 0},
		{"encoded slash inside the id", rawRequest{method: "GET", path: "/v1/uploads/" + fx.open[:16] + "%2F" + fx.open[16:], auth: sub},
			404, noRoute, false, 0},
		{"NUL in the id", rawRequest{method: "GET", path: "/v1/uploads/" + fx.open[:31] + "%00", auth: sub},
			404, noRoute, false, 0},
		{"uppercase id", rawRequest{method: "GET", path: "/v1/uploads/" + strings.ToUpper(fx.open), auth: sub},
			404, noRoute, false, 0},
		{"double slash", rawRequest{method: "GET", path: "//v1/health"},
			404, noRoute, false, 0},
		{"download by file name", rawRequest{method: "GET", path: "/v1/submissions/" + fx.done + ".age", auth: coll},
			404, noRoute, false, 0},
		{"download of the database by path", rawRequest{method: "GET", path: "/v1/submissions/..%2F..%2Ftestimony.db", auth: coll},
			404, noRoute, false, 0},

		// Content types.
		{"text/plain upload request", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, header: []string{"Content-Type: text/plain"}, body: []byte(`{"size":100}`)},
			415, fmt.Sprintf(json415, "text/plain"), false, 0},
		{"XML finish", rawRequest{method: "POST", path: u + "/finish", auth: sub, header: []string{"Content-Type: application/xml"}, body: []byte(`<finish/>`)},
			415, fmt.Sprintf(json415, "application/xml"), false, 0},
		{"malformed content type", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, header: []string{"Content-Type: application/"}, body: []byte(`{"size":100}`)},
			415, fmt.Sprintf(json415, "application/"), false, 0},
		{"multipart one-shot", rawRequest{method: "POST", path: "/v1/submissions", auth: sub, header: []string{"Content-Type: multipart/form-data; boundary=x"}, body: small},
			415, `Content-Type "multipart/form-data; boundary=x" is not accepted here; use application/octet-stream or application/age or application/x-www-form-urlencoded`, false, 0},
		{"JSON one-shot", rawRequest{method: "POST", path: "/v1/submissions", auth: sub, header: []string{"Content-Type: application/json"}, body: small},
			415, `Content-Type "application/json" is not accepted here; use application/octet-stream or application/age or application/x-www-form-urlencoded`, false, 0},

		// Unknown JSON fields.
		{"unknown field at create", rawRequest{method: "POST", path: "/v1/uploads", auth: sub, body: []byte(`{"size":100,"filename":"interview.m4a"}`)},
			400, `unknown field "filename"`, false, unlimited},
		{"unknown field at finish", rawRequest{method: "POST", path: u + "/finish", auth: sub, body: []byte(`{"sha256":"` + sha(fx.file) + `","force":true}`)},
			400, `unknown field "force"`, false, unlimited},

		// Finishing.
		{"finish with chunks missing", rawRequest{method: "POST", path: u + "/finish", auth: sub},
			422, fmt.Sprintf("2 of 3 chunks are missing (the first is chunk 0); GET /v1/uploads/%s lists them", fx.open), false, unlimited},
		{"finish twice", rawRequest{method: "POST", path: "/v1/uploads/" + fx.done + "/finish", auth: sub},
			409, fmt.Sprintf("upload %s is already finished; GET /v1/uploads/%s returns its receipt", fx.done, fx.done), false, unlimited},
		{"chunk for a finished upload", rawRequest{method: "PUT", path: "/v1/uploads/" + fx.done + "/chunks/0", auth: sub, header: []string{shaOf(small)}, body: small},
			409, fmt.Sprintf("upload %s is already finished; GET /v1/uploads/%s returns its receipt", fx.done, fx.done), false, unlimited},

		// Tokens.
		{"no token", rawRequest{method: "POST", path: "/v1/uploads", body: []byte(`{"size":100}`)},
			401, "missing Authorization header: send Authorization: Bearer <token>", false, 0},
		{"token in the query string", rawRequest{method: "GET", path: "/v1/recipients?token=" + fx.submit},
			401, "missing Authorization header: send Authorization: Bearer <token>", false, 0},
		{"malformed token", rawRequest{method: "GET", path: "/v1/recipients", auth: "Bearer " + fx.submit[:20]},
			401, "malformed token: expected Authorization: Bearer tm1_…", false, 0},
		{"token without scheme", rawRequest{method: "GET", path: "/v1/recipients", auth: fx.submit},
			401, "malformed token: expected Authorization: Bearer tm1_…", false, 0},
		{"unknown token", rawRequest{method: "GET", path: "/v1/recipients", auth: bearer(fx.unknown)},
			401, "unknown token", false, 0},
		{"revoked token", rawRequest{method: "PUT", path: u + "/chunks/0", auth: bearer(fx.revoked), header: []string{shaOf(c0)}, body: c0},
			401, "token has been revoked", false, 0},
		{"collect token uploading", rawRequest{method: "PUT", path: u + "/chunks/0", auth: coll, header: []string{shaOf(c0)}, body: c0},
			403, "this route needs a submit token, and this is a collect token", false, 0},
		{"submit token downloading", rawRequest{method: "GET", path: "/v1/submissions/" + fx.done, auth: sub},
			403, "this route needs a collect token, and this is a submit token", false, 0},

		{"TRACE", rawRequest{method: "TRACE", path: "/v1/health"},
			405, "method TRACE is not allowed on this route; see docs/api.md", false, 0},
	}
	logged := len(s.requestLines())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := *s
			s.t = t
			resp, body, sent := s.send(tt.req)
			if !tt.netHTTP {
				logged++
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.netHTTP {
				// net/http answers malformed requests itself, in plain
				// text, before the server's middleware runs: they carry
				// no security headers (see SECURITY.md).
				if got := string(body); got != tt.msg {
					t.Fatalf("body %q, want %q", got, tt.msg)
				}
				return
			}
			checkSecurityHeaders(t, resp.Header)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e struct {
				Error string `json:"error"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("body %q is not {\"error\": …}: %v", body, err)
			}
			if e.Error != tt.msg {
				t.Fatalf("error %q,\nwant  %q", e.Error, tt.msg)
			}
			line := s.waitRequestLine(logged)
			if !strings.Contains(line, fmt.Sprintf(" status=%d ", tt.status)) {
				t.Fatalf("request log line is not this request's: %s", line)
			}
			m := bytesInField.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no bytes_in in %s", line)
			}
			read, _ := strconv.ParseInt(m[1], 10, 64)
			if tt.maxRead != unlimited && read > tt.maxRead {
				t.Errorf("the handler read %d body bytes, want at most %d", read, tt.maxRead)
			}
			if tt.req.endless || tt.req.stream > 0 {
				t.Logf("client sent %d body bytes, handler read %d", sent, read)
			}
		})
	}

	// Nothing refused was stored: the open upload still misses exactly
	// chunks 0 and 2, and the only submission is the acknowledged one.
	code, body = s.do("GET", u, fx.submit, nil)
	if code != 200 || !strings.Contains(string(body), `"missing":[0,2]`) {
		t.Fatalf("open upload after the abuse: %d %s", code, body)
	}
	s.stop()
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	subs, err := db.Submissions(false)
	if err != nil || len(subs) != 1 || subs[0].ID != fx.done {
		t.Fatalf("submissions after the abuse: %+v, %v", subs, err)
	}
	if got, err := db.ReadChunk(fx.open, 1); err != nil || !bytes.Equal(got, c1) {
		t.Fatalf("chunk 1 changed: %v", err)
	}
	if have, err := db.ChunkIndexes(fx.open); err != nil || len(have) != 1 {
		t.Fatalf("chunks of the open upload: %v, %v", have, err)
	}
	if n, err := db.ExpireUploads(time.Now().Add(100 * 365 * 24 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("%d unfinished uploads left (want only the fixture's), %v", n, err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSlowClientsCutOff sends a TLS handshake that never comes and request
// headers one byte at a time: the server closes both connections once
// ReadHeaderTimeout has passed, without an answer, and serves other clients
// meanwhile.
func TestSlowClientsCutOff(t *testing.T) {
	dir, _ := initDir(t)
	s := startAbuseServer(t, dir, RunConfig{ReadHeaderTimeout: 300 * time.Millisecond})

	t.Run("silent before the TLS handshake", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A safety net against a server that never closes, not a
		// measurement: the server's timeout is a thousandth of it.
		conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		n, err := conn.Read(make([]byte, 1))
		if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !connWasReset(err) {
			t.Fatalf("read %d bytes, %v; want the server to close the connection", n, err)
		}
	})

	t.Run("headers byte by byte", func(t *testing.T) {
		conn := s.dial()
		defer conn.Close()
		headers := "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("s", 3000) + "\r\n\r\n"
		stop := make(chan struct{})
		var sent int
		var wg sync.WaitGroup
		wg.Go(func() {
			for sent < len(headers) {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := io.WriteString(conn, headers[sent:sent+1]); err != nil {
					return
				}
				sent++
			}
		})
		conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		got, err := io.ReadAll(conn)
		close(stop)
		wg.Wait()
		// net/http closes the connection, at most with its own plain
		// 400; the handler never sees the request.
		if len(got) != 0 && !bytes.HasSuffix(got, []byte("\r\n\r\n400 Bad Request")) {
			t.Fatalf("the server answered %q", got)
		}
		if err != nil && !connWasReset(err) {
			t.Fatalf("read: %v", err)
		}
		if sent == len(headers) {
			t.Fatal("all headers went out before the server closed the connection")
		}
		t.Logf("cut off after %d of %d header bytes", sent, len(headers))
	})

	// The slow clients held no one up.
	pool, _ := certPool(t, dir)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + s.addr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
}

func connWasReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestAuthFloodOverTLS floods the server with bad tokens from many
// connections: failures turn into 429 with Retry-After once the budget is
// spent, a valid token is still served, and neither the log nor any file in
// the data directory holds a client's address.
func TestAuthFloodOverTLS(t *testing.T) {
	dir, _ := initDir(t)
	a, err := OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	submit, _, err := a.CreateToken(RoleSubmit, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	s := startAbuseServer(t, dir, RunConfig{})

	var mu sync.Mutex
	ports := map[string]bool{}
	newClient := func() *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.pool},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err == nil {
					mu.Lock()
					ports[c.LocalAddr().String()] = true
					mu.Unlock()
				}
				return c, err
			},
		}}
	}
	get := func(hc *http.Client, token string) (int, string, string) {
		req, _ := http.NewRequest("GET", "https://"+s.addr+"/v1/recipients", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("User-Agent", "FloodAgent/1.0")
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error, resp.Header.Get("Retry-After")
	}

	// The budget is 100 failures and refills at 10 a second; 16 clients
	// sending 1600 failures as fast as they can spend it many times over.
	const clients, each = 16, 100
	var counts sync.Map
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			hc := newClient()
			for j := range each {
				bad := tokenPrefix + fmt.Sprintf("%032d", i*each+j)[:32]
				code, msg, retry := get(hc, bad)
				switch {
				case code == 401 && msg == "unknown token":
				case code == 429 && msg == "too many failed authentication attempts on this server; wait a few seconds and try again" && retry == "1":
				default:
					t.Errorf("bad token: %d %q Retry-After %q", code, msg, retry)
				}
				n, _ := counts.LoadOrStore(code, new(int64))
				mu.Lock()
				*n.(*int64)++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	limited, _ := counts.Load(429)
	if limited == nil {
		t.Fatal("no failure was answered with 429")
	}
	if code, msg, _ := get(newClient(), submit); code != 200 {
		t.Fatalf("a valid token after the flood: %d %s", code, msg)
	}
	t.Logf("%d failures answered 429", *limited.(*int64))
	s.stop()

	var durable bytes.Buffer
	durable.WriteString(s.logs.String())
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		durable.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) < clients {
		t.Fatalf("only %d client connections recorded", len(ports))
	}
	for addr := range ports {
		_, port, _ := net.SplitHostPort(addr)
		if bytes.Contains(durable.Bytes(), []byte(":"+port)) {
			t.Errorf("the client address %s is in the log or the data directory", addr)
		}
	}
	if bytes.Contains(durable.Bytes(), []byte("FloodAgent")) {
		t.Error("the User-Agent is in the log or the data directory")
	}
}

// TestConcurrentFinish finishes one upload from many requests at once, as
// a client that retries while its first request is still running: one gets
// the receipt, the others 409, and there is one submission.
func TestConcurrentFinish(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(2*ChunkSize + 5)
	id := e.createUpload(file, true)
	for i := range chunkCount(int64(len(file))) {
		expect(t, e.putChunk(id, i, chunkOf(file, i)), 204, "")
	}
	const n = 16
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = httptestServe(e, req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit})
		})
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("finish answered %d", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d finishes answered 201, want 1 (codes %v)", created, codes)
	}
	subs, err := e.db.Submissions(false)
	if err != nil || len(subs) != 1 || subs[0].ID != id {
		t.Fatalf("submissions %+v, %v", subs, err)
	}
}

// httptestServe serves r without the checks of testEnv.do, which reports
// through a testing.T that must not be used from several goroutines at
// once for Fatal.
func httptestServe(e *testEnv, r req) int {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, newRequest(r))
	return w.Code
}

// TestTLSWithOperatorRSACertificate serves an RSA certificate, as an
// operator's CA is likely to issue, and tries every TLS 1.2 suite Go knows
// and TLS 1.0 and 1.1: only ECDHE with AES-GCM or ChaCha20-Poly1305 is
// accepted, so neither RSA key exchange (no forward secrecy) nor CBC, RC4
// or 3DES. Each refusal is first shown to work against a permissive server
// with the same certificate, so it is the server's doing and not the
// client's inability. (TestTLS does the same for the self-signed ECDSA
// certificate.)
func TestTLSWithOperatorRSACertificate(t *testing.T) {
	dir, _ := initDir(t)
	certFile, keyFile, pool := rsaCertificate(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan ReadyInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{DataDir: dir, Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile,
			Ready: func(i ReadyInfo) { ready <- i }})
	}()
	var addr string
	select {
	case info := <-ready:
		addr = info.Addr.String()
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		<-done
	}()
	permissive := permissiveRSAServer(t, certFile, keyFile)
	dial := func(addr string, cfg *tls.Config) error {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	allowed := map[uint16]bool{}
	for _, id := range tlsCipherSuites {
		allowed[id] = true
	}
	var accepted, refused, untestable []string
	for _, suite := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !supportsTLS12(suite) || strings.Contains(suite.Name, "_ECDSA_") {
			continue // ECDSA suites need an ECDSA certificate: TestTLS
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite.ID}}
		err := dial(addr, cfg)
		switch {
		case allowed[suite.ID] && err != nil:
			t.Errorf("%s refused: %v", suite.Name, err)
		case allowed[suite.ID]:
			accepted = append(accepted, suite.Name)
		case err == nil:
			t.Errorf("%s accepted", suite.Name)
		case dial(permissive, cfg) != nil:
			untestable = append(untestable, suite.Name)
		default:
			refused = append(refused, suite.Name)
		}
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v}
		switch {
		case dial(addr, cfg) == nil:
			t.Errorf("%s accepted", tls.VersionName(v))
		case dial(permissive, cfg) != nil:
			untestable = append(untestable, tls.VersionName(v))
		default:
			refused = append(refused, tls.VersionName(v))
		}
	}
	if len(accepted) != 3 || len(refused) < 4 {
		t.Fatalf("accepted %v, refused %v: too little was tried", accepted, refused)
	}
	t.Logf("accepted %v", accepted)
	t.Logf("refused %v", refused)
	t.Logf("this Go cannot speak %v even to a permissive server", untestable)
}

// permissiveRSAServer serves certFile with every version and suite Go
// still offers, as the control for TestTLSWithOperatorRSACertificate.
func permissiveRSAServer(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var suites []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		suites = append(suites, s.ID)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, CipherSuites: suites})
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
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func supportsTLS12(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v == tls.VersionTLS12 {
			return true
		}
	}
	return false
}

// rsaCertificate writes a self-signed RSA certificate for 127.0.0.1 and
// returns its files and a pool that trusts it.
func rsaCertificate(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM := newRSASelfSigned(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}

func newRSASelfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "operator's certificate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
