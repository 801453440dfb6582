package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/store"
)

func TestHealth(t *testing.T) {
	e := newTestEnv(t)
	w := e.do(req{method: "GET", path: "/v1/health"})
	expect(t, w, http.StatusOK, `{"status":"ok"}`)
}

func TestAuth(t *testing.T) {
	e := newTestEnv(t)
	revoked := e.token(RoleSubmit, "stolen-laptop")
	if err := revokeToken(e.db, "stolen-laptop"); err != nil {
		t.Fatal(err)
	}
	// A well-formed token that was never issued.
	unknown := tokenPrefix + strings.Repeat("A", 32)
	tests := []struct {
		name, method, path string
		header             string // Authorization
		status             int
		msg                string
	}{
		{"no header", "GET", "/v1/recipients", "", 401, "missing Authorization"},
		{"basic auth", "GET", "/v1/recipients", "Basic dXNlcjpwdw==", 401, "malformed token"},
		{"bearer without token", "GET", "/v1/recipients", "Bearer", 401, "malformed token"},
		{"wrong prefix", "GET", "/v1/recipients", "Bearer tm2_" + strings.Repeat("A", 32), 401, "malformed token"},
		{"short token", "GET", "/v1/recipients", "Bearer tm1_AAAA", 401, "malformed token"},
		{"not base64url", "GET", "/v1/recipients", "Bearer tm1_" + strings.Repeat("+", 32), 401, "malformed token"},
		{"unknown token", "GET", "/v1/recipients", "Bearer " + unknown, 401, "unknown token"},
		{"revoked token", "GET", "/v1/recipients", "Bearer " + revoked, 401, "revoked"},
		{"submit reads recipients", "GET", "/v1/recipients", "Bearer " + e.submit, 200, ""},
		{"collect reads recipients", "GET", "/v1/recipients", "bearer " + e.collect, 200, ""},
		{"submit cannot list", "GET", "/v1/submissions", "Bearer " + e.submit, 403, "needs a collect token"},
		{"submit cannot download", "GET", "/v1/submissions/" + strings.Repeat("a", 32), "Bearer " + e.submit, 403, "collect"},
		{"submit cannot mark collected", "POST", "/v1/submissions/" + strings.Repeat("a", 32) + "/collected", "Bearer " + e.submit, 403, "collect"},
		{"collect cannot upload", "POST", "/v1/uploads", "Bearer " + e.collect, 403, "needs a submit token"},
		{"collect cannot submit", "POST", "/v1/submissions", "Bearer " + e.collect, 403, "submit"},
		{"collect cannot put chunks", "PUT", "/v1/uploads/" + strings.Repeat("a", 32) + "/chunks/0", "Bearer " + e.collect, 403, "submit"},
		{"health needs nothing", "GET", "/v1/health", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			w := e.do(req{method: tt.method, path: tt.path, header: map[string]string{"Authorization": tt.header}})
			expect(t, w, tt.status, tt.msg)
			if tt.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	e := newTestEnv(t)
	w := e.do(req{method: "GET", path: "/v1/recipients", token: e.collect})
	expect(t, w, http.StatusOK, "")
	var got RecipientsInfo
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "mlkem768x25519" || len(got.Recipients) != 1 || got.Recipients[0] != e.recipient.(*age.HybridRecipient).String() ||
		got.LogKey != e.logKey() || got.SignedRecipients != "" {
		t.Fatalf("recipients = %+v", got)
	}
}

// TestAuthFailuresRateLimited exhausts the failure budget: further failures
// get 429, and a valid token still works.
func TestAuthFailuresRateLimited(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AuthFailureRate = 1; c.AuthFailureBurst = 3 })
	bad := req{method: "GET", path: "/v1/recipients", token: tokenPrefix + strings.Repeat("B", 32)}
	for range 3 {
		expect(t, e.do(bad), http.StatusUnauthorized, "unknown token")
	}
	w := e.do(bad)
	expect(t, w, http.StatusTooManyRequests, "too many failed authentication attempts")
	if w.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	expect(t, e.do(req{method: "GET", path: "/v1/recipients"}), http.StatusTooManyRequests, "")
	expect(t, e.do(req{method: "GET", path: "/v1/recipients", token: e.submit}), http.StatusOK, "")
	// The budget refills with time.
	e.clock.advance(2 * time.Second)
	expect(t, e.do(bad), http.StatusUnauthorized, "")
}

func TestCreateUpload(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxSize = 10 << 20 })
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		msg         string
	}{
		{"size only", `{"size":100}`, "", 201, `"chunks":1`},
		{"size and sha256", `{"size":3145729,"sha256":"` + strings.Repeat("ab", 32) + `"}`, "application/json", 201, `"chunks":4`},
		{"curl's default content type", `{"size":100}`, "application/x-www-form-urlencoded", 201, ""},
		{"largest size", fmt.Sprintf(`{"size":%d}`, 10<<20), "", 201, `"chunks":10`},
		{"too large", fmt.Sprintf(`{"size":%d}`, 10<<20+1), "", 413, "larger than this server's limit of 10485760 bytes"},
		{"missing size", `{}`, "", 400, `"size" is required`},
		{"zero size", `{"size":0}`, "", 400, "at least 1"},
		{"negative size", `{"size":-5}`, "", 400, "at least 1"},
		{"size as string", `{"size":"100"}`, "", 400, `field "size" must be a number`},
		{"fractional size", `{"size":1.5}`, "", 400, `field "size" must be a number`},
		{"uppercase sha256", `{"size":100,"sha256":"` + strings.Repeat("AB", 32) + `"}`, "", 400, "64 lowercase hex"},
		{"short sha256", `{"size":100,"sha256":"abcd"}`, "", 400, "64 lowercase hex"},
		{"unknown field", `{"size":100,"name":"interview.m4a"}`, "", 400, `unknown field "name"`},
		{"two objects", `{"size":100}{"size":100}`, "", 400, "single JSON object"},
		{"array", `[{"size":100}]`, "", 400, "must be a JSON object"},
		{"syntax error", `{"size":100,}`, "", 400, "malformed JSON"},
		{"truncated", `{"size":100`, "", 400, "ends early"},
		{"empty body", ``, "", 400, "request body is empty"},
		{"body over 4 KiB", `{"size":100,"sha256":"` + strings.Repeat(" ", 5000) + `"}`, "", 413, "larger than this route's limit of 4096 bytes"},
		{"text/plain", `{"size":100}`, "text/plain", 415, "Content-Type"},
		{"multipart", `{"size":100}`, "multipart/form-data; boundary=x", 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			w := e.do(req{method: "POST", path: "/v1/uploads", token: e.submit, body: []byte(tt.body),
				header: map[string]string{"Content-Type": tt.contentType}})
			expect(t, w, tt.status, tt.msg)
			if tt.status != 201 {
				return
			}
			var resp struct {
				ID        string `json:"id"`
				Size      int64  `json:"size"`
				ChunkSize int    `json:"chunk_size"`
				Chunks    int    `json:"chunks"`
				Expires   string `json:"expires"`
			}
			dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&resp); err != nil {
				t.Fatal(err)
			}
			if !ids.ValidSubmission(resp.ID) || resp.ChunkSize != ChunkSize ||
				resp.Expires != store.UploadExpiry(testNow.Add(DefaultUploadExpiry)).Format(time.RFC3339) {
				t.Fatalf("response %+v", resp)
			}
		})
	}
	t.Run("body over 4 KiB without Content-Length", func(t *testing.T) {
		e := e.in(t)
		w := e.do(req{method: "POST", path: "/v1/uploads", token: e.submit, unknownLength: true,
			body: []byte(`{"size":100,"sha256":"` + strings.Repeat(" ", 5000) + `"}`)})
		expect(t, w, 413, "larger than 4096 bytes")
	})
}

// TestChunks walks one upload through every answer PUT can give.
func TestChunks(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(2*ChunkSize + 1000) // three chunks, the last short
	id := e.createUpload(file, true)
	c0, c1, c2 := chunkOf(file, 0), chunkOf(file, 1), chunkOf(file, 2)
	other := bytes.Repeat([]byte{0x55}, ChunkSize)
	path := func(i string) string { return "/v1/uploads/" + id + "/chunks/" + i }
	notAge := append([]byte("this is not an age file\n"), make([]byte, ChunkSize-24)...)
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	wrongType := encrypt(t, bytes.Repeat([]byte("x"), 2*ChunkSize), x25519.Recipient())[:ChunkSize]
	scryptR, err := age.NewScryptRecipient("password")
	if err != nil {
		t.Fatal(err)
	}
	scryptR.SetWorkFactor(10)
	scrypt := encrypt(t, bytes.Repeat([]byte("x"), 2*ChunkSize), scryptR)[:ChunkSize]

	tests := []struct {
		name     string
		index    string
		body     []byte
		sha      string // Chunk-SHA256; "" means the body's
		noLength bool
		status   int
		msg      string
	}{
		{"chunk 0 not age", "0", notAge, "", false, 422, "not an acceptable age file"},
		{"chunk 0 for X25519", "0", wrongType, "", false, 422, "mlkem768x25519"},
		{"chunk 0 scrypt", "0", scrypt, "", false, 422, "not an acceptable age file"},
		{"missing Chunk-SHA256", "1", c1, "-", false, 400, "missing Chunk-SHA256"},
		{"malformed Chunk-SHA256", "1", c1, "xyz", false, 400, "64 lowercase hex"},
		{"Chunk-SHA256 mismatch", "1", c1, sha(c0), false, 422, "does not match"},
		{"short middle chunk", "1", c1[:1000], "", false, 422, "must be exactly 1048576 bytes"},
		{"short chunk without Content-Length", "1", c1[:1000], "", true, 422, "must be exactly 1048576 bytes, got 1000"},
		{"long last chunk", "2", append(bytes.Clone(c2), 0), "", false, 422, fmt.Sprintf("must be exactly %d bytes", len(c2))},
		{"over the chunk size", "1", append(bytes.Clone(c1), 0), "", false, 413, "limit of 1048576 bytes"},
		{"over the chunk size without Content-Length", "1", append(bytes.Clone(c1), 0), "", true, 413, "limit of 1048576 bytes"},
		{"index out of range", "3", c2, "", false, 422, "out of range: this upload has chunks 0 to 2"},
		{"index overflows", "99999999999999999999999", c2, "", false, 400, "not a valid index"},
		{"chunk 1", "1", c1, "", false, 204, ""},
		{"chunk 1 again", "1", c1, "", false, 204, ""},
		{"chunk 1 different", "1", other, "", false, 409, "already stored with different bytes"},
		{"chunk 0", "0", c0, "", false, 204, ""},
		{"chunk 2", "2", c2, "", false, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			h := map[string]string{"Chunk-SHA256": sha(tt.body)}
			switch tt.sha {
			case "-":
				delete(h, "Chunk-SHA256")
			case "":
			default:
				h["Chunk-SHA256"] = tt.sha
			}
			w := e.do(req{method: "PUT", path: path(tt.index), token: e.submit, body: tt.body, header: h, unknownLength: tt.noLength})
			expect(t, w, tt.status, tt.msg)
		})
	}
	// Nothing that was refused was stored: chunk 1 holds the first bytes.
	got, err := e.db.ReadChunk(id, 1)
	if err != nil || !bytes.Equal(got, c1) {
		t.Fatalf("chunk 1 in the store differs (%v)", err)
	}

	t.Run("unknown upload", func(t *testing.T) {
		e := e.in(t)
		w := e.putChunk(strings.Repeat("0", 32), 0, c0)
		expect(t, w, 404, "no upload")
	})
	t.Run("malformed id", func(t *testing.T) {
		e := e.in(t)
		w := e.do(req{method: "PUT", path: "/v1/uploads/XYZ/chunks/0", token: e.submit, body: c0})
		expect(t, w, 404, "no such route")
	})
}

func TestChunkZeroRefusedIsNotStored(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(100)
	id := e.createUpload(file, true)
	bad := bytes.Clone(file)
	copy(bad, "age-encryption.org/v2")
	expect(t, e.putChunk(id, 0, bad), 422, "not an acceptable age file")
	w := e.do(req{method: "GET", path: "/v1/uploads/" + id, token: e.submit})
	expect(t, w, 200, `"missing":[0]`)
}

func TestUploadAndFinish(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(2*ChunkSize + 10)
	id := e.createUpload(file, false)
	status := func() string {
		w := e.do(req{method: "GET", path: "/v1/uploads/" + id, token: e.submit})
		expect(t, w, 200, "")
		return w.Body.String()
	}
	finish := func(body string) *httpResponse {
		w := e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit, body: []byte(body)})
		return &httpResponse{w.Code, w.Body.String()}
	}
	if got, want := status(), fmt.Sprintf(`{"id":"%s","size":%d,"chunk_size":1048576,"chunks":3,"missing":[0,1,2],"state":"open"}`+"\n", id, len(file)); got != want {
		t.Fatalf("status = %s, want %s", got, want)
	}
	expect(t, e.putChunk(id, 2, chunkOf(file, 2)), 204, "")
	expect(t, e.putChunk(id, 0, chunkOf(file, 0)), 204, "")
	if got := status(); !strings.Contains(got, `"missing":[1]`) {
		t.Fatalf("status = %s", got)
	}
	finish(`{"sha256":"`+sha(file)+`"}`).expect(t, 422, "1 of 3 chunks are missing (the first is chunk 1)")
	expect(t, e.putChunk(id, 1, chunkOf(file, 1)), 204, "")
	if got := status(); !strings.Contains(got, `"missing":[]`) {
		t.Fatalf("status = %s", got)
	}
	finish(``).expect(t, 400, `"sha256" is required`)
	finish(`{"sha256":"nope"}`).expect(t, 400, "64 lowercase hex")
	finish(`{"sha":"`+sha(file)+`"}`).expect(t, 400, "unknown field")

	r := finish(`{"sha256":"` + sha(file) + `"}`)
	r.expect(t, 201, "")
	rc, err := receipt.Parse([]byte(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Verify(e.logKey()); err != nil {
		t.Fatal(err)
	}
	if rc.ID != id || rc.Size != int64(len(file)) || rc.SHA256 != sha(file) || rc.Received != "2026-11-27" || rc.Index != 0 {
		t.Fatalf("receipt %+v", rc)
	}

	// A client that lost the response learns the outcome from GET.
	if got, want := status(), `{"id":"`+id+`","state":"complete","receipt":`+strings.TrimSpace(r.body)+"}\n"; got != want {
		t.Fatalf("status after finish = %s, want %s", got, want)
	}
	finish(``).expect(t, 409, "GET /v1/uploads/"+id+" returns its receipt")
	expect(t, e.putChunk(id, 1, chunkOf(file, 1)), 409, "already finished")
	expect(t, e.do(req{method: "DELETE", path: "/v1/uploads/" + id, token: e.submit}), 409, "already finished")

	// The stored submission is only the date, like the receipt.
	sub, err := e.db.Submission(id)
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Received.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("stored received time %v has a time of day", sub.Received)
	}
}

type httpResponse struct {
	code int
	body string
}

func (r *httpResponse) expect(t *testing.T, status int, substr string) {
	t.Helper()
	text := r.body
	if status >= 400 {
		var body struct {
			Error string `json:"error"`
		}
		json.Unmarshal([]byte(r.body), &body)
		text = body.Error
	}
	if r.code != status || !strings.Contains(text, substr) {
		t.Fatalf("status %d body %s, want %d and %q", r.code, r.body, status, substr)
	}
}

func TestFinishDeclaredAtCreate(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(500)
	w := e.upload(file)
	expect(t, w, 201, `"sha256":"`+sha(file)+`"`)
}

func TestFinishWrongSHA256DeletesUpload(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(500)
	id := e.createUpload(file, false)
	expect(t, e.putChunk(id, 0, file), 204, "")
	wrong := strings.Repeat("0", 64)
	w := e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit, body: []byte(`{"sha256":"` + wrong + `"}`)})
	expect(t, w, 422, "the upload has been deleted")
	expect(t, e.do(req{method: "GET", path: "/v1/uploads/" + id, token: e.submit}), 404, "")
	if n := e.expireAll(); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

func TestFinishConflictingSHA256(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(500)
	id := e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, file), 204, "")
	w := e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit, body: []byte(`{"sha256":"` + strings.Repeat("1", 64) + `"}`)})
	expect(t, w, 422, "differs from the sha256 declared")
	// Nothing was wrong with the data, so the upload stays.
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), 201, "")
}

// TestFinishTruncatedAgeFile uploads an age file cut short after a whole
// number of chunks: the header is fine and the hash matches what was
// declared, but no age encryptor makes a payload of that length.
func TestFinishTruncatedAgeFile(t *testing.T) {
	e := newTestEnv(t)
	file := truncateToFragment(t, e.testFile(100_000))
	id := e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, file), 204, "")
	w := e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit})
	expect(t, w, 422, "not a complete age file")
	if n := e.expireAll(); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

func TestDeleteUpload(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(100)
	id := e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, file), 204, "")
	expect(t, e.do(req{method: "DELETE", path: "/v1/uploads/" + id, token: e.submit}), 204, "")
	expect(t, e.do(req{method: "DELETE", path: "/v1/uploads/" + id, token: e.submit}), 404, "no upload")
	expect(t, e.putChunk(id, 0, file), 404, "no upload")
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), 404, "")
}

func TestUploadExpiry(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.UploadExpiry = time.Hour })
	file := e.testFile(100)
	id := e.createUpload(file, true)
	// The record keeps the expiry rounded up to the hour, never earlier.
	expires := store.UploadExpiry(e.clock.Now().Add(time.Hour))
	e.clock.advance(expires.Sub(e.clock.Now()) - time.Second)
	if n, err := e.srv.ExpireUploads(); err != nil || n != 0 {
		t.Fatalf("expired %d, %v before the expiry", n, err)
	}
	e.clock.advance(time.Second)
	if n, err := e.srv.ExpireUploads(); err != nil || n != 1 {
		t.Fatalf("expired %d, %v at the expiry", n, err)
	}
	expect(t, e.putChunk(id, 0, file), 404, "expired after 1h0m0s")
}

// TestUploadExpirySlides shows that an upload that keeps making progress
// does not expire, however long it takes in all, and that one that stops
// expires -upload-expiry after its last chunk.
func TestUploadExpirySlides(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.UploadExpiry = time.Hour })
	file := e.testFile(3 * ChunkSize)
	id := e.createUpload(file, true)
	for i := range 3 {
		e.clock.advance(50 * time.Minute)
		if n, err := e.srv.ExpireUploads(); err != nil || n != 0 {
			t.Fatalf("chunk %d: expired %d, %v while the upload makes progress", i, n, err)
		}
		expect(t, e.putChunk(id, i, chunkOf(file, i)), http.StatusNoContent, "")
	}
	// Sending a chunk again is no progress and does not extend the upload.
	e.clock.advance(50 * time.Minute)
	expect(t, e.putChunk(id, 2, chunkOf(file, 2)), http.StatusNoContent, "")
	e.clock.advance(10 * time.Minute)
	// An hour after the last new chunk, rounded up to the hour.
	e.clock.advance(store.UploadExpiry(e.clock.Now()).Sub(e.clock.Now()))
	if n, err := e.srv.ExpireUploads(); err != nil || n != 1 {
		t.Fatalf("expired %d, %v an hour after the last new chunk", n, err)
	}
}

func TestOneShot(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxSize = 3 * ChunkSize })
	good := e.testFile(2*ChunkSize + 77)
	x25519, _ := age.GenerateX25519Identity()
	tests := []struct {
		name        string
		body        []byte
		contentType string
		noLength    bool
		status      int
		msg         string
	}{
		{"no content type", good, "", false, 201, ""},
		{"octet-stream, streamed", good, "application/octet-stream", true, 201, ""},
		{"application/age", good, "application/age", false, 201, ""},
		{"curl --data-binary", good, "application/x-www-form-urlencoded", false, 201, ""},
		{"text/plain", good, "text/plain", false, 415, "application/octet-stream"},
		{"empty", nil, "", false, 400, "request body is empty"},
		{"not age", bytes.Repeat([]byte("plaintext testimony\n"), 100), "", false, 422, "not an acceptable age file"},
		{"wrong recipient type", encrypt(t, []byte("x"), x25519.Recipient()), "", false, 422, "mlkem768x25519"},
		{"truncated", truncateToFragment(t, good), "", false, 422, "not a complete age file"},
		{"too large", e.testFile(3 * ChunkSize), "", false, 413, "limit of 3145728 bytes"},
		{"too large, streamed", e.testFile(3 * ChunkSize), "", true, 413, "larger than this server's limit of 3145728 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			w := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: tt.body,
				header: map[string]string{"Content-Type": tt.contentType}, unknownLength: tt.noLength})
			expect(t, w, tt.status, tt.msg)
			if n := e.expireAll(); n != 0 {
				t.Errorf("%d hidden uploads left behind", n)
			}
			// The chunk buffer is given back, whatever the outcome.
			if n := len(e.srv.buffers.slots); n != 0 {
				t.Errorf("%d chunk buffers still held", n)
			}
			if tt.status != 201 {
				return
			}
			rc, err := receipt.Parse(w.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if rc.Size != int64(len(tt.body)) || rc.SHA256 != sha(tt.body) {
				t.Fatalf("receipt %+v", rc)
			}
			// The id of a one-shot submission works with GET /v1/uploads too.
			expect(t, e.do(req{method: "GET", path: "/v1/uploads/" + rc.ID, token: e.submit}), 200, `"state":"complete"`)
		})
	}
	subs, err := e.db.Submissions(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 4 {
		t.Fatalf("%d submissions stored, want 4", len(subs))
	}
}

func TestCollect(t *testing.T) {
	e := newTestEnv(t)
	small := e.testFile(100)
	big := e.testFile(2*ChunkSize + 3)
	var ids []string
	for _, f := range [][]byte{small, big} {
		w := e.upload(f)
		expect(t, w, 201, "")
		rc, err := receipt.Parse(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	list := func(query string) []submissionEntry {
		t.Helper()
		w := e.do(req{method: "GET", path: "/v1/submissions" + query, token: e.collect})
		expect(t, w, 200, "")
		var l submissionList
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		return l.Submissions
	}
	if got := list("?pending=1"); len(got) != 2 || got[0].Received != "2026-11-27" || got[0].Index != 0 || got[1].Index != 1 {
		t.Fatalf("pending = %+v", got)
	}
	for i, f := range [][]byte{small, big} {
		w := e.do(req{method: "GET", path: "/v1/submissions/" + ids[i], token: e.collect})
		expect(t, w, 200, "")
		if !bytes.Equal(w.Body.Bytes(), f) {
			t.Fatalf("download %d differs", i)
		}
		h := w.Header()
		if h.Get("Content-Length") != fmt.Sprint(len(f)) || h.Get("Ciphertext-SHA256") != sha(f) ||
			h.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("download headers %v", h)
		}
	}
	collected := req{method: "POST", path: "/v1/submissions/" + ids[0] + "/collected", token: e.collect}
	expect(t, e.do(collected), 204, "")
	expect(t, e.do(collected), 204, "")
	if got := list("?pending=1"); len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("pending after collecting one = %+v", got)
	}
	if got := list(""); len(got) != 2 {
		t.Fatalf("all = %+v", got)
	}
	if got := list("?pending=0"); len(got) != 2 {
		t.Fatalf("pending=0 = %+v", got)
	}
	expect(t, e.do(req{method: "GET", path: "/v1/submissions?pending=yes", token: e.collect}), 400, "pending must be 1 or 0")
	missing := strings.Repeat("f", 32)
	expect(t, e.do(req{method: "GET", path: "/v1/submissions/" + missing, token: e.collect}), 404, "no submission")
	expect(t, e.do(req{method: "POST", path: "/v1/submissions/" + missing + "/collected", token: e.collect}), 404, "no submission")
	// An unfinished upload is not a submission.
	open := e.createUpload(small, true)
	expect(t, e.do(req{method: "GET", path: "/v1/submissions/" + open, token: e.collect}), 404, "no submission")
}

func TestUnknownRoutes(t *testing.T) {
	e := newTestEnv(t)
	expect(t, e.do(req{method: "GET", path: "/v1/nothing"}), 404, "no such route")
	expect(t, e.do(req{method: "GET", path: "/"}), 404, "no such route")
	expect(t, e.do(req{method: "PATCH", path: "/v1/uploads", token: e.submit}), 405, "method PATCH is not allowed")
	expect(t, e.do(req{method: "DELETE", path: "/v1/health"}), 405, "not allowed")
}

// TestServerErrorIsGeneric breaks the store under a running handler: the
// client gets a generic 500, the log gets the detail.
func TestServerErrorIsGeneric(t *testing.T) {
	e := newTestEnv(t)
	e.db.Close()
	w := e.do(req{method: "GET", path: "/v1/submissions", token: e.collect})
	expect(t, w, 500, genericServerError)
	if strings.Contains(w.Body.String(), "database") {
		t.Errorf("500 leaks details: %s", w.Body.String())
	}
	if !strings.Contains(e.logs.String(), "database not open") {
		t.Errorf("the log lacks the detail:\n%s", e.logs.String())
	}
}

// TestLogsHoldNoSecrets sends requests full of things that must never be
// logged and looks for them in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(100)
	marker := "MARKER-4711"
	do := func(r req) {
		hr := newRequest(r)
		hr.RemoteAddr = "198.51.100.23:40404"
		hr.Header.Set("User-Agent", "Agent-"+marker)
		hr.Header.Set("X-Forwarded-For", "203.0.113.9")
		e.h.ServeHTTP(httptest.NewRecorder(), hr)
	}
	do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: file})
	do(req{method: "POST", path: "/v1/uploads", token: e.submit, body: []byte(`{"size":1,"sha256":"` + marker + `"}`)})
	do(req{method: "GET", path: "/v1/recipients", token: tokenPrefix + strings.Repeat("Z", 32)})
	do(req{method: "GET", path: "/v1/recipients", token: e.collect})
	logs := e.logs.String()
	if !strings.Contains(logs, "route=/v1/submissions") || !strings.Contains(logs, "status=401") {
		t.Fatalf("the log does not record requests:\n%s", logs)
	}
	for _, secret := range []string{"198.51.100.23", "203.0.113.9", marker, e.submit, e.collect, tokenPrefix, "age-encryption.org"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
}

func TestFailureLimiter(t *testing.T) {
	now := testNow
	l := newFailureLimiter(2, 4, func() time.Time { return now })
	got := ""
	step := func(n int) {
		for range n {
			if l.allow() {
				got += "y"
			} else {
				got += "n"
			}
		}
		got += " "
	}
	step(5)
	now = now.Add(time.Second) // two more
	step(3)
	now = now.Add(time.Hour) // refill is capped at the burst
	step(5)
	if want := "yyyyn yyn yyyyn "; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestMissingChunks(t *testing.T) {
	tests := []struct {
		have []int
		n    int
		want string
	}{
		{nil, 3, "[0 1 2]"},
		{[]int{0, 1, 2}, 3, "[]"},
		{[]int{1}, 3, "[0 2]"},
		{[]int{0, 2}, 4, "[1 3]"},
		{nil, 0, "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(missingChunks(tt.have, tt.n)); got != tt.want {
			t.Errorf("missingChunks(%v, %d) = %s, want %s", tt.have, tt.n, got, tt.want)
		}
	}
}
