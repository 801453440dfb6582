package server

import (
	"context"
	"time"
)

// MaxChunksInFlight bounds how many chunk-sized buffers the server holds at
// once: a request that carries chunk data (a chunk PUT, a one-shot upload),
// a finish that reads an upload back to hash it, and a download each hold
// one while they run. Without the bound, anyone with a token could open
// thousands of slow uploads, each pinning a MiB, and exhaust the server's
// memory. With it, chunk buffers never take more than MaxChunksInFlight MiB.
const MaxChunksInFlight = 32

// bufferWait is how long a request waits for a free buffer before it is
// answered 503 with Retry-After; clients retry with backoff.
const bufferWait = 20 * time.Second

// busyRetryAfter is the Retry-After, in seconds, of a 503 busy answer.
const busyRetryAfter = "5"

// bufferPool hands out at most its capacity of chunk buffers, allocating
// each lazily and keeping it for reuse.
type bufferPool struct {
	free chan *[]byte
	wait time.Duration
}

func newBufferPool(n int, wait time.Duration) *bufferPool {
	p := &bufferPool{free: make(chan *[]byte, n), wait: wait}
	for range n {
		p.free <- nil
	}
	return p
}

// get returns a buffer of ChunkSize+1 bytes (the extra byte lets a read tell
// "exactly ChunkSize" from "more"), waiting up to bufferWait for one to be
// free. The caller must put it back.
func (p *bufferPool) get(ctx context.Context) (*[]byte, error) {
	b, err := p.acquire(ctx)
	if err == nil && b == nil {
		nb := make([]byte, ChunkSize+1)
		b = &nb
	}
	return b, err
}

// acquire takes a place in the pool for work that holds a chunk-sized buffer
// of its own (the store's reader); the slot it returns may hold no buffer,
// and goes back with put unchanged.
func (p *bufferPool) acquire(ctx context.Context) (*[]byte, error) {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case b := <-p.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fail(errBusy, "the server is busy with other transfers; nothing of this request was stored, retry it in a few seconds")
	}
}

func (p *bufferPool) put(b *[]byte) { p.free <- b }
