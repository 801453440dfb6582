package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/store"
)

// testEnv is an initialized deployment served by an in-process handler.
type testEnv struct {
	t         testing.TB
	dir       string
	db        *store.DB
	srv       *Server
	h         http.Handler
	recipient age.Recipient // the deployment's (hybrid) recipient
	submit    string        // a submit token
	collect   string        // a collect token
	logs      *syncBuffer
	clock     *testClock
}

// testClock is the servers' clock in tests; it moves only when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// in returns a copy of e that reports failures to t, for use inside
// subtests and fuzz targets.
func (e *testEnv) in(t testing.TB) *testEnv {
	c := *e
	c.t = t
	return &c
}

var testNow = time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC)

func newTestEnv(t testing.TB, configure ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir(), clock: &testClock{now: testNow}, logs: &syncBuffer{}}
	// Tests encrypt to a recipient; the identity only exists to make one.
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	e.recipient = id.Recipient()
	if _, err := Init(e.dir, strings.NewReader(id.Recipient().String()+"\n"), InitOptions{}); err != nil {
		t.Fatal(err)
	}
	e.db, err = openStore(e.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	cfg := Config{
		DB:     e.db,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Now:    e.clock.Now,
	}
	for _, f := range configure {
		f(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = e.srv.Handler()
	e.submit = e.token(RoleSubmit, "laptop")
	e.collect = e.token(RoleCollect, "collector")
	return e
}

// logKey is the deployment's log verifier key.
func (e *testEnv) logKey() string {
	return e.srv.dep.Load().logKey
}

func (e *testEnv) token(role, name string) string {
	e.t.Helper()
	tok, _, err := createToken(e.db, role, name, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// req describes one request.
type req struct {
	method, path, token string
	body                []byte
	header              map[string]string
	unknownLength       bool // send without Content-Length
}

// do serves r and checks what every response must have: the security
// headers, and a JSON {"error": …} body on every error.
func (e *testEnv) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	hr := newRequest(r)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	checkSecurityHeaders(e.t, w.Result().Header)
	if w.Code >= 400 {
		var body struct {
			Error string `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Error == "" {
			e.t.Errorf("%s %s: status %d with body %q, want {\"error\": …}", r.method, r.path, w.Code, w.Body.String())
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			e.t.Errorf("%s %s: error with Content-Type %q", r.method, r.path, ct)
		}
	}
	return w
}

func newRequest(r req) *http.Request {
	hr := httptest.NewRequest(r.method, r.path, bytes.NewReader(r.body))
	if r.unknownLength {
		hr.ContentLength = -1
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		if v != "" {
			hr.Header.Set(k, v)
		}
	}
	return hr
}

func checkSecurityHeaders(t testing.TB, h http.Header) {
	t.Helper()
	for k, v := range map[string]string{
		"Strict-Transport-Security": "max-age=63072000",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// expect fails unless w has the status and, if substr is set, contains
// substr: in the error message for an error, in the body otherwise.
func expect(t testing.TB, w *httptest.ResponseRecorder, status int, substr string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	text := w.Body.String()
	if status >= 400 {
		var body struct {
			Error string `json:"error"`
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		text = body.Error
	}
	if substr != "" && !strings.Contains(text, substr) {
		t.Fatalf("%q does not contain %q", text, substr)
	}
}

// truncateToFragment cuts an age file so that its payload ends in a
// fragment shorter than a tag, a length no age encryptor produces. (Cutting
// a few bytes off the end usually leaves a plausible length, which only
// decryption can catch.)
func truncateToFragment(t testing.TB, file []byte) []byte {
	t.Helper()
	hl, err := recipients.HeaderLength(bytes.NewReader(file), recipients.TypeHybrid)
	if err != nil {
		t.Fatal(err)
	}
	const nonce, streamChunk = 16, 64<<10 + 16
	full := (int64(len(file)) - hl - nonce - 1) / streamChunk
	return file[:hl+nonce+full*streamChunk+5]
}

// encrypt returns an age file of plaintext for the recipients.
func encrypt(t testing.TB, plaintext []byte, rs ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testFile returns an age file for the deployment of n plaintext bytes.
func (e *testEnv) testFile(n int) []byte {
	plain := bytes.Repeat([]byte("testimony "), n/10+1)[:n]
	return encrypt(e.t, plain, e.recipient)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func chunkOf(file []byte, i int) []byte {
	return file[i*ChunkSize : min(len(file), (i+1)*ChunkSize)]
}

// createUpload creates an upload for file and returns its id.
func (e *testEnv) createUpload(file []byte, declareSHA bool) string {
	e.t.Helper()
	body := map[string]any{"size": len(file)}
	if declareSHA {
		body["sha256"] = sha(file)
	}
	data, _ := json.Marshal(body)
	w := e.do(req{method: "POST", path: "/v1/uploads", token: e.submit, body: data})
	expect(e.t, w, http.StatusCreated, "")
	var resp struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		e.t.Fatal(err)
	}
	return resp.ID
}

func (e *testEnv) putChunk(id string, i int, data []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(req{method: "PUT", path: "/v1/uploads/" + id + "/chunks/" + strconv.Itoa(i), token: e.submit,
		body: data, header: map[string]string{"Chunk-SHA256": sha(data)}})
}

// upload sends file with the chunked protocol and returns the finish
// response.
func (e *testEnv) upload(file []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	id := e.createUpload(file, true)
	for i := range chunkCount(int64(len(file))) {
		expect(e.t, e.putChunk(id, i, chunkOf(file, i)), http.StatusNoContent, "")
	}
	return e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit})
}

// expireAll deletes every unfinished upload and returns how many there
// were; tests use it to prove that a failed request left nothing behind.
func (e *testEnv) expireAll() int {
	e.t.Helper()
	n, err := e.db.ExpireUploads(e.clock.Now().Add(100 * 365 * 24 * time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
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
