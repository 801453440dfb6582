package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MaxSubmissionsPage is the most submissions SubmissionsPage returns in one
// call, so that one read transaction and one response stay small however
// many submissions the store holds.
const MaxSubmissionsPage = 1000

// bucketByIndex and bucketPending list submissions in log order, so that a
// page of them is a seek and a short scan rather than a sort of them all:
// uint64 big-endian log index -> id (32 hex chars). bucketPending holds only
// the submissions not yet collected; MarkCollected removes them from it.
var (
	bucketByIndex = []byte("byindex")
	bucketPending = []byte("pending")
)

// buildIndexes fills bucketByIndex and bucketPending from the submissions,
// once, for a file written before they existed.
func buildIndexes(tx *bolt.Tx) error {
	all, pending := tx.Bucket(bucketByIndex), tx.Bucket(bucketPending)
	return tx.Bucket(bucketSubmissions).ForEach(func(k, v []byte) error {
		s, err := decodeSubmission(v)
		if err != nil {
			return err
		}
		if err := all.Put(u64(s.Index), k); err != nil {
			return err
		}
		if !s.Collected {
			return pending.Put(u64(s.Index), k)
		}
		return nil
	})
}

// SubmissionsPage returns up to limit submissions (at most
// MaxSubmissionsPage) whose log index is above after, in log order; with
// pendingOnly, only those not yet collected. Pass after = -1 for the first
// page, then the Index of the last submission returned. A page shorter
// than limit is the last one.
func (db *DB) SubmissionsPage(pendingOnly bool, after int64, limit int) ([]Submission, error) {
	if limit < 1 || limit > MaxSubmissionsPage || after < -1 {
		return nil, fmt.Errorf("failed to list submissions: limit %d not in 1..%d or cursor %d below -1: %w", limit, MaxSubmissionsPage, after, ErrInvalid)
	}
	ss := make([]Submission, 0, min(limit, 64))
	err := db.bolt.View(func(tx *bolt.Tx) error {
		name := bucketByIndex
		if pendingOnly {
			name = bucketPending
		}
		idx, subs := tx.Bucket(name), tx.Bucket(bucketSubmissions)
		if idx == nil {
			// A file from before the indexes, opened read-only.
			return fmt.Errorf("no %s bucket; open the file read-write once to build it: %w", name, ErrCorrupt)
		}
		c := idx.Cursor()
		for k, id := c.Seek(u64(after + 1)); k != nil && len(ss) < limit; k, id = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("malformed %s key of %d bytes: %w", name, len(k), ErrCorrupt)
			}
			v := subs.Get(id)
			if v == nil {
				return fmt.Errorf("%s lists submission %s at log index %d, which does not exist: %w", name, id, binary.BigEndian.Uint64(k), ErrCorrupt)
			}
			s, err := decodeSubmission(v)
			if err != nil {
				return err
			}
			ss = append(ss, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list submissions: %w", err)
	}
	return ss, nil
}
