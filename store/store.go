package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// ChunkSize is the largest chunk of ciphertext stored under one key. Every
// chunk of a submission except the last is exactly this long.
const ChunkSize = 1 << 20

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// schemaVersion is the layout described in the package documentation. Open
// refuses files written with a different layout rather than misreading them,
// except layout 2, which it migrates (see "Layout versions" there).
const schemaVersion = "3"

// layoutBeforeIndexes is the layout before the byindex, pending and hashes
// buckets, which every write of layout 3 maintains. Binaries of layout 2
// wrote files of either kind without them.
const layoutBeforeIndexes = "2"

// maxMetaKey bounds meta keys; they are names chosen by the server, never
// input from clients.
const maxMetaKey = 256

// Errors returned by DB methods. Callers branch on them with errors.Is; the
// returned errors wrap them with details.
var (
	// ErrNotFound means the meta key, token, upload, submission or chunk
	// does not exist. Upload also returns it for an upload that has
	// already become a submission.
	ErrNotFound = errors.New("not found")

	// ErrExists means the meta key, token, upload or submission already
	// exists.
	ErrExists = errors.New("already exists")

	// ErrChunkConflict means a different chunk is already stored at that
	// index. Storing identical bytes again is not an error, so a client may
	// safely retry a chunk whose response it did not see.
	ErrChunkConflict = errors.New("a different chunk is already stored at this index")

	// ErrUploadComplete means the upload has already been finished and is
	// now a submission, so it can no longer be changed or deleted.
	ErrUploadComplete = errors.New("upload already finished")

	// ErrIncomplete means FinishUpload found missing, extra or wrongly
	// sized chunks, or a size that does not match the stored chunks.
	ErrIncomplete = errors.New("upload incomplete")

	// ErrInvalid means an argument was malformed: an id that is not 32
	// lowercase hex characters, a negative index, a chunk larger than
	// ChunkSize or not matching the declared size, and the like.
	ErrInvalid = errors.New("invalid argument")

	// ErrCorrupt means stored data contradicts its own records, for
	// example a submission whose chunk is missing. It indicates damage to
	// the file, not a client error.
	ErrCorrupt = errors.New("store corrupt")

	// ErrTimeout means Open could not get the file lock within
	// Options.Timeout, usually because testimony-server already has the
	// file open. The returned error also wraps bbolt's errors.ErrTimeout.
	ErrTimeout = errors.New("database file is locked by another process")
)

var (
	bucketMeta        = []byte("meta")
	bucketTokens      = []byte("tokens")
	bucketUploads     = []byte("uploads")
	bucketSubmissions = []byte("submissions")
	bucketChunks      = []byte("chunks")
	bucketStore       = []byte("store")
	keySchema         = []byte("schema")
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for the exclusive file lock before
	// failing with ErrTimeout. Zero means DefaultTimeout (1s); a negative
	// value tries once and fails immediately. There is deliberately no way
	// to wait forever: a server that hangs at start-up because another
	// process holds the file is harder to diagnose than one that says so.
	Timeout time.Duration
	// ReadOnly opens the file without write access (a shared lock, no
	// bucket is created), for checking a database or a backup without
	// changing a byte of it. Write methods then fail.
	ReadOnly bool
}

// DB is an open store. Create it with Open and release it with Close.
type DB struct {
	bolt *bolt.DB
}

// boltOptions returns the bbolt settings every file of this package is
// opened with; Open and Compact must agree on them.
func boltOptions(opt Options) *bolt.Options {
	timeout := opt.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		// bbolt treats zero as "wait forever"; the smallest positive value
		// gives the documented "try once" instead.
		timeout = time.Nanosecond
	}
	return &bolt.Options{
		Timeout:        timeout,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		ReadOnly:       opt.ReadOnly,
	}
}

// Open opens the store at path, creating the file (mode 0600) and its
// buckets if needed. The directory must exist.
func Open(path string, opt Options) (*DB, error) {
	bdb, err := bolt.Open(path, 0o600, boltOptions(opt))
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("failed to open %s: %w: %w", path, ErrTimeout, err)
		}
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	if opt.ReadOnly {
		return openReadOnly(bdb, path)
	}
	if err := restrictMode(bdb.Path()); err != nil {
		bdb.Close()
		return nil, err
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStore)
		if err != nil {
			return fmt.Errorf("failed to create bucket %s: %w", bucketStore, err)
		}
		v, known := get(b, keySchema)
		migrate := known && string(v) == layoutBeforeIndexes
		if known && !migrate && string(v) != schemaVersion {
			return fmt.Errorf("unsupported store layout %q (this program reads layout %s)", v, schemaVersion)
		}
		if migrate {
			if err := dropDerived(tx); err != nil {
				return err
			}
		}
		// A file from before the submission indexes gets them built once.
		indexed := tx.Bucket(bucketByIndex) != nil && tx.Bucket(bucketPending) != nil
		for _, name := range [][]byte{bucketMeta, bucketTokens, bucketUploads, bucketSubmissions, bucketChunks, bucketLogLeaves, bucketLogHashes, bucketHashes, bucketByIndex, bucketPending} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("failed to create bucket %s: %w", name, err)
			}
		}
		if !indexed {
			if err := buildIndexes(tx); err != nil {
				return fmt.Errorf("failed to index submissions: %w", err)
			}
		}
		if !known || migrate {
			return b.Put(keySchema, []byte(schemaVersion))
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("failed to initialize %s: %w", path, err)
	}
	return &DB{bolt: bdb}, nil
}

// dropDerived deletes, from a file of layout 2, the buckets that layout 3
// derives from the others: a binary of layout 2 may have written to the
// file after they were made, without maintaining them. The indexes are then
// built again from the submissions, and an unfinished upload without a
// running hash has it recomputed from its stored chunks.
func dropDerived(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketByIndex, bucketPending, bucketHashes} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("failed to drop bucket %s of layout %s: %w", name, layoutBeforeIndexes, err)
		}
	}
	return nil
}

// restrictMode removes group and other permission bits from an existing
// file: bbolt only applies the mode when it creates the file.
func restrictMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("failed to stat %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&0o700); err != nil {
		return fmt.Errorf("failed to restrict permissions of %s: %w", path, err)
	}
	return nil
}

// Close releases the file and its lock. Readers from NewReader fail after
// Close. A store opened for writing first writes its freelist, in one last
// commit, so that the next Open reads it instead of walking every page of
// the file (see the package documentation).
func (db *DB) Close() error {
	var saveErr error
	if !db.bolt.IsReadOnly() {
		saveErr = db.bolt.Update(func(tx *bolt.Tx) error {
			// Under the writer lock: the commit that follows reads it.
			tx.DB().NoFreelistSync = false
			return nil
		})
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("failed to close database: %w", err)
	}
	if saveErr != nil && !errors.Is(saveErr, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("failed to save the freelist at close (the next start rebuilds it): %w", saveErr)
	}
	return nil
}

// Check verifies the consistency of the whole file (page reachability,
// freelist, key order) and returns the first problem found, or nil. It reads
// every page, so it is slow on a large file; it holds one read transaction
// for its duration.
func (db *DB) Check() error {
	var first error
	err := db.bolt.View(func(tx *bolt.Tx) error {
		// The channel must be drained completely: the checker goroutine
		// reads the transaction's pages until it closes the channel.
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to check database: %w", err)
	}
	if first != nil {
		return fmt.Errorf("database check failed: %w", first)
	}
	return nil
}

// Compact copies the store at src into a new file at dst, leaving out the
// pages freed by deletions, so deleted ciphertext is no longer in the new
// file. dst must not exist. src is opened read-only, which fails with
// ErrTimeout while a server has it open: stop the server first. Replacing src
// with dst is left to the caller (server.Compact, testimony-server
// compact).
func Compact(dst, src string, opt Options) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("failed to compact into %s: %w", dst, ErrExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to compact into %s: %w", dst, err)
	}
	srcOpt := boltOptions(opt)
	srcOpt.ReadOnly = true
	sdb, err := bolt.Open(src, 0o600, srcOpt)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("failed to open %s: %w: %w", src, ErrTimeout, err)
		}
		return fmt.Errorf("failed to open %s: %w", src, err)
	}
	defer sdb.Close()
	ddb, err := bolt.Open(dst, 0o600, boltOptions(opt))
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", dst, err)
	}
	// Committing every 64 MiB keeps memory bounded while copying.
	if err := bolt.Compact(ddb, sdb, 64<<20); err != nil {
		ddb.Close()
		os.Remove(dst)
		return fmt.Errorf("failed to compact %s into %s: %w", src, dst, err)
	}
	if err := ddb.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", dst, err)
	}
	return nil
}

// get returns a copy of the value at key, and whether the key exists. It
// seeks with a cursor so that an empty value is told apart from a missing
// key.
func get(b *bolt.Bucket, key []byte) ([]byte, bool) {
	k, v := b.Cursor().Seek(key)
	if k == nil || !bytes.Equal(k, key) || v == nil {
		return nil, false
	}
	return bytes.Clone(v), true
}

// has reports whether key exists in b without copying its value.
func has(b *bolt.Bucket, key []byte) bool {
	k, v := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key) && v != nil
}

// parseID checks that id is a canonical upload or submission id (32
// lowercase hex characters) and returns its 16 raw bytes, the prefix of its
// chunk keys. Uppercase is refused so that one id has one spelling.
func parseID(id string) ([16]byte, error) {
	var raw [16]byte
	if !ids.ValidSubmission(id) {
		return raw, fmt.Errorf("id must be 32 lowercase hex characters: %w", ErrInvalid)
	}
	hex.Decode(raw[:], []byte(id))
	return raw, nil
}
