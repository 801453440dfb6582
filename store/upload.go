package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// deleteBatch is the most chunks one transaction deletes. Deleting a 16 GiB
// upload in one transaction would free four million pages in one commit and
// block every other writer meanwhile; batches keep each commit small and let
// uploads continue between them.
const deleteBatch = 256

// maxChunks is the number of chunk indexes a key can hold (uint32).
const maxChunks = math.MaxUint32 + 1

// Upload is an unfinished upload. Its chunks are stored separately, see
// PutChunk.
type Upload struct {
	ID     string // 32 lowercase hex characters
	Size   int64  // declared size in bytes, or -1 if unknown (one-shot submission)
	SHA256 string // declared SHA-256 of the whole ciphertext in lowercase hex, or ""
	// Created is kept as its UTC date only, as submissions keep theirs.
	Created time.Time
	// Expires is when ExpireUploads may delete the upload, kept rounded up
	// to ExpiryPrecision (see UploadExpiry).
	Expires time.Time
}

type uploadRecord struct {
	ID      string    `json:"id"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// chunkData is the key of the one value inside a chunk's bucket.
//
// Each chunk gets a bucket of its own because bbolt never splits a leaf
// page that holds four keys or fewer. With chunks stored directly as values
// of one bucket, every leaf holds two to four chunks, and appending a chunk
// rewrites its neighbours too: measured, 512 one-MiB values appended in 512
// commits caused 4.2 GB of disk writes and 4.6 MiB of allocation per commit.
// In a bucket of its own, a chunk is the only value on its page, and the
// parent bucket's leaves hold only small bucket headers; the same writes
// then caused 0.55 GB of disk writes and 1.05 MiB of allocation per commit.
var chunkData = []byte("data")

// chunkKey returns the bbolt key of chunk index of the upload whose raw id is
// raw.
func chunkKey(raw [16]byte, index uint32) []byte {
	k := make([]byte, 20)
	copy(k, raw[:])
	binary.BigEndian.PutUint32(k[16:], index)
	return k
}

// chunkValue returns the stored bytes of the chunk at key in the chunks
// bucket b, valid only during the transaction, or nil if there is no such
// chunk. Chunks are never empty, so nil is unambiguous.
func chunkValue(b *bolt.Bucket, key []byte) []byte {
	cb := b.Bucket(key)
	if cb == nil {
		return nil
	}
	return cb.Get(chunkData)
}

// putChunkValue stores a new chunk at key in the chunks bucket b.
func putChunkValue(b *bolt.Bucket, key, data []byte) error {
	cb, err := b.CreateBucket(key)
	if err != nil {
		return err
	}
	return cb.Put(chunkData, data)
}

// jsonRecord encodes a stored record.
func jsonRecord(v any) ([]byte, error) { return json.Marshal(v) }

// chunkCount returns how many chunks hold size bytes.
func chunkCount(size int64) int64 {
	return (size + ChunkSize - 1) / ChunkSize
}

// CreateUpload records a new upload. It returns ErrExists if an upload or
// submission with that id exists, or if chunks of an earlier upload with that
// id are still waiting to be removed; ErrInvalid for a malformed id, a size
// below -1, a malformed SHA-256 or a zero Expires.
func (db *DB) CreateUpload(u Upload) error {
	raw, err := parseID(u.ID)
	if err != nil {
		return fmt.Errorf("failed to create upload: %w", err)
	}
	switch {
	case u.Size < -1 || chunkCount(u.Size) > maxChunks:
		return fmt.Errorf("failed to create upload: size %d out of range: %w", u.Size, ErrInvalid)
	case u.SHA256 != "" && !ids.ValidSHA256(u.SHA256):
		return fmt.Errorf("failed to create upload: sha256 must be 64 lowercase hex characters: %w", ErrInvalid)
	case u.Expires.IsZero():
		return fmt.Errorf("failed to create upload: no expiry time: %w", ErrInvalid)
	}
	rec := uploadRecord{ID: u.ID, Size: u.Size, SHA256: u.SHA256, Created: uploadCreated(u.Created), Expires: UploadExpiry(u.Expires)}
	val, err := jsonRecord(&rec)
	if err != nil {
		return fmt.Errorf("failed to encode upload %s: %w", u.ID, err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if idInUse(tx, u.ID) {
			return ErrExists
		}
		if k, _ := tx.Bucket(bucketChunks).Cursor().Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]) {
			return fmt.Errorf("chunks of a deleted upload remain: %w", ErrExists)
		}
		return tx.Bucket(bucketUploads).Put([]byte(u.ID), val)
	})
	if err != nil {
		return fmt.Errorf("failed to create upload %s: %w", u.ID, err)
	}
	return nil
}

// idInUse reports whether an upload or a submission has this id.
func idInUse(tx *bolt.Tx, id string) bool {
	return has(tx.Bucket(bucketUploads), []byte(id)) || has(tx.Bucket(bucketSubmissions), []byte(id))
}

// loadUpload reads the upload record of id. If there is none it returns
// ErrUploadComplete when id is a submission and ErrNotFound otherwise.
func loadUpload(tx *bolt.Tx, id string) (uploadRecord, error) {
	var rec uploadRecord
	v, ok := get(tx.Bucket(bucketUploads), []byte(id))
	if !ok {
		if has(tx.Bucket(bucketSubmissions), []byte(id)) {
			return rec, ErrUploadComplete
		}
		return rec, ErrNotFound
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("failed to decode upload record: %w", err)
	}
	return rec, nil
}

// Upload returns the unfinished upload with this id. It returns ErrNotFound
// both for an unknown id and for an upload that is already a submission; use
// Submission to tell them apart.
func (db *DB) Upload(id string) (Upload, error) {
	if _, err := parseID(id); err != nil {
		return Upload{}, fmt.Errorf("failed to get upload: %w", err)
	}
	var rec uploadRecord
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v, ok := get(tx.Bucket(bucketUploads), []byte(id))
		if !ok {
			return ErrNotFound
		}
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return Upload{}, fmt.Errorf("failed to get upload %s: %w", id, err)
	}
	return Upload(rec), nil
}

// errUnchanged rolls back a write transaction that found nothing to do, so
// an idempotent retry does not pay for a commit and fsync.
var errUnchanged = errors.New("unchanged")

// PutChunk stores chunk index of the upload id. Storing the same bytes again
// succeeds without writing; different bytes at an index already stored fail
// with ErrChunkConflict. It returns ErrNotFound for an unknown upload,
// ErrUploadComplete if the upload is already a submission, and ErrInvalid for
// a negative index, empty data, data longer than ChunkSize, or, when the
// upload declared its size, an index past the end or a length other than
// that chunk's (ChunkSize for all but the last).
//
// data is not retained after PutChunk returns.
func (db *DB) PutChunk(id string, index int, data []byte) error {
	return db.PutChunkUntil(id, index, data, time.Time{})
}

// PutChunkUntil is PutChunk that, when it stores a new chunk, also moves the
// upload's expiry to expires (rounded up to ExpiryPrecision) if that is
// later, in the same transaction. An upload over a slow link then expires
// after a period without progress, not a fixed time after it began.
//
// If pieces of the chunk were stored (PutPieces), they must be the start of
// data, or it fails with ErrChunkConflict; they are replaced by the whole
// chunk in the same transaction.
func (db *DB) PutChunkUntil(id string, index int, data []byte, expires time.Time) error {
	raw, err := parseID(id)
	if err != nil {
		return fmt.Errorf("failed to put chunk: %w", err)
	}
	if index < 0 || int64(index) >= maxChunks {
		return fmt.Errorf("failed to put chunk %d of upload %s: index out of range: %w", index, id, ErrInvalid)
	}
	if len(data) == 0 || len(data) > ChunkSize {
		return fmt.Errorf("failed to put chunk %d of upload %s: length %d not in 1..%d: %w", index, id, len(data), ChunkSize, ErrInvalid)
	}
	key := chunkKey(raw, uint32(index))
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		u, err := loadUpload(tx, id)
		if err != nil {
			return err
		}
		if u.Size >= 0 {
			n := chunkCount(u.Size)
			if int64(index) >= n {
				return fmt.Errorf("index past the declared size of %d bytes (%d chunks): %w", u.Size, n, ErrInvalid)
			}
			want := int64(ChunkSize)
			if int64(index) == n-1 {
				want = u.Size - (n-1)*ChunkSize
			}
			if int64(len(data)) != want {
				return fmt.Errorf("length %d, but the declared size needs %d: %w", len(data), want, ErrInvalid)
			}
		}
		b := tx.Bucket(bucketChunks)
		if cb := b.Bucket(key); cb != nil {
			if old := cb.Get(chunkData); old != nil {
				if bytes.Equal(old, data) {
					return errUnchanged
				}
				return ErrChunkConflict
			}
			same := true
			if _, err := forEachPiece(cb, func(off int, p []byte) {
				same = same && off+len(p) <= len(data) && bytes.Equal(p, data[off:off+len(p)])
			}); err != nil {
				return err
			}
			if !same {
				return ErrChunkConflict
			}
			if err := b.DeleteBucket(key); err != nil {
				return err
			}
		}
		if err := putChunkValue(b, key, data); err != nil {
			return err
		}
		if err := advanceHash(tx, id, raw); err != nil {
			return err
		}
		if expires.IsZero() {
			return nil
		}
		return extendExpiry(tx, id, u, expires)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("failed to put chunk %d of upload %s: %w", index, id, err)
	}
	return nil
}

// ChunkIndexes returns the indexes of the complete chunks of an upload or a
// submission, in increasing order; partly received chunks (see PutPieces)
// are not among them. It returns ErrNotFound if id is neither.
func (db *DB) ChunkIndexes(id string) ([]int, error) {
	idx, _, err := db.ChunkState(id)
	return idx, err
}

// ReadChunk returns a copy of chunk index of an upload or a submission. It
// returns ErrNotFound if the chunk is not stored or id is neither.
func (db *DB) ReadChunk(id string, index int) ([]byte, error) {
	raw, err := parseID(id)
	if err != nil {
		return nil, fmt.Errorf("failed to read chunk: %w", err)
	}
	if index < 0 || int64(index) >= maxChunks {
		return nil, fmt.Errorf("failed to read chunk %d of %s: index out of range: %w", index, id, ErrInvalid)
	}
	var data []byte
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if !idInUse(tx, id) {
			return ErrNotFound
		}
		v := chunkValue(tx.Bucket(bucketChunks), chunkKey(raw, uint32(index)))
		if v == nil {
			return ErrNotFound
		}
		data = bytes.Clone(v)
		release(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read chunk %d of %s: %w", index, id, err)
	}
	return data, nil
}

// DeleteUpload removes an unfinished upload and its chunks. It returns
// ErrNotFound for an unknown upload and ErrUploadComplete for a submission.
//
// The record goes first, together with the first chunks, so from then on the
// upload is gone for every caller; the remaining chunks follow in batches of
// deleteBatch. If the process dies in between, ExpireUploads removes the
// leftover chunks.
func (db *DB) DeleteUpload(id string) error {
	raw, err := parseID(id)
	if err != nil {
		return fmt.Errorf("failed to delete upload: %w", err)
	}
	var more bool
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if _, err := loadUpload(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUploads).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteHash(tx, id); err != nil {
			return err
		}
		more, err = deleteChunkBatch(tx, raw)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to delete upload %s: %w", id, err)
	}
	if more {
		if err := db.deleteOrphanChunks(id, raw); err != nil {
			return fmt.Errorf("failed to delete upload %s: %w", id, err)
		}
	}
	return nil
}

// deleteChunkBatch deletes up to deleteBatch chunks of raw and reports
// whether more remain.
func deleteChunkBatch(tx *bolt.Tx, raw [16]byte) (more bool, err error) {
	b := tx.Bucket(bucketChunks)
	var keys [][]byte
	c := b.Cursor()
	// Keys are collected before deleting because deleting under a bbolt
	// cursor can make it skip the next key.
	for k, _ := c.Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]); k, _ = c.Next() {
		if len(keys) == deleteBatch {
			more = true
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.DeleteBucket(k); err != nil {
			return false, fmt.Errorf("failed to delete chunk %d: %w", binary.BigEndian.Uint32(k[16:]), err)
		}
	}
	return more, nil
}

// deleteOrphanChunks deletes the chunks of id in batches. Each batch first
// checks, in its own transaction, that no upload or submission has the id,
// so it can never delete chunks that belong to a live record.
func (db *DB) deleteOrphanChunks(id string, raw [16]byte) error {
	for more := true; more; {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			if idInUse(tx, id) {
				more = false
				return nil
			}
			var err error
			more, err = deleteChunkBatch(tx, raw)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ExpireUploads deletes every unfinished upload whose Expires is not after
// now, with its chunks, and returns how many uploads it deleted. It also
// removes chunks left behind by a DeleteUpload or ExpireUploads that was
// interrupted by a crash. Run it periodically; each transaction it makes is
// small, so uploads continue while it runs.
func (db *DB) ExpireUploads(now time.Time) (int, error) {
	var expired []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var rec uploadRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("failed to decode upload record %s: %w", k, err)
			}
			if !rec.Expires.After(now) {
				expired = append(expired, rec.ID)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("failed to expire uploads: %w", err)
	}
	n := 0
	for _, id := range expired {
		raw, err := parseID(id)
		if err != nil {
			return n, fmt.Errorf("failed to expire uploads: stored %w", err)
		}
		var deleted, more bool
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			// The upload may have been finished or deleted since the scan.
			rec, err := loadUpload(tx, id)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUploadComplete) {
				return nil
			} else if err != nil {
				return err
			}
			if rec.Expires.After(now) {
				return nil
			}
			if err := tx.Bucket(bucketUploads).Delete([]byte(id)); err != nil {
				return err
			}
			if err := deleteHash(tx, id); err != nil {
				return err
			}
			deleted = true
			more, err = deleteChunkBatch(tx, raw)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("failed to expire upload %s: %w", id, err)
		}
		if deleted {
			n++
		}
		if more {
			if err := db.deleteOrphanChunks(id, raw); err != nil {
				return n, fmt.Errorf("failed to expire upload %s: %w", id, err)
			}
		}
	}
	if err := db.sweepOrphans(); err != nil {
		return n, fmt.Errorf("failed to expire uploads: %w", err)
	}
	return n, nil
}

// sweepOrphans deletes chunks whose id has neither an upload nor a
// submission record. It visits one key per id, seeking past the rest.
func (db *DB) sweepOrphans() error {
	var orphans [][16]byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		for k, _ := c.First(); k != nil; {
			if len(k) != 20 {
				return fmt.Errorf("malformed chunk key of %d bytes: %w", len(k), ErrCorrupt)
			}
			var raw [16]byte
			copy(raw[:], k)
			if !idInUse(tx, fmt.Sprintf("%x", raw)) {
				orphans = append(orphans, raw)
			}
			next, ok := nextPrefix(raw)
			if !ok {
				break
			}
			k, _ = c.Seek(next[:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to find leftover chunks: %w", err)
	}
	for _, raw := range orphans {
		if err := db.deleteOrphanChunks(fmt.Sprintf("%x", raw), raw); err != nil {
			return fmt.Errorf("failed to delete leftover chunks of %x: %w", raw, err)
		}
	}
	return nil
}

// nextPrefix returns the smallest 16-byte id greater than raw, or false if
// raw is all 0xff.
func nextPrefix(raw [16]byte) ([16]byte, bool) {
	for i := len(raw) - 1; i >= 0; i-- {
		raw[i]++
		if raw[i] != 0 {
			return raw, true
		}
	}
	return raw, false
}
