package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PieceSize is the most bytes one piece of a partly received chunk holds.
// A connection that dies in the middle of a chunk loses at most what
// arrived since the last committed piece, instead of the whole chunk.
const PieceSize = 64 << 10

// ExpiryPrecision is the precision at which upload records keep their
// expiry: the sweep runs every ten minutes, and an expiry in hours is all
// the policy needs. Nothing finer is stored, because deleted records stay
// readable in bbolt's free pages until the file is compacted, and a time to
// the nanosecond would pin an interview to a moment.
const ExpiryPrecision = time.Hour

// ErrOffset means a piece was offered at an offset other than the end of
// what the chunk already holds: another request stored bytes meanwhile.
// Ask for the offset again (ChunkPrefix) and continue from there.
var ErrOffset = errors.New("offset is not the end of the stored part of the chunk")

// Keys inside a chunk's bucket. A complete chunk holds chunkData. A chunk
// still arriving holds pieces instead: one nested bucket per piece, keyed
// by pieceKey(offset), holding the piece's bytes (pieceData) and their
// SHA-256 (pieceSum), which is checked whenever the piece is read back, so
// a damaged piece is never assembled into a chunk. Each piece has a bucket
// of its own for the reason chunks do (see chunkData): appending one then
// never rewrites the pages of its neighbours.
var (
	pieceData = []byte("data")
	pieceSum  = []byte("sha256")
)

// piecePrefix starts every piece key; it cannot clash with chunkData.
const piecePrefix = 'p'

func pieceKey(off int) []byte {
	k := make([]byte, 5)
	k[0] = piecePrefix
	binary.BigEndian.PutUint32(k[1:], uint32(off))
	return k
}

// UploadExpiry rounds t up to ExpiryPrecision, the form in which upload
// records keep it: never earlier than asked, never finer than an hour.
func UploadExpiry(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(ExpiryPrecision); !r.Equal(t) {
		return r.Add(ExpiryPrecision)
	}
	return t
}

// uploadCreated is the form in which upload records keep their creation
// time: the UTC date, as submissions keep theirs.
func uploadCreated(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// forEachPiece calls fn with the offset and bytes of each piece of the
// chunk bucket cb in order, checking that the pieces are contiguous from 0
// and match their stored SHA-256. It returns the bytes they hold together.
// The bytes are valid only during the transaction.
func forEachPiece(cb *bolt.Bucket, fn func(off int, data []byte)) (int, error) {
	off := 0
	c := cb.Cursor()
	for k, v := c.Seek([]byte{piecePrefix}); k != nil && k[0] == piecePrefix; k, v = c.Next() {
		if v != nil || len(k) != 5 {
			return 0, fmt.Errorf("malformed piece key %x: %w", k, ErrCorrupt)
		}
		if got := int(binary.BigEndian.Uint32(k[1:])); got != off {
			return 0, fmt.Errorf("piece at offset %d, want %d: %w", got, off, ErrCorrupt)
		}
		pb := cb.Bucket(k)
		data, sum := pb.Get(pieceData), pb.Get(pieceSum)
		if len(data) == 0 || len(data) > PieceSize {
			return 0, fmt.Errorf("piece at offset %d has %d bytes: %w", off, len(data), ErrCorrupt)
		}
		if h := sha256.Sum256(data); !bytes.Equal(h[:], sum) {
			return 0, fmt.Errorf("piece at offset %d does not match its SHA-256: %w", off, ErrCorrupt)
		}
		if fn != nil {
			fn(off, data)
		}
		off += len(data)
	}
	return off, nil
}

// ChunkPrefix copies what is stored of chunk index of the upload id into
// buf, which must hold ChunkSize bytes: the whole chunk if it is complete,
// otherwise the pieces received so far. It returns how many bytes that is
// (0 for a chunk never begun) and whether the chunk is complete. It returns
// ErrNotFound for an unknown upload and ErrUploadComplete for a submission.
func (db *DB) ChunkPrefix(id string, index int, buf []byte) (n int, complete bool, err error) {
	raw, err := parseID(id)
	if err != nil {
		return 0, false, fmt.Errorf("failed to read chunk: %w", err)
	}
	if index < 0 || int64(index) >= maxChunks || len(buf) < ChunkSize {
		return 0, false, fmt.Errorf("failed to read chunk %d of %s: index out of range or buffer too small: %w", index, id, ErrInvalid)
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if _, err := loadUpload(tx, id); err != nil {
			return err
		}
		cb := tx.Bucket(bucketChunks).Bucket(chunkKey(raw, uint32(index)))
		if cb == nil {
			return nil
		}
		if v := cb.Get(chunkData); v != nil {
			n, complete = copy(buf, v), true
			return nil
		}
		n, err = forEachPiece(cb, func(off int, data []byte) { copy(buf[off:], data) })
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("failed to read chunk %d of %s: %w", index, id, err)
	}
	return n, complete, nil
}

// PutPieces appends data to the partly received chunk index of the upload
// id, at offset off, which must be the number of bytes the chunk holds so
// far (ErrOffset otherwise). data is split into pieces of at most PieceSize,
// all committed in one transaction. The chunk's SHA-256 is not checked here:
// PutChunkUntil checks the whole chunk once its last byte has arrived.
// Like PutChunkUntil, it moves the upload's expiry to expires if that is
// later. It returns ErrChunkConflict if the chunk is already complete,
// ErrInvalid if the bytes reach past the chunk's declared length, and
// ErrNotFound or ErrUploadComplete as PutChunk does.
func (db *DB) PutPieces(id string, index, off int, data []byte, expires time.Time) error {
	raw, err := parseID(id)
	if err != nil {
		return fmt.Errorf("failed to put pieces: %w", err)
	}
	if index < 0 || int64(index) >= maxChunks || off < 0 || len(data) == 0 || off+len(data) > ChunkSize {
		return fmt.Errorf("failed to put %d bytes at offset %d of chunk %d of upload %s: out of range: %w", len(data), off, index, id, ErrInvalid)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		u, err := loadUpload(tx, id)
		if err != nil {
			return err
		}
		if u.Size < 0 {
			return fmt.Errorf("an upload of unknown size takes whole chunks: %w", ErrInvalid)
		}
		n := chunkCount(u.Size)
		if int64(index) >= n {
			return fmt.Errorf("index past the declared size of %d bytes (%d chunks): %w", u.Size, n, ErrInvalid)
		}
		if want := min(ChunkSize, u.Size-int64(index)*ChunkSize); int64(off+len(data)) > want {
			return fmt.Errorf("%d bytes at offset %d, but chunk %d has %d: %w", len(data), off, index, want, ErrInvalid)
		}
		cb, err := tx.Bucket(bucketChunks).CreateBucketIfNotExists(chunkKey(raw, uint32(index)))
		if err != nil {
			return err
		}
		if cb.Get(chunkData) != nil {
			return ErrChunkConflict
		}
		have, err := forEachPiece(cb, nil)
		if err != nil {
			return err
		}
		if have != off {
			return fmt.Errorf("chunk %d holds %d bytes, not %d: %w", index, have, off, ErrOffset)
		}
		for p := data; len(p) > 0; {
			m := min(len(p), PieceSize)
			pb, err := cb.CreateBucket(pieceKey(off))
			if err != nil {
				return err
			}
			sum := sha256.Sum256(p[:m])
			if err := pb.Put(pieceData, p[:m]); err != nil {
				return err
			}
			if err := pb.Put(pieceSum, sum[:]); err != nil {
				return err
			}
			off += m
			p = p[m:]
		}
		if err := advanceHash(tx, id, raw); err != nil {
			return err
		}
		return extendExpiry(tx, id, u, expires)
	})
	if err != nil {
		return fmt.Errorf("failed to put pieces of chunk %d of upload %s: %w", index, id, err)
	}
	return nil
}

// ResetChunk deletes the pieces of the partly received chunk index of the
// upload id, after its assembled bytes failed their SHA-256: the client
// then sends the chunk again from its start. A complete chunk is left
// alone (chunks never change).
func (db *DB) ResetChunk(id string, index int) error {
	raw, err := parseID(id)
	if err != nil {
		return fmt.Errorf("failed to reset chunk: %w", err)
	}
	if index < 0 || int64(index) >= maxChunks {
		return fmt.Errorf("failed to reset chunk %d of %s: index out of range: %w", index, id, ErrInvalid)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if _, err := loadUpload(tx, id); err != nil {
			return err
		}
		b := tx.Bucket(bucketChunks)
		key := chunkKey(raw, uint32(index))
		cb := b.Bucket(key)
		if cb == nil || cb.Get(chunkData) != nil {
			return errUnchanged
		}
		if err := rewindHash(tx, id, index); err != nil {
			return err
		}
		return b.DeleteBucket(key)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("failed to reset chunk %d of %s: %w", index, id, err)
	}
	return nil
}

// extendExpiry moves the expiry of upload u to expires (rounded up to
// ExpiryPrecision) if that is later. Within one hour the record is not
// rewritten at all.
func extendExpiry(tx *bolt.Tx, id string, u uploadRecord, expires time.Time) error {
	if expires.IsZero() {
		return nil
	}
	expires = UploadExpiry(expires)
	if !expires.After(u.Expires) {
		return nil
	}
	u.Expires = expires
	u.Created = uploadCreated(u.Created)
	val, err := jsonRecord(&u)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketUploads).Put([]byte(id), val)
}

// Partial is a chunk of which some bytes, but not all, are stored.
type Partial struct {
	Index  int
	Offset int // bytes stored, from the chunk's start
}

// ChunkState returns the indexes of the complete chunks of an upload or a
// submission in increasing order, and the chunks that are partly received.
// It returns ErrNotFound if id is neither.
func (db *DB) ChunkState(id string) (complete []int, partial []Partial, err error) {
	raw, err := parseID(id)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to list chunks: %w", err)
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if !idInUse(tx, id) {
			return ErrNotFound
		}
		b := tx.Bucket(bucketChunks)
		c := b.Cursor()
		for k, _ := c.Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]); k, _ = c.Next() {
			idx := int(binary.BigEndian.Uint32(k[16:]))
			cb := b.Bucket(k)
			if cb == nil {
				return fmt.Errorf("chunk %d is not a bucket: %w", idx, ErrCorrupt)
			}
			if cb.Get(chunkData) != nil {
				complete = append(complete, idx)
				continue
			}
			n, err := forEachPiece(cb, nil)
			if err != nil {
				return fmt.Errorf("chunk %d: %w", idx, err)
			}
			if n > 0 {
				partial = append(partial, Partial{Index: idx, Offset: n})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to list chunks of %s: %w", id, err)
	}
	return complete, partial, nil
}
