package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func withLimits(l Limits) func(*Config) { return func(c *Config) { c.Limits = l } }

func (e *testEnv) createAs(token string, size int) *httptestResult {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/v1/uploads", token: token, body: fmt.Appendf(nil, `{"size":%d}`, size)})
	var resp struct{ ID string }
	json.Unmarshal(w.Body.Bytes(), &resp)
	return &httptestResult{code: w.Code, body: w.Body.String(), id: resp.ID, retry: w.Header().Get("Retry-After")}
}

type httptestResult struct {
	code     int
	body, id string
	retry    string
}

func TestLimitOpenUploads(t *testing.T) {
	e := newTestEnv(t, withLimits(Limits{OpenUploads: 2}))
	first := e.createAs(e.submit, 100)
	second := e.createAs(e.submit, 100)
	if first.code != 201 || second.code != 201 {
		t.Fatalf("first two uploads: %d, %d", first.code, second.code)
	}
	third := e.createAs(e.submit, 100)
	if third.code != http.StatusTooManyRequests || third.retry != "" {
		t.Fatalf("third upload: %d %s, Retry-After %q; want 429 without Retry-After (waiting alone does not help)", third.code, third.body, third.retry)
	}
	if want := "this token has 2 unfinished uploads"; !contains(third.body, want) {
		t.Errorf("message %s, want %q", third.body, want)
	}
	oneShot := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(100)})
	expect(t, oneShot, http.StatusTooManyRequests, "unfinished uploads")
	if got := e.expireAll(); got != 2 {
		t.Fatalf("%d uploads stored, want the 2 accepted ones", got)
	}
	// Another token has its own count; expired uploads stop counting.
	other := e.token(RoleSubmit, "laptop-2")
	if r := e.createAs(other, 100); r.code != 201 {
		t.Errorf("another token: %d %s", r.code, r.body)
	}
	if r := e.createAs(e.submit, 100); r.code != 201 {
		t.Errorf("after expiry: %d %s", r.code, r.body)
	}
	// A deleted upload stops counting at once.
	r := e.createAs(e.submit, 100)
	expect(t, e.do(req{method: "DELETE", path: "/v1/uploads/" + r.id, token: e.submit}), http.StatusNoContent, "")
	if r := e.createAs(e.submit, 100); r.code != 201 {
		t.Errorf("after delete: %d %s", r.code, r.body)
	}
}

// TestLimitOpenUploadsCountsOneShotsInFlight: a one-shot whose body is
// still arriving has no upload record yet (a small one is stored whole at
// the end), and still counts as an open upload.
func TestLimitOpenUploadsCountsOneShotsInFlight(t *testing.T) {
	e := newTestEnv(t, withLimits(Limits{OpenUploads: 1}))
	file := e.testFile(100)
	body, send := io.Pipe()
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		r := newRequest(req{method: "POST", path: "/v1/submissions", token: e.submit, unknownLength: true})
		r.Body = body
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		done <- w
	}()
	// Once the first bytes are read, the one-shot holds its place.
	if _, err := send.Write(file[:10]); err != nil {
		t.Fatal(err)
	}
	if r := e.createAs(e.submit, 100); r.code != http.StatusTooManyRequests {
		t.Errorf("an upload beside a one-shot in flight, with a limit of 1: %d %s, want 429", r.code, r.body)
	}
	send.Write(file[10:])
	send.Close()
	expect(t, <-done, http.StatusCreated, "")
	if r := e.createAs(e.submit, 100); r.code != 201 {
		t.Errorf("after the one-shot finished: %d %s", r.code, r.body)
	}
}

func TestLimitBytesPerDay(t *testing.T) {
	e := newTestEnv(t, withLimits(Limits{BytesPerDay: ChunkSize + 1000}))
	file := e.testFile(ChunkSize + ChunkSize/2) // two chunks
	id := e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, chunkOf(file, 0)), http.StatusNoContent, "")
	w := e.putChunk(id, 1, chunkOf(file, 1))
	expect(t, w, http.StatusTooManyRequests, "this token has sent 1048576 bytes today (UTC), and this server allows 1049576 per day")
	// testNow is 15:04:05 UTC: the limit lifts at midnight.
	if got, want := w.Header().Get("Retry-After"), strconv.Itoa(8*3600+55*60+55+1); got != want {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
	if have, err := e.db.ChunkIndexes(id); err != nil || !slices.Equal(have, []int{0}) {
		t.Errorf("chunks stored: %v %v, want only chunk 0", have, err)
	}
	oneShot := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(2000)})
	expect(t, oneShot, http.StatusTooManyRequests, "per day")
	if n := e.expireAll(); n != 1 {
		t.Errorf("%d uploads left, want the chunked one (the refused one-shot is removed)", n)
	}

	// The next day the upload goes on.
	e = newTestEnv(t, withLimits(Limits{BytesPerDay: ChunkSize + 1000}))
	id = e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, chunkOf(file, 0)), http.StatusNoContent, "")
	expect(t, e.putChunk(id, 1, chunkOf(file, 1)), http.StatusTooManyRequests, "")
	e.clock.advance(9 * time.Hour)
	expect(t, e.putChunk(id, 1, chunkOf(file, 1)), http.StatusNoContent, "")
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), http.StatusCreated, "")
}

func TestLimitUnreviewedBytes(t *testing.T) {
	e := newTestEnv(t, withLimits(Limits{UnreviewedBytes: 3000}))
	a := e.testFile(1000)
	w := e.upload(a)
	expect(t, w, http.StatusCreated, "")
	var done struct{ ID string }
	json.Unmarshal(w.Body.Bytes(), &done)

	r := e.createAs(e.submit, 3000-len(a)+1)
	if r.code != http.StatusInsufficientStorage || r.retry != "" || !contains(r.body, "waiting for review already take") {
		t.Fatalf("upload over the limit: %d %s Retry-After %q, want 507", r.code, r.body, r.retry)
	}
	oneShot := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(3000 - len(a) + 1)})
	expect(t, oneShot, http.StatusInsufficientStorage, "waiting for review")
	if n := e.expireAll(); n != 0 {
		t.Errorf("%d uploads stored by refused requests", n)
	}
	// Another token is not affected; collecting frees the bytes.
	if r := e.createAs(e.token(RoleSubmit, "laptop-2"), 3000); r.code != 201 {
		t.Errorf("another token: %d %s", r.code, r.body)
	}
	expect(t, e.do(req{method: "POST", path: "/v1/submissions/" + done.ID + "/collected", token: e.collect}), http.StatusNoContent, "")
	if r := e.createAs(e.submit, 3000); r.code != 201 {
		t.Errorf("after collection: %d %s", r.code, r.body)
	}
}

// TestTokenListUsage reads the counters through the admin socket of a
// running server.
func TestTokenListUsage(t *testing.T) {
	dir, recipient := initDir(t)
	a, err := OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.CreateToken(RoleSubmit, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	s := startAbuseServer(t, dir, RunConfig{})
	body := encrypt(t, []byte("a testimony"), recipient)
	if code, resp := s.do("POST", "/v1/submissions", tok, body); code != 201 {
		t.Fatalf("submit: %d %s", code, resp)
	}
	if code, resp := s.do("POST", "/v1/uploads", tok, []byte(`{"size":5000}`)); code != 201 {
		t.Fatalf("create: %d %s", code, resp)
	}
	a, err = OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ts, err := a.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	want := TokenUsage{OpenUploads: 1, BytesToday: int64(len(body)), UnreviewedBytes: int64(len(body))}
	if len(ts) != 1 || ts[0].Usage == nil || *ts[0].Usage != want {
		t.Fatalf("tokens %+v, want usage %+v", ts, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
