package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// Submission is a finished upload: complete ciphertext that the server has
// validated and appended to the intake log.
type Submission struct {
	ID        string // 32 lowercase hex characters, the id of the upload it was
	Size      int64  // ciphertext size in bytes
	SHA256    string // SHA-256 of the ciphertext in lowercase hex
	Chunks    int    // number of chunks, always ceil(Size / ChunkSize)
	Received  time.Time
	Index     int64 // index of its leaf in the intake log; set by FinishUpload
	Collected bool  // set by MarkCollected once a collector has fetched it
	// Deleted is the UTC date ("2006-01-02") its ciphertext was deleted
	// after a witness acknowledged it (DeleteReviewed), empty before; Ack
	// is then the sequence number of that acknowledgement (AckFile).
	Deleted string
	Ack     uint64
}

type submissionRecord struct {
	ID        string    `json:"id"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Chunks    int       `json:"chunks"`
	Received  time.Time `json:"received"`
	Index     int64     `json:"index"`
	Collected bool      `json:"collected,omitempty"`
	Deleted   string    `json:"deleted,omitempty"`
	Ack       uint64    `json:"ack,omitempty"`
}

// FinishUpload turns the upload id into the submission s and appends leaf
// to the intake log, in one transaction: the upload record is deleted, the
// submission record written, the leaf and the log's new stored hashes
// written, and the chunks stay where they are. It returns the leaf's index,
// which is also stored as the submission's Index (s.Index is ignored).
// s.ID may be empty or must equal id. The leaf is opaque here: the caller
// encodes it (package intakelog); it must be 1 to MaxLeafSize bytes.
//
// Before committing it checks that exactly chunks 0..s.Chunks-1 are stored,
// that all but the last are ChunkSize long and that together they are s.Size
// bytes (ErrIncomplete otherwise), and that s agrees with what the upload
// declared (ErrInvalid otherwise). It returns ErrNotFound for an unknown
// upload and ErrUploadComplete if id is already a submission.
//
// The store does not hash the chunks; the caller must have checked s.SHA256
// against the stored bytes.
func (db *DB) FinishUpload(id string, s Submission, leaf []byte) (int64, error) {
	raw, err := parseID(id)
	if err != nil {
		return 0, fmt.Errorf("failed to finish upload: %w", err)
	}
	switch {
	case len(leaf) == 0 || len(leaf) > MaxLeafSize:
		return 0, fmt.Errorf("failed to finish upload %s: log leaf must be 1 to %d bytes, not %d: %w", id, MaxLeafSize, len(leaf), ErrInvalid)
	case s.ID != "" && s.ID != id:
		return 0, fmt.Errorf("failed to finish upload %s: submission id %q differs: %w", id, s.ID, ErrInvalid)
	case s.Size < 0 || s.Chunks < 0 || int64(s.Chunks) != chunkCount(s.Size):
		return 0, fmt.Errorf("failed to finish upload %s: %d chunks cannot hold %d bytes: %w", id, s.Chunks, s.Size, ErrInvalid)
	case !ids.ValidSHA256(s.SHA256):
		return 0, fmt.Errorf("failed to finish upload %s: sha256 must be 64 lowercase hex characters: %w", id, ErrInvalid)
	case s.Received.IsZero():
		return 0, fmt.Errorf("failed to finish upload %s: no received time: %w", id, ErrInvalid)
	}
	rec := submissionRecord{ID: id, Size: s.Size, SHA256: s.SHA256, Chunks: s.Chunks,
		Received: s.Received.UTC(), Collected: s.Collected}
	var index int64
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		u, err := loadUpload(tx, id)
		if err != nil {
			return err
		}
		if u.Size >= 0 && u.Size != s.Size {
			return fmt.Errorf("size %d differs from the declared %d: %w", s.Size, u.Size, ErrInvalid)
		}
		if u.SHA256 != "" && u.SHA256 != s.SHA256 {
			return fmt.Errorf("sha256 differs from the declared one: %w", ErrInvalid)
		}
		if err := checkChunks(tx, raw, s.Chunks, s.Size); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUploads).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteHash(tx, id); err != nil {
			return err
		}
		index, err = putSubmission(tx, rec, leaf)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to finish upload %s: %w", id, err)
	}
	return index, nil
}

// putSubmission appends leaf to the log and writes the submission record
// rec with the leaf's index, and its index entries, and returns the index.
func putSubmission(tx *bolt.Tx, rec submissionRecord, leaf []byte) (int64, error) {
	index, err := appendLeaf(tx, leaf)
	if err != nil {
		return 0, err
	}
	rec.Index = index
	val, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("failed to encode submission record: %w", err)
	}
	if err := tx.Bucket(bucketByIndex).Put(u64(index), []byte(rec.ID)); err != nil {
		return 0, err
	}
	if !rec.Collected {
		if err := tx.Bucket(bucketPending).Put(u64(index), []byte(rec.ID)); err != nil {
			return 0, err
		}
	}
	return index, tx.Bucket(bucketSubmissions).Put([]byte(rec.ID), val)
}

// SubmitWhole stores data, a whole ciphertext of at most ChunkSize bytes, as
// the submission s (s.Index is ignored) and appends leaf to the intake log,
// in one transaction, and returns the leaf's index: a small one-shot
// submission then costs one commit instead of three (CreateUpload,
// PutChunk, FinishUpload). Concurrent calls share a commit and its fsync
// (bbolt's Batch), so many small submissions arriving at once are not
// limited by one fsync each. It checks s as FinishUpload does, and that
// s.Size and s.SHA256 are those of data; it returns ErrExists if an upload
// or submission has the id.
func (db *DB) SubmitWhole(s Submission, data, leaf []byte) (int64, error) {
	raw, err := parseID(s.ID)
	if err != nil {
		return 0, fmt.Errorf("failed to store submission: %w", err)
	}
	sum := sha256.Sum256(data)
	switch {
	case len(data) == 0 || len(data) > ChunkSize:
		return 0, fmt.Errorf("failed to store submission %s: %d bytes, not 1 to %d: %w", s.ID, len(data), ChunkSize, ErrInvalid)
	case s.Size != int64(len(data)) || s.Chunks != 1 || s.SHA256 != hex.EncodeToString(sum[:]):
		return 0, fmt.Errorf("failed to store submission %s: size, chunks or sha256 differ from the data: %w", s.ID, ErrInvalid)
	case len(leaf) == 0 || len(leaf) > MaxLeafSize:
		return 0, fmt.Errorf("failed to store submission %s: log leaf must be 1 to %d bytes, not %d: %w", s.ID, MaxLeafSize, len(leaf), ErrInvalid)
	case s.Received.IsZero():
		return 0, fmt.Errorf("failed to store submission %s: no received time: %w", s.ID, ErrInvalid)
	}
	rec := submissionRecord{ID: s.ID, Size: s.Size, SHA256: s.SHA256, Chunks: 1, Received: s.Received.UTC(), Collected: s.Collected}
	var index int64
	// Batch may run the function again, alone, if another one of its batch
	// failed; everything it sets is set afresh on every run.
	err = db.bolt.Batch(func(tx *bolt.Tx) error {
		if idInUse(tx, s.ID) {
			return ErrExists
		}
		b := tx.Bucket(bucketChunks)
		if k, _ := b.Cursor().Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]) {
			return ErrExists
		}
		if err := putChunkValue(b, chunkKey(raw, 0), data); err != nil {
			return err
		}
		var err error
		index, err = putSubmission(tx, rec, leaf)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to store submission %s: %w", s.ID, err)
	}
	return index, nil
}

// checkChunks verifies that raw has exactly chunks 0..n-1, all ChunkSize
// long except the last, adding up to size. It reads keys and value lengths,
// which are on the first page of each chunk, not the chunk contents.
func checkChunks(tx *bolt.Tx, raw [16]byte, n int, size int64) error {
	b := tx.Bucket(bucketChunks)
	c := b.Cursor()
	var i int
	var total int64
	for k, _ := c.Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]); k, _ = c.Next() {
		idx := int(binary.BigEndian.Uint32(k[16:]))
		v := chunkValue(b, k)
		switch {
		case v == nil:
			return fmt.Errorf("chunk %d has no data: %w", idx, ErrCorrupt)
		case i >= n:
			return fmt.Errorf("chunk %d is past the end (%d chunks expected): %w", idx, n, ErrIncomplete)
		case idx != i:
			return fmt.Errorf("chunk %d is missing: %w", i, ErrIncomplete)
		case i < n-1 && len(v) != ChunkSize:
			return fmt.Errorf("chunk %d has %d bytes, want %d: %w", i, len(v), ChunkSize, ErrIncomplete)
		}
		total += int64(len(v))
		i++
	}
	if i < n {
		return fmt.Errorf("chunk %d is missing: %w", i, ErrIncomplete)
	}
	if total != size {
		return fmt.Errorf("chunks hold %d bytes, want %d: %w", total, size, ErrIncomplete)
	}
	return nil
}

func (r *submissionRecord) submission() Submission {
	return Submission(*r)
}

func decodeSubmission(v []byte) (Submission, error) {
	var rec submissionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Submission{}, fmt.Errorf("failed to decode submission record: %w", err)
	}
	return rec.submission(), nil
}

// Submission returns the submission with this id, or ErrNotFound.
func (db *DB) Submission(id string) (Submission, error) {
	if _, err := parseID(id); err != nil {
		return Submission{}, fmt.Errorf("failed to get submission: %w", err)
	}
	var s Submission
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v, ok := get(tx.Bucket(bucketSubmissions), []byte(id))
		if !ok {
			return ErrNotFound
		}
		var err error
		s, err = decodeSubmission(v)
		return err
	})
	if err != nil {
		return Submission{}, fmt.Errorf("failed to get submission %s: %w", id, err)
	}
	return s, nil
}

// Submissions returns all submissions, or only those not yet collected if
// pendingOnly is set, in log order (by Index).
func (db *DB) Submissions(pendingOnly bool) ([]Submission, error) {
	var ss []Submission
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubmissions).ForEach(func(k, v []byte) error {
			s, err := decodeSubmission(v)
			if err != nil {
				return err
			}
			if !pendingOnly || !s.Collected {
				ss = append(ss, s)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list submissions: %w", err)
	}
	slices.SortFunc(ss, func(a, b Submission) int {
		return cmp.Compare(a.Index, b.Index)
	})
	return ss, nil
}

// MarkCollected records that the submission has been collected. Marking it
// again succeeds. It returns ErrNotFound if there is no such submission.
func (db *DB) MarkCollected(id string) error {
	if _, err := parseID(id); err != nil {
		return fmt.Errorf("failed to mark submission collected: %w", err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubmissions)
		v, ok := get(b, []byte(id))
		if !ok {
			return ErrNotFound
		}
		var rec submissionRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("failed to decode submission record: %w", err)
		}
		if rec.Collected {
			return errUnchanged
		}
		rec.Collected = true
		val, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("failed to encode submission record: %w", err)
		}
		if err := tx.Bucket(bucketPending).Delete(u64(rec.Index)); err != nil {
			return err
		}
		return b.Put([]byte(id), val)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("failed to mark submission %s collected: %w", id, err)
	}
	return nil
}
