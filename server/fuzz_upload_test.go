package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/store"
)

// fuzzRequest builds a request the way net/http hands one to a handler,
// but with any path: the server decodes %XX escapes, so a handler can see
// every byte value in URL.Path, slashes and NULs included.
func fuzzRequest(method, path, rawQuery string, body []byte) *http.Request {
	r := httptest.NewRequest("GET", "/", bytes.NewReader(body))
	r.Method = method
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	r.URL.Path = path
	r.URL.RawPath = ""
	r.URL.RawQuery = rawQuery
	r.RequestURI = r.URL.RequestURI()
	return r
}

// checkAnswer fails unless w is an answer every client can rely on: the
// security headers, no server error, and a JSON {"error": …} on any error.
func checkAnswer(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	checkSecurityHeaders(t, w.Result().Header)
	if w.Code >= 500 {
		t.Fatalf("%s: status %d %s", what, w.Code, w.Body.String())
	}
	if w.Code >= 400 {
		var body struct {
			Error string `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Error == "" {
			t.Fatalf("%s: status %d with body %q, want {\"error\": …}", what, w.Code, w.Body.String())
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: error with Content-Type %q", what, ct)
		}
	}
}

// chunkState is what the store holds for an upload: chunk index -> bytes.
func chunkState(t *testing.T, db *store.DB, id string) map[int]string {
	t.Helper()
	if !ids.ValidSubmission(id) {
		return nil // not an id the store could hold
	}
	idx, err := db.ChunkIndexes(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	state := map[int]string{}
	for _, i := range idx {
		data, err := db.ReadChunk(id, i)
		if err != nil {
			t.Fatal(err)
		}
		state[i] = string(data)
	}
	return state
}

// FuzzChunk sends arbitrary chunk uploads: any index text, body, declared
// length and Chunk-SHA256 header, to a one-chunk upload (whose chunk 0 must
// start with an age header), to the short last chunk of a two-chunk upload,
// and to ids that do not exist. A chunk is stored only if everything about
// it is right, a stored chunk never changes, and nothing else is stored.
func FuzzChunk(f *testing.F) {
	e := newTestEnv(f)
	small := e.testFile(200)
	big := e.testFile(ChunkSize + 100)
	smallID := e.createUpload(small, true)
	bigID := e.createUpload(big, true)
	tail := chunkOf(big, 1)
	uploads := []struct {
		id   string
		size int64
	}{{smallID, int64(len(small))}, {bigID, int64(len(big))}, {strings.Repeat("0", 32), 0}, {"../../etc", 0}}

	f.Add(uint8(0), "0", small, "", uint8(0))
	f.Add(uint8(1), "1", tail, "", uint8(0))
	f.Add(uint8(1), "1", tail, "", uint8(1))
	f.Add(uint8(1), "01", tail, "", uint8(0))
	f.Add(uint8(1), "1", append(bytes.Clone(tail), 'x'), "", uint8(0))
	f.Add(uint8(1), "1", tail[1:], "", uint8(2))
	f.Add(uint8(1), "1", tail, "", uint8(3))
	f.Add(uint8(1), "1", tail, sha(small), uint8(0))
	f.Add(uint8(1), "1", tail, strings.ToUpper(sha(tail)), uint8(0))
	f.Add(uint8(0), "2", small, "", uint8(0))
	f.Add(uint8(0), "-1", small, "", uint8(0))
	f.Add(uint8(0), "99999999999999999999", small, "", uint8(0))
	f.Add(uint8(0), "0/../1", small, "", uint8(0))
	f.Add(uint8(2), "0", small, "", uint8(0))
	f.Add(uint8(3), "0", small, "", uint8(0))
	f.Add(uint8(0), "0", []byte("age-encryption.org/v1\n-> X25519 AAAA\nAAAA\n--- AAAA\n"), "", uint8(0))
	f.Fuzz(func(t *testing.T, which uint8, index string, body []byte, shaHeader string, lengthMode uint8) {
		e := e.in(t)
		u := uploads[int(which)%len(uploads)]
		if shaHeader == "" {
			shaHeader = sha(body)
		}
		r := fuzzRequest("PUT", "/v1/uploads/"+u.id+"/chunks/"+index, "", body)
		r.Header.Set("Authorization", "Bearer "+e.submit)
		r.Header.Set("Chunk-SHA256", shaHeader)
		switch lengthMode % 4 {
		case 1:
			r.ContentLength = -1 // chunked transfer encoding
		case 2:
			r.ContentLength = int64(len(body)) + 1 // the client promised more than it sent
		case 3:
			r.ContentLength = 1 << 40
		}
		before := chunkState(t, e.db, u.id)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkAnswer(t, "PUT chunk", w)
		after := chunkState(t, e.db, u.id)

		switch w.Code {
		case http.StatusNoContent:
			n, err := strconv.ParseInt(index, 10, 64)
			if err != nil || strings.ContainsAny(index, "+-") || u.size == 0 || n*ChunkSize >= u.size {
				t.Fatalf("chunk %q of upload %q stored", index, u.id)
			}
			i := int(n)
			if r.ContentLength >= 0 && r.ContentLength != int64(len(body)) {
				t.Fatalf("chunk stored although Content-Length %d differs from the %d bytes sent", r.ContentLength, len(body))
			}
			if int64(len(body)) != chunkLen(u.size, i) || sha(body) != shaHeader {
				t.Fatalf("wrong chunk %d (%d bytes) stored", i, len(body))
			}
			if prev, ok := before[i]; ok && prev != string(body) {
				t.Fatalf("chunk %d changed", i)
			}
			if after[i] != string(body) {
				t.Fatalf("chunk %d stored as different bytes", i)
			}
			delete(after, i)
			delete(before, i)
			if len(after) != len(before) {
				t.Fatalf("other chunks changed: %v -> %v", before, after)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
			http.StatusUnprocessableEntity, http.StatusMovedPermanently:
			if len(after) != len(before) {
				t.Fatalf("status %d, but the stored chunks changed", w.Code)
			}
			for i, data := range before {
				if after[i] != data {
					t.Fatalf("status %d, but chunk %d changed", w.Code, i)
				}
			}
		default:
			t.Fatalf("PUT chunk %q: unexpected status %d %s", index, w.Code, w.Body.String())
		}
	})
}

// FuzzOneShot posts arbitrary bodies and content types as whole
// submissions. A submission is created only for an acceptable age file,
// holding exactly the bytes sent; any refusal leaves no upload and no
// submission behind.
func FuzzOneShot(f *testing.F) {
	e := newTestEnv(f)
	valid := e.testFile(300)
	f.Add(valid, "application/octet-stream")
	f.Add(valid, "")
	f.Add(valid, "text/plain")
	f.Add(valid[:len(valid)-1], "application/age")
	f.Add(append(bytes.Clone(valid), 0), "application/x-www-form-urlencoded")
	f.Add(truncateToFragment(f, valid), "")
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n"), "")
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\nAAAA\n--- AAAA\n"), "")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		e := e.in(t)
		before, err := e.db.Submissions(false)
		if err != nil {
			t.Fatal(err)
		}
		r := fuzzRequest("POST", "/v1/submissions", "", body)
		r.Header.Set("Authorization", "Bearer "+e.submit)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkAnswer(t, "POST /v1/submissions", w)
		after, err := e.db.Submissions(false)
		if err != nil {
			t.Fatal(err)
		}
		if n := e.expireAll(); n != 0 {
			t.Fatalf("status %d left %d uploads behind", w.Code, n)
		}
		switch w.Code {
		case http.StatusCreated:
			if len(after) != len(before)+1 {
				t.Fatalf("201, but %d submissions became %d", len(before), len(after))
			}
			var newest *store.Submission
			for i := range after {
				if !slices.ContainsFunc(before, func(s store.Submission) bool { return s.ID == after[i].ID }) {
					newest = &after[i]
				}
			}
			if newest == nil || newest.SHA256 != sha(body) || newest.Size != int64(len(body)) {
				t.Fatalf("stored %+v for a body of %d bytes with sha256 %s", newest, len(body), sha(body))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			if len(after) != len(before) {
				t.Fatalf("status %d, but %d submissions became %d", w.Code, len(before), len(after))
			}
		default:
			t.Fatalf("unexpected status %d %s", w.Code, w.Body.String())
		}
	})
}

// FuzzRequest sends any method, path, query, content type and body, with
// no token, a submit or a collect token, or a forged one, to the whole API.
// Whatever arrives, the answer is never a server error, always carries the
// security headers, and any error is JSON; routes that take query
// parameters (the log routes) parse them here.
func FuzzRequest(f *testing.F) {
	e := newTestEnv(f)
	file := e.testFile(100)
	if w := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: file}); w.Code != http.StatusCreated {
		f.Fatalf("setup: %d %s", w.Code, w.Body.String())
	}
	subs, err := e.db.Submissions(false)
	if err != nil || len(subs) != 1 {
		f.Fatalf("setup: %v, %v", subs, err)
	}
	id := subs[0].ID
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"}
	for _, s := range []struct {
		method uint8
		path   string
		query  string
		body   string
		token  uint8
	}{
		{0, "/v1/health", "", "", 0},
		{0, "/v1/recipients", "", "", 1},
		{0, "/v1/log/checkpoint", "", "", 2},
		{0, "/v1/log/inclusion", "index=0&size=1", "", 1},
		{0, "/v1/log/inclusion", "index=-1&size=99999999999999999999", "", 1},
		{0, "/v1/log/inclusion", "index=0&index=1&size=1", "", 1},
		{0, "/v1/log/consistency", "old=0&new=1", "", 2},
		{0, "/v1/log/consistency", "old=1&new=0", "", 2},
		{0, "/v1/log/consistency", "old=%zz&new=1", "", 2},
		{0, "/v1/log/leaves", "start=0&end=1", "", 1},
		{0, "/v1/log/leaves", "start=0&end=1001", "", 1},
		{0, "/v1/log/leaves", "start=9223372036854775807&end=-9223372036854775808", "", 1},
		{0, "/v1/submissions", "pending=1", "", 2},
		{0, "/v1/submissions", "pending=yes", "", 2},
		{0, "/v1/submissions", "pending=1&after=0&limit=1000", "", 2},
		{0, "/v1/submissions", "after=-1&limit=0", "", 2},
		{0, "/v1/submissions/" + id, "", "", 2},
		{1, "/v1/submissions/" + id + "/collected", "", "", 2},
		{1, "/v1/uploads", "", `{"size":10}`, 1},
		{0, "/v1/uploads/" + id, "", "", 1},
		{3, "/v1/uploads/" + id, "", "", 1},
		{1, "/v1/uploads/" + id + "/finish", "", `{}`, 1},
		{0, "/v1/submissions/../../etc/passwd", "", "", 2},
		{0, "/v1//health", "", "", 0},
		{0, "/v1/health\x00", "", "", 0},
		{4, "/v1/health", "", "", 0},
		{0, "/v1/recipients", "", "", 3},
	} {
		f.Add(s.method, s.path, s.query, "", []byte(s.body), s.token)
	}
	f.Fuzz(func(t *testing.T, method uint8, path, query, contentType string, body []byte, token uint8) {
		e := e.in(t)
		r := fuzzRequest(methods[int(method)%len(methods)], path, query, body)
		switch token % 4 {
		case 1:
			r.Header.Set("Authorization", "Bearer "+e.submit)
		case 2:
			r.Header.Set("Authorization", "Bearer "+e.collect)
		case 3:
			r.Header.Set("Authorization", "Bearer tm1_"+strings.Repeat("A", 32))
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkAnswer(t, r.Method+" "+path+"?"+query, w)
	})
}
