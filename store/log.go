package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxLogLeaves is the most leaves LogLeaves returns in one call, so that one
// read transaction and one response stay small.
const MaxLogLeaves = 1000

// MaxLeafSize bounds one log leaf. Leaves are short text records (an id, a
// hash, a size and a date); anything longer is a caller's mistake.
const MaxLeafSize = 1024

var (
	bucketLogLeaves = []byte("logleaves")
	bucketLogHashes = []byte("loghashes")
	keyLogSize      = []byte("logsize")
)

// appendLeaf adds leaf as the next record of the intake log inside tx and
// returns its index. The stored hashes are computed from the hashes already
// stored, so the tree is extended in the same transaction that commits the
// submission: a crash leaves either both or neither.
func appendLeaf(tx *bolt.Tx, leaf []byte) (int64, error) {
	n, err := logSize(tx)
	if err != nil {
		return 0, err
	}
	hashes, err := tlog.StoredHashes(n, leaf, txHashReader{tx.Bucket(bucketLogHashes)})
	if err != nil {
		return 0, fmt.Errorf("failed to hash log leaf %d: %w", n, err)
	}
	if err := tx.Bucket(bucketLogLeaves).Put(u64(n), leaf); err != nil {
		return 0, err
	}
	hb := tx.Bucket(bucketLogHashes)
	first := tlog.StoredHashIndex(0, n)
	for i, h := range hashes {
		if err := hb.Put(u64(first+int64(i)), h[:]); err != nil {
			return 0, err
		}
	}
	if err := tx.Bucket(bucketStore).Put(keyLogSize, u64(n+1)); err != nil {
		return 0, err
	}
	return n, nil
}

// logSize reads the number of leaves in the log. A store without the key
// has an empty log.
func logSize(tx *bolt.Tx) (int64, error) {
	v, ok := get(tx.Bucket(bucketStore), keyLogSize)
	if !ok {
		return 0, nil
	}
	if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
		return 0, fmt.Errorf("log size record has a bad value: %w", ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// LogSize returns the number of leaves in the intake log, which is also
// the number of submissions ever finished.
func (db *DB) LogSize() (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = logSize(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to read the log size: %w", err)
	}
	return n, nil
}

// LogLeaves returns copies of the leaves with indexes in [start, end), in
// order. The range must lie within the log and hold at most MaxLogLeaves
// leaves; otherwise it returns ErrInvalid.
func (db *DB) LogLeaves(start, end int64) ([][]byte, error) {
	if start < 0 || end < start || end-start > MaxLogLeaves {
		return nil, fmt.Errorf("failed to read log leaves [%d, %d): range must be non-negative, ordered and at most %d long: %w", start, end, MaxLogLeaves, ErrInvalid)
	}
	leaves := make([][]byte, 0, end-start)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		n, err := logSize(tx)
		if err != nil {
			return err
		}
		if end > n {
			return fmt.Errorf("the log has only %d leaves: %w", n, ErrInvalid)
		}
		b := tx.Bucket(bucketLogLeaves)
		for i := start; i < end; i++ {
			v, ok := get(b, u64(i))
			if !ok {
				return fmt.Errorf("log leaf %d is missing: %w", i, ErrCorrupt)
			}
			leaves = append(leaves, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read log leaves [%d, %d): %w", start, end, err)
	}
	return leaves, nil
}

// LogHashReader returns a tlog.HashReader over the log's stored hashes, for
// tlog.TreeHash, tlog.ProveRecord and tlog.ProveTree. Each ReadHashes call
// is one short read transaction. Because the log only grows, hashes read
// for a tree size at most LogSize stay valid for ever.
func (db *DB) LogHashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		var hashes []tlog.Hash
		err := db.bolt.View(func(tx *bolt.Tx) error {
			var err error
			hashes, err = txHashReader{tx.Bucket(bucketLogHashes)}.ReadHashes(indexes)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("failed to read log hashes: %w", err)
		}
		return hashes, nil
	})
}

// txHashReader reads stored hashes within a transaction.
type txHashReader struct{ b *bolt.Bucket }

func (r txHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 {
			return nil, fmt.Errorf("stored hash index %d is negative: %w", idx, ErrInvalid)
		}
		v := r.b.Get(u64(idx))
		if v == nil {
			return nil, fmt.Errorf("stored hash %d: %w", idx, ErrNotFound)
		}
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d has %d bytes: %w", idx, len(v), ErrCorrupt)
		}
		copy(hashes[i][:], v)
	}
	return hashes, nil
}

func u64(n int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}
