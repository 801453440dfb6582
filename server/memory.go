package server

import (
	"context"
	"sync"
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

// bufferPool hands out at most its capacity of chunk buffers. Buffers are
// allocated only when no free one is left and reused last-in first-out, so
// a server serving one upload at a time holds one buffer, not capacity.
type bufferPool struct {
	slots chan struct{}
	wait  time.Duration
	mu    sync.Mutex
	free  []*[]byte
}

func newBufferPool(n int, wait time.Duration) *bufferPool {
	return &bufferPool{slots: make(chan struct{}, n), wait: wait}
}

// get returns a buffer of ChunkSize+1 bytes (the extra byte lets a read tell
// "exactly ChunkSize" from "more"), waiting up to the pool's wait for a
// place. The caller must put it back.
func (p *bufferPool) get(ctx context.Context) (*[]byte, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b, nil
	}
	b := make([]byte, ChunkSize+1)
	return &b, nil
}

// put gives back a buffer from get.
func (p *bufferPool) put(b *[]byte) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
	p.release()
}

// acquire takes a place in the pool for work that holds a chunk-sized buffer
// of its own (the store's reader); release gives it back.
func (p *bufferPool) acquire(ctx context.Context) error {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fail(errBusy, "the server is busy with other transfers; nothing of this request was stored, retry it in a few seconds")
	}
}

func (p *bufferPool) release() { <-p.slots }
