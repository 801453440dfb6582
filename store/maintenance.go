package store

import (
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// openReadOnly finishes Open with Options.ReadOnly: it checks the layout
// version instead of creating anything.
func openReadOnly(bdb *bolt.DB, path string) (*DB, error) {
	err := bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStore)
		if b == nil {
			return fmt.Errorf("%w: no %s bucket", ErrCorrupt, bucketStore)
		}
		// Layout 2 is read as it is (a backup from before the upgrade can
		// be checked); only a read-write Open migrates it.
		if v, _ := get(b, keySchema); string(v) != schemaVersion && string(v) != layoutBeforeIndexes {
			return fmt.Errorf("unsupported store layout %q (this program reads layout %s)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	return &DB{bolt: bdb}, nil
}

// Space is how much of the file holds data.
type Space struct {
	FileSize  int64 // bytes of the file
	FreeBytes int64 // bytes of pages on the freelist: deleted data that Compact drops
}

// FreeFraction is FreeBytes / FileSize, 0 for an empty file.
func (s Space) FreeFraction() float64 {
	if s.FileSize == 0 {
		return 0
	}
	return float64(s.FreeBytes) / float64(s.FileSize)
}

// Space returns the size of the file and of its free pages. Free pages
// still hold whatever was written to them last, deleted ciphertext
// included.
func (db *DB) Space() (Space, error) {
	var sp Space
	err := db.bolt.View(func(tx *bolt.Tx) error {
		sp.FileSize = tx.Size()
		return nil
	})
	if err != nil {
		return Space{}, fmt.Errorf("failed to read the database size: %w", err)
	}
	st := db.bolt.Stats()
	sp.FreeBytes = int64(st.FreePageN+st.PendingPageN) * int64(db.bolt.Info().PageSize)
	return sp, nil
}

// Summary is what a database or a backup of it holds.
type Summary struct {
	LogSize     int64 // leaves of the intake log
	Submissions int   // finished submissions
	Bytes       int64 // ciphertext bytes of the submissions not deleted after review
	Uploads     int   // unfinished uploads
	FileSize    int64 // bytes of the database file (of the backup, for Backup)
}

func summarize(tx *bolt.Tx) (Summary, error) {
	var sum Summary
	n, err := logSize(tx)
	if err != nil {
		return Summary{}, err
	}
	sum.LogSize = n
	err = tx.Bucket(bucketSubmissions).ForEach(func(_, v []byte) error {
		s, err := decodeSubmission(v)
		if err != nil {
			return err
		}
		sum.Submissions++
		if s.Deleted == "" {
			sum.Bytes += s.Size
		}
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	sum.Uploads = tx.Bucket(bucketUploads).Stats().KeyN
	sum.FileSize = tx.Size()
	return sum, nil
}

// Summary counts the log leaves, submissions and uploads. It reads every
// submission record (not the ciphertext).
func (db *DB) Summary() (Summary, error) {
	var sum Summary
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		sum, err = summarize(tx)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("failed to summarize the database: %w", err)
	}
	return sum, nil
}

// Backup writes a consistent copy of the whole database file to w while
// other goroutines go on writing: one read transaction sees the file as it
// was when Backup started, and bbolt's Tx.WriteTo streams its pages, so
// memory does not grow with the file. begin is called with the summary of
// that copy (FileSize is the number of bytes that follow) before the first
// byte is written, so that a caller can announce the length; an error from
// begin stops the backup. Backup holds the read transaction until w has
// taken every byte: a slow w keeps freed pages from being reused meanwhile,
// which only makes the file grow.
func (db *DB) Backup(w io.Writer, begin func(Summary) error) (Summary, error) {
	var sum Summary
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		if sum, err = summarize(tx); err != nil {
			return err
		}
		if begin != nil {
			if err := begin(sum); err != nil {
				return err
			}
		}
		n, err := tx.WriteTo(w)
		if err != nil {
			return err
		}
		if n != sum.FileSize {
			return fmt.Errorf("wrote %d bytes of %d", n, sum.FileSize)
		}
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("failed to back up the database: %w", err)
	}
	return sum, nil
}

// ErrLogMismatch means the intake log's stored tree hashes do not follow
// from its leaves: the tree the server signs checkpoints from is damaged.
var ErrLogMismatch = errors.New("intake log tree does not match its leaves")

// CheckLog recomputes the intake log's tree from its leaves and compares
// every stored hash with the recomputed one. It returns the log size and
// the root hash of the tree, which is what a checkpoint of that size
// signs. It reads the log in one read transaction and keeps the recomputed
// hashes in memory (about 64 bytes per leaf).
func (db *DB) CheckLog() (int64, tlog.Hash, error) {
	var (
		n    int64
		root tlog.Hash
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		if n, err = logSize(tx); err != nil {
			return err
		}
		leaves, hb := tx.Bucket(bucketLogLeaves), tx.Bucket(bucketLogHashes)
		var mem recomputedHashes
		for i := int64(0); i < n; i++ {
			leaf, ok := get(leaves, u64(i))
			if !ok {
				return fmt.Errorf("%w: leaf %d of %d is missing", ErrLogMismatch, i, n)
			}
			hashes, err := tlog.StoredHashes(i, leaf, mem)
			if err != nil {
				return fmt.Errorf("failed to hash leaf %d: %w", i, err)
			}
			first := tlog.StoredHashIndex(0, i)
			for j, h := range hashes {
				stored, ok := get(hb, u64(first+int64(j)))
				if !ok || len(stored) != tlog.HashSize || tlog.Hash(stored) != h {
					return fmt.Errorf("%w: stored hash %d (leaf %d) differs", ErrLogMismatch, first+int64(j), i)
				}
			}
			mem = append(mem, hashes...)
		}
		if leaves.Stats().KeyN != int(n) {
			return fmt.Errorf("%w: %d leaves stored for a log of size %d", ErrLogMismatch, leaves.Stats().KeyN, n)
		}
		if root, err = tlog.TreeHash(n, mem); err != nil {
			return err
		}
		stored, err := tlog.TreeHash(n, txHashReader{hb})
		if err != nil {
			return err
		}
		if stored != root {
			return fmt.Errorf("%w: root hash", ErrLogMismatch)
		}
		return nil
	})
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("failed to check the intake log: %w", err)
	}
	return n, root, nil
}

// recomputedHashes is a tlog.HashReader over hashes held in memory, indexed by
// stored-hash index.
type recomputedHashes []tlog.Hash

func (m recomputedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("%w: hash %d not computed", ErrLogMismatch, x)
		}
		out[i] = m[x]
	}
	return out, nil
}
