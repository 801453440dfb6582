package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// cutBody yields data, then fails as a connection that died does.
type cutBody struct{ r io.Reader }

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

// putFrom sends body as chunk index of upload id from offset (or as the
// whole chunk when offset < 0), declaring a Content-Length of length and
// the SHA-256 of chunk.
func (e *testEnv) putFrom(id string, index, offset int, chunk []byte, body io.Reader, length int) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest("PUT", "/v1/uploads/"+id+"/chunks/"+strconv.Itoa(index), body)
	r.ContentLength = int64(length)
	r.Header.Set("Authorization", "Bearer "+e.submit)
	r.Header.Set("Chunk-SHA256", sha(chunk))
	if offset >= 0 {
		r.Header.Set("Upload-Offset", strconv.Itoa(offset))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	checkSecurityHeaders(e.t, w.Result().Header)
	return w
}

type partialState struct {
	Missing []int `json:"missing"`
	Partial []struct {
		Index  int `json:"index"`
		Offset int `json:"offset"`
	} `json:"partial"`
}

func (e *testEnv) partial(id string) partialState {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/v1/uploads/" + id, token: e.submit})
	expect(e.t, w, http.StatusOK, "")
	var st partialState
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (st partialState) offset(index int) int {
	for _, p := range st.Partial {
		if p.Index == index {
			return p.Offset
		}
	}
	return 0
}

// TestResumeInsideChunk: a chunk whose connection dies half way keeps what
// arrived; the status says from where to continue, and the rest completes
// the chunk, which is then checked whole.
func TestResumeInsideChunk(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(ChunkSize + 5000)
	id := e.createUpload(file, true)
	chunk := chunkOf(file, 0)

	w := e.putFrom(id, 0, 0, chunk, &cutBody{bytes.NewReader(chunk[:300000])}, len(chunk))
	expect(t, w, http.StatusBadRequest, "failed to read the request body")
	st := e.partial(id)
	if st.offset(0) != 300000 || len(st.Missing) != 2 {
		t.Fatalf("status after a cut at 300000: %+v; want chunk 0 partial at 300000 and still missing", st)
	}
	// A finish now names the chunk as missing.
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), 422, "chunks are missing")

	// Another cut further on.
	w = e.putFrom(id, 0, 300000, chunk, &cutBody{bytes.NewReader(chunk[300000:700001])}, len(chunk)-300000)
	expect(t, w, http.StatusBadRequest, "")
	if got := e.partial(id).offset(0); got != 700001 {
		t.Fatalf("offset %d after the second cut, want 700001", got)
	}
	expect(t, e.putFrom(id, 0, 700001, chunk, bytes.NewReader(chunk[700001:]), len(chunk)-700001), http.StatusNoContent, "")
	if st := e.partial(id); len(st.Partial) != 0 || len(st.Missing) != 1 || st.Missing[0] != 1 {
		t.Fatalf("status after the chunk completed: %+v", st)
	}
	// Sending the whole chunk again, as a first client does, is harmless.
	expect(t, e.putChunk(id, 0, chunk), http.StatusNoContent, "")
	expect(t, e.putFrom(id, 1, 0, chunkOf(file, 1), bytes.NewReader(chunkOf(file, 1)), 5000+len(file)-ChunkSize-5000), http.StatusNoContent, "")
	// The cuts and resumptions kept the store's running hash in step, so
	// finishing reads nothing back.
	if _, read, err := e.db.UploadSHA256(id, int64(len(file))); err != nil || read != 0 {
		t.Fatalf("UploadSHA256 before finish: read %d bytes back, %v; want 0", read, err)
	}
	w = e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit})
	expect(t, w, http.StatusCreated, sha(file))
}

// TestResumeRefusals: every way a resumed chunk can be wrong, and that
// none of them changes what is stored.
func TestResumeRefusals(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(2*ChunkSize + 100)
	chunk := chunkOf(file, 1)
	const have = 200000
	other := bytes.Clone(chunk)
	other[100] ^= 1
	otherTail := bytes.Clone(chunk)
	otherTail[have+100] ^= 1
	tests := []struct {
		name    string
		offset  int
		header  string // raw Upload-Offset, overrides offset
		body    []byte
		sum     []byte // the chunk whose SHA-256 is declared
		status  int
		msg     string
		wantHas int // offset of chunk 1 afterwards
	}{
		{"offset not a number", 0, "12a", chunk[have:], chunk, 400, "not a byte offset", have},
		{"offset with a sign", 0, "+5", chunk[have:], chunk, 400, "not a byte offset", have},
		{"offset leading zero", 0, "0100", chunk[have:], chunk, 400, "not a byte offset", have},
		{"offset past what is stored", have + 10, "", chunk[have+10:], chunk, 409, "holds 200000 bytes of chunk 1", have},
		{"offset past the chunk", ChunkSize, "", []byte{1}, chunk, 422, "past the end of chunk 1", have},
		{"resent range differs", 0, "", other, other, 409, "different bytes", have},
		{"body too short", have, "", chunk[have : ChunkSize-1], chunk, 422, "must be exactly", have},
		{"assembled chunk fails its hash", have, "", otherTail[have:], chunk, 422, "what the server held of this chunk was dropped", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.createUpload(file, true)
			expect(t, e.putFrom(id, 1, 0, chunk, &cutBody{bytes.NewReader(chunk[:have])}, len(chunk)), 400, "")
			r := httptest.NewRequest("PUT", "/v1/uploads/"+id+"/chunks/1", bytes.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer "+e.submit)
			r.Header.Set("Chunk-SHA256", sha(tt.sum))
			if tt.header != "" {
				r.Header.Set("Upload-Offset", tt.header)
			} else {
				r.Header.Set("Upload-Offset", strconv.Itoa(tt.offset))
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			expect(t, w, tt.status, tt.msg)
			if got := e.partial(id).offset(1); got != tt.wantHas {
				t.Fatalf("chunk 1 holds %d bytes afterwards, want %d", got, tt.wantHas)
			}
		})
	}
}

// TestWholeChunkProtocolKeepsNothingPartial: a request without
// Upload-Offset (the first clients' protocol) stores all of the chunk or
// nothing, as before.
func TestWholeChunkProtocolKeepsNothingPartial(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(ChunkSize - 5000)
	id := e.createUpload(file, true)
	expect(t, e.putFrom(id, 0, -1, file, &cutBody{bytes.NewReader(file[:500000])}, len(file)), 400, "")
	if st := e.partial(id); len(st.Partial) != 0 {
		t.Fatalf("a cut whole-chunk request left %+v", st.Partial)
	}
}

// TestChunk0HeaderCheckedWhenComplete: chunk 0 sent in parts is refused
// when it is complete if it is not an age file, and its pieces are dropped.
func TestChunk0HeaderCheckedWhenComplete(t *testing.T) {
	e := newTestEnv(t)
	file := bytes.Repeat([]byte("not age "), ChunkSize/8)
	id := e.createUpload(file, false)
	expect(t, e.putFrom(id, 0, 0, file, &cutBody{bytes.NewReader(file[:1000])}, len(file)), 400, "")
	expect(t, e.putFrom(id, 0, 1000, file, bytes.NewReader(file[1000:]), len(file)-1000), 422, "not an acceptable age file")
	if st := e.partial(id); len(st.Partial) != 0 {
		t.Fatalf("pieces of a refused chunk 0 remain: %+v", st.Partial)
	}
}

// rawPut starts e's handler behind TLS with HTTP/1.1 and begins a PUT of
// chunk index of upload id from offset 0 on a connection of its own,
// sending only the headers: the test writes the body as it likes. sum is
// the chunk's SHA-256 and n its length.
func rawPut(t *testing.T, e *testEnv, id string, index int, sum string, n int) (*httptest.Server, *tls.Conn) {
	t.Helper()
	ts := httptest.NewUnstartedServer(e.h)
	ts.EnableHTTP2 = false
	ts.StartTLS()
	t.Cleanup(ts.Close)
	conn, err := tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT /v1/uploads/%s/chunks/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nChunk-SHA256: %s\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		id, index, e.submit, sum, n)
	return ts, conn
}

// TestServerStall: a chunk upload that stops sending is closed after the
// stall timeout, and what arrived is kept. Without stall detection the
// request would wait for the rest for as long as the connection lives.
func TestServerStall(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.StallTimeout = 300 * time.Millisecond })
	file := e.testFile(ChunkSize - 5000)
	id := e.createUpload(file, true)
	_, conn := rawPut(t, e, id, 0, sha(file), len(file))
	conn.Write(file[:123456])
	// The server answers (or closes) once it gives up on the stalled body.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		resp.Body.Close()
	} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatal("the server still waits for the stalled body after 30 s")
	}
	if got := e.partial(id).offset(0); got != 123456 {
		t.Fatalf("chunk 0 holds %d bytes after the stall, want the 123456 that arrived", got)
	}
}

// TestNewerRequestWins: a retry while the server still reads an older
// request for the same upload (the client gave up on it) stops the older
// one, which keeps what it had; the retry continues from there.
func TestNewerRequestWins(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(ChunkSize - 5000)
	id := e.createUpload(file, true)
	ts, conn := rawPut(t, e, id, 0, sha(file), len(file))
	conn.Write(file[:70000])
	// The old request is reading; the retry resends from 0.
	client := ts.Client()
	client.Timeout = 30 * time.Second
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := http.NewRequest("PUT", ts.URL+"/v1/uploads/"+id+"/chunks/0", bytes.NewReader(file))
		r.Header.Set("Authorization", "Bearer "+e.submit)
		r.Header.Set("Chunk-SHA256", sha(file))
		r.Header.Set("Upload-Offset", "0")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry answered %d", resp.StatusCode)
		}
	}
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), http.StatusCreated, "")
}

// TestChunksSideBySide: a client may keep two chunks of one upload on the
// wire at once; the request for chunk 1 does not stop the one still
// reading chunk 0, and both are stored.
func TestChunksSideBySide(t *testing.T) {
	e := newTestEnv(t)
	file := e.testFile(ChunkSize + 5000)
	id := e.createUpload(file, true)
	chunk0 := file[:ChunkSize]
	ts, conn := rawPut(t, e, id, 0, sha(chunk0), len(chunk0))
	conn.Write(chunk0[:70000])

	// Chunk 1 goes through while chunk 0 is half sent.
	r, _ := http.NewRequest("PUT", ts.URL+"/v1/uploads/"+id+"/chunks/1", bytes.NewReader(file[ChunkSize:]))
	r.Header.Set("Authorization", "Bearer "+e.submit)
	r.Header.Set("Chunk-SHA256", sha(file[ChunkSize:]))
	r.Header.Set("Upload-Offset", "0")
	client := ts.Client()
	client.Timeout = 30 * time.Second
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("chunk 1 beside chunk 0: %d", resp.StatusCode)
	}

	// The rest of chunk 0 arrives on the first connection, which was
	// not stopped.
	if _, err := conn.Write(chunk0[70000:]); err != nil {
		t.Fatalf("the request for chunk 0 was cut off: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp0, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to chunk 0: %v", err)
	}
	resp0.Body.Close()
	if resp0.StatusCode != http.StatusNoContent {
		t.Fatalf("chunk 0 beside chunk 1: %d", resp0.StatusCode)
	}
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), http.StatusCreated, "")
}

// FuzzUploadOffset: the Upload-Offset parser accepts exactly the canonical
// decimal numbers below 10^8 and never panics.
func FuzzUploadOffset(f *testing.F) {
	for _, s := range []string{"0", "65536", "007", "+1", "-1", "1e3", " 1", "99999999", "100000000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, ok, err := parseUploadOffset([]string{v})
		if err != nil {
			return
		}
		if !ok || n < 0 || n >= 1e8 || strconv.FormatInt(n, 10) != v {
			t.Fatalf("parseUploadOffset(%q) = %d, %v", v, n, ok)
		}
	})
}
