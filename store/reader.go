package store

import (
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// NewReader returns a reader of the ciphertext of the submission id, or
// ErrNotFound. It reads one chunk at a time, each in its own short read
// transaction whose value is copied out before the transaction ends, so a
// slow client never holds a transaction open (which would stop bbolt from
// growing the file). It checks every chunk's length against the submission
// record and fails with ErrCorrupt on a mismatch, so a damaged file cannot
// silently yield a truncated stream. Hashing the stream is left to the
// caller.
//
// The reader also implements io.WriterTo, which io.Copy uses to avoid a
// second copy of each chunk. It is not safe for concurrent use.
func (db *DB) NewReader(id string) (io.ReadCloser, error) {
	s, err := db.Submission(id)
	if err != nil {
		return nil, err
	}
	if s.Deleted != "" {
		return nil, fmt.Errorf("failed to read submission %s: %w on %s", id, ErrDeleted, s.Deleted)
	}
	raw, _ := parseID(id) // Submission has validated id.
	return &reader{db: db, id: id, raw: raw, size: s.Size, chunks: s.Chunks}, nil
}

type reader struct {
	db     *DB
	id     string
	raw    [16]byte
	size   int64
	chunks int
	next   int    // index of the next chunk to load
	buf    []byte // the current chunk
	off    int    // bytes of buf already returned
	err    error  // sticky: io.EOF, a read error or closed
}

// load replaces buf with the next chunk, or returns io.EOF after the last.
func (r *reader) load() error {
	if r.next == r.chunks {
		return io.EOF
	}
	want := ChunkSize
	if r.next == r.chunks-1 {
		want = int(r.size - int64(r.chunks-1)*ChunkSize)
	}
	key := chunkKey(r.raw, uint32(r.next))
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		v := chunkValue(tx.Bucket(bucketChunks), key)
		if v == nil {
			return fmt.Errorf("chunk is missing: %w", ErrCorrupt)
		}
		if len(v) != want {
			return fmt.Errorf("chunk has %d bytes, want %d: %w", len(v), want, ErrCorrupt)
		}
		r.buf = append(r.buf[:0], v...)
		release(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to read chunk %d of submission %s: %w", r.next, r.id, err)
	}
	r.off = 0
	r.next++
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, r.err
	}
	for r.off == len(r.buf) {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.load(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.off < len(r.buf) {
			n, err := w.Write(r.buf[r.off:])
			r.off += n
			total += int64(n)
			if err != nil {
				return total, err
			}
			if r.off < len(r.buf) {
				return total, io.ErrShortWrite
			}
		}
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		if err := r.load(); err != nil {
			r.err = err
		}
	}
}

// Close releases the chunk buffer; later reads fail.
func (r *reader) Close() error {
	r.buf, r.off = nil, 0
	if r.err == nil || r.err == io.EOF {
		r.err = fmt.Errorf("failed to read submission %s: %w", r.id, os.ErrClosed)
	}
	return nil
}
