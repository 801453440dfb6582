package server

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/store"
)

func TestBufferPoolBound(t *testing.T) {
	p := newBufferPool(2, 20*time.Millisecond)
	a, err := p.get(context.Background())
	if err != nil || len(*a) != ChunkSize+1 {
		t.Fatalf("first get: %v", err)
	}
	if err := p.acquire(context.Background()); err != nil {
		t.Fatalf("second place: %v", err)
	}
	if _, err := p.get(context.Background()); !errors.Is(err, errBusy) {
		t.Fatalf("a third buffer from a pool of two: %v, want errBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.acquire(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, errBusy) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	p.put(a)
	b, err := p.get(context.Background())
	if err != nil || b != a {
		t.Fatalf("a returned buffer should be reused (%v)", err)
	}
	p.put(b)
	p.release()
	// Taken and given back one at a time, buffers are reused: the pool
	// allocates one, not one per place.
	for range 10 {
		b, err := p.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.put(b)
	}
	if len(p.free) != 1 {
		t.Fatalf("%d buffers allocated for one at a time", len(p.free))
	}
}

// TestBusyServer shows that when every chunk buffer is taken, chunk uploads,
// finishes, one-shot uploads and downloads are answered 503 with
// Retry-After, nothing is stored or completed, and the same requests succeed once a
// buffer is free.
func TestBusyServer(t *testing.T) {
	e := newTestEnv(t)
	done := e.testFile(3 * ChunkSize / 2)
	w := e.upload(done)
	expect(t, w, http.StatusCreated, "")
	rc, err := receipt.Parse(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	doneID := rc.ID
	// ready has every chunk stored, so only the busy server stands between
	// it and a finish: reading its chunks back to hash them needs a buffer.
	readyFile := e.testFile(ChunkSize / 3)
	ready := e.createUpload(readyFile, true)
	expect(t, e.putChunk(ready, 0, readyFile), http.StatusNoContent, "")

	e.srv.buffers = newBufferPool(1, 10*time.Millisecond)
	if err := e.srv.buffers.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}

	file := e.testFile(ChunkSize / 2)
	id := e.createUpload(file, true)
	busy := []req{
		{method: "PUT", path: "/v1/uploads/" + id + "/chunks/0", token: e.submit, body: file,
			header: map[string]string{"Chunk-SHA256": sha(file)}},
		{method: "POST", path: "/v1/uploads/" + ready + "/finish", token: e.submit},
		{method: "POST", path: "/v1/submissions", token: e.submit, body: file},
		{method: "GET", path: "/v1/submissions/" + doneID, token: e.collect},
	}
	for _, r := range busy {
		w := e.do(r)
		expect(t, w, http.StatusServiceUnavailable, "server is busy")
		if got := w.Header().Get("Retry-After"); got != busyRetryAfter {
			t.Errorf("%s %s: Retry-After %q, want %q", r.method, r.path, got, busyRetryAfter)
		}
	}
	if have, err := e.db.ChunkIndexes(id); err != nil || len(have) != 0 {
		t.Fatalf("a refused chunk was stored: %v %v", have, err)
	}
	if _, err := e.db.Submission(ready); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused finish completed the upload: %v", err)
	}
	if have, err := e.db.ChunkIndexes(ready); err != nil || len(have) != 1 {
		t.Fatalf("the refused finish changed the upload's chunks: %v %v", have, err)
	}
	if n := e.expireAll(); n != 2 {
		t.Fatalf("%d unfinished uploads after the refused one-shot, want only the created and the ready one", n)
	}

	e.srv.buffers.release()
	id = e.createUpload(file, true)
	expect(t, e.putChunk(id, 0, file), http.StatusNoContent, "")
	expect(t, e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit}), http.StatusCreated, "")
	expect(t, e.do(req{method: "GET", path: "/v1/submissions/" + doneID, token: e.collect}), http.StatusOK, "")
}
