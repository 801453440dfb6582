package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrDeleted means the submission's ciphertext was deleted after a witness
// acknowledged it; its record and log leaf remain.
var ErrDeleted = errors.New("ciphertext deleted after review")

// MaxAckFile bounds an acknowledgement file kept by DeleteReviewed.
const MaxAckFile = 4 << 20

var (
	bucketAcks      = []byte("acks")
	bucketWitnesses = []byte("witnesses")
	// bucketDeleting holds the raw ids of submissions marked deleted whose
	// chunks may not all be gone yet (a crash in DeleteReviewed), for
	// FinishDeletions.
	bucketDeleting = []byte("deleting")
)

// Reviewed names a submission a witness acknowledged: its id and the log
// index the acknowledgement named.
type Reviewed struct {
	ID    string
	Index int64
}

// DeleteReviewed deletes the ciphertext of the submissions in subs, which a
// witness acknowledged in ack (kept, opaque, for AckFile), and records the
// UTC date of when in each submission's record. Records, log leaves and
// stored hashes stay, so every proof still verifies.
//
// It first checks, in one transaction that also stores ack and marks every
// record, that each id is a submission at that index (ErrInvalid
// otherwise, and nothing changes). Then it deletes the chunks in batches of
// deleteBatch, each in its own transaction, so the server keeps answering.
// A submission deleted before keeps its first date and acknowledgement;
// its chunks, if a crash left some, are deleted now. It returns how many
// submissions it newly marked deleted.
func (db *DB) DeleteReviewed(subs []Reviewed, ack []byte, when time.Time) (int, error) {
	if len(ack) == 0 || len(ack) > MaxAckFile {
		return 0, fmt.Errorf("failed to delete reviewed submissions: acknowledgement must be 1 to %d bytes: %w", MaxAckFile, ErrInvalid)
	}
	raws := make([][16]byte, len(subs))
	for i, s := range subs {
		raw, err := parseID(s.ID)
		if err != nil {
			return 0, fmt.Errorf("failed to delete reviewed submissions: %w", err)
		}
		raws[i] = raw
	}
	date := when.UTC().Format(time.DateOnly)
	var marked int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		ab, err := tx.CreateBucketIfNotExists(bucketAcks)
		if err != nil {
			return err
		}
		seq, err := ab.NextSequence()
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketSubmissions)
		for _, s := range subs {
			v, ok := get(b, []byte(s.ID))
			if !ok {
				return fmt.Errorf("no submission %s: %w", s.ID, ErrInvalid)
			}
			var rec submissionRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("failed to decode submission record: %w", err)
			}
			if rec.Index != s.Index {
				return fmt.Errorf("submission %s is at log index %d, not %d: %w", s.ID, rec.Index, s.Index, ErrInvalid)
			}
			if rec.Deleted != "" {
				continue
			}
			rec.Deleted, rec.Ack, rec.Collected = date, seq, true
			val, err := json.Marshal(&rec)
			if err != nil {
				return fmt.Errorf("failed to encode submission record: %w", err)
			}
			if err := b.Put([]byte(s.ID), val); err != nil {
				return err
			}
			marked++
		}
		if marked == 0 {
			return errUnchanged
		}
		del, err := tx.CreateBucketIfNotExists(bucketDeleting)
		if err != nil {
			return err
		}
		for i := range subs {
			if err := del.Put(raws[i][:], []byte{1}); err != nil {
				return err
			}
		}
		return ab.Put(u64(int64(seq)), ack)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return 0, fmt.Errorf("failed to delete reviewed submissions: %w", err)
	}
	if testHookMarked != nil {
		if err := testHookMarked(); err != nil {
			return marked, err
		}
	}
	for i, s := range subs {
		if err := db.deleteReviewedChunks(s.ID, raws[i]); err != nil {
			return marked, fmt.Errorf("failed to delete the ciphertext of %s: %w", s.ID, err)
		}
	}
	return marked, nil
}

// deleteReviewedChunks deletes the chunks of id in batches; each batch
// checks first that the submission is marked deleted.
func (db *DB) deleteReviewedChunks(id string, raw [16]byte) error {
	for more := true; more; {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			v, ok := get(tx.Bucket(bucketSubmissions), []byte(id))
			if !ok {
				return ErrNotFound
			}
			var rec submissionRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("failed to decode submission record: %w", err)
			}
			if rec.Deleted == "" {
				return fmt.Errorf("submission is not marked deleted: %w", ErrInvalid)
			}
			deleted := false
			if k, _ := tx.Bucket(bucketChunks).Cursor().Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]) {
				var err error
				if more, err = deleteChunkBatch(tx, raw); err != nil || more {
					return err
				}
				deleted = true
			}
			more = false
			// The last chunk is gone: nothing is left for FinishDeletions.
			if del := tx.Bucket(bucketDeleting); del != nil && del.Get(raw[:]) != nil {
				return del.Delete(raw[:])
			}
			if !deleted {
				return errUnchanged
			}
			return nil
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			return err
		}
	}
	return nil
}

// testHookMarked, if set, is called once the records are marked and before
// any chunk is deleted; an error stops DeleteReviewed there, as a crash
// would.
var testHookMarked func() error

// FinishDeletions deletes what is left of the chunks of submissions marked
// deleted, which a crash in DeleteReviewed can leave behind; the server
// calls it when it starts and then now and again. It returns how many
// submissions it finished.
func (db *DB) FinishDeletions() (int, error) {
	var raws [][16]byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeleting)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var raw [16]byte
			if len(k) != len(raw) {
				return fmt.Errorf("malformed id in %s: %w", bucketDeleting, ErrInvalid)
			}
			copy(raw[:], k)
			raws = append(raws, raw)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("failed to list unfinished deletions: %w", err)
	}
	for _, raw := range raws {
		id := hex.EncodeToString(raw[:])
		if err := db.deleteReviewedChunks(id, raw); err != nil {
			return 0, fmt.Errorf("failed to delete the ciphertext of %s: %w", id, err)
		}
	}
	return len(raws), nil
}

// AckFile returns the acknowledgement stored by DeleteReviewed under seq
// (a submission's Ack), or ErrNotFound.
func (db *DB) AckFile(seq uint64) ([]byte, error) {
	var ack []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAcks)
		if b == nil {
			return ErrNotFound
		}
		v, ok := get(b, u64(int64(seq)))
		if !ok {
			return ErrNotFound
		}
		ack = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read acknowledgement %d: %w", seq, err)
	}
	return ack, nil
}

// Witness is a reviewer's witness key registered with the server.
type Witness struct {
	Name  string    // the operator's name for it
	Key   string    // verifier key, opaque here
	Added time.Time // UTC date
}

type witnessRecord struct {
	Key   string    `json:"key"`
	Added time.Time `json:"added"`
}

// maxWitnessField bounds a witness name and key.
const maxWitnessField = 512

// AddWitness registers a witness key under a name. It returns ErrExists if
// the name is taken, ErrInvalid for an empty or overlong name or key.
func (db *DB) AddWitness(w Witness) error {
	if w.Name == "" || len(w.Name) > maxWitnessField || w.Key == "" || len(w.Key) > maxWitnessField {
		return fmt.Errorf("failed to add witness: name and key must be 1 to %d bytes: %w", maxWitnessField, ErrInvalid)
	}
	y, m, d := w.Added.UTC().Date()
	val, err := json.Marshal(&witnessRecord{Key: w.Key, Added: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return err
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWitnesses)
		if err != nil {
			return err
		}
		if has(b, []byte(w.Name)) {
			return ErrExists
		}
		return b.Put([]byte(w.Name), val)
	})
	if err != nil {
		return fmt.Errorf("failed to add witness %q: %w", w.Name, err)
	}
	return nil
}

// Witnesses returns the registered witnesses by name.
func (db *DB) Witnesses() ([]Witness, error) {
	var ws []Witness
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnesses)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec witnessRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("failed to decode witness %q: %w", k, err)
			}
			ws = append(ws, Witness{Name: string(k), Key: rec.Key, Added: rec.Added})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list witnesses: %w", err)
	}
	return ws, nil
}

// RemoveWitness forgets the witness registered under name, or returns
// ErrNotFound. Submissions it acknowledged stay deleted.
func (db *DB) RemoveWitness(name string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnesses)
		if b == nil || !has(b, []byte(name)) {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("failed to remove witness %q: %w", name, err)
	}
	return nil
}
