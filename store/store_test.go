package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	t0     = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	future = t0.Add(7 * 24 * time.Hour)
)

func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "testimony.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func createUpload(t testing.TB, db *DB, id string, size int64) {
	t.Helper()
	if err := db.CreateUpload(Upload{ID: id, Size: size, Created: t0, Expires: future}); err != nil {
		t.Fatal(err)
	}
}

// putAll stores data as the chunks of upload id.
func putAll(t testing.TB, db *DB, id string, data []byte) {
	t.Helper()
	for i := 0; i*ChunkSize < len(data); i++ {
		if err := db.PutChunk(id, i, data[i*ChunkSize:min(len(data), (i+1)*ChunkSize)]); err != nil {
			t.Fatal(err)
		}
	}
}

func submissionOf(id string, data []byte, received time.Time) Submission {
	sum := sha256.Sum256(data)
	return Submission{ID: id, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		Chunks: int(chunkCount(int64(len(data)))), Received: received}
}

// leafOf is a stand-in for the intake log leaf of s: the store treats
// leaves as opaque bytes.
func leafOf(s Submission) []byte {
	return []byte("test leaf\n" + s.ID + "\n" + s.SHA256 + "\n")
}

// submit stores data as a finished submission and returns its record.
func submit(t testing.TB, db *DB, data []byte, received time.Time) Submission {
	t.Helper()
	id := newID(t)
	createUpload(t, db, id, int64(len(data)))
	putAll(t, db, id, data)
	s := submissionOf(id, data, received)
	index, err := db.FinishUpload(id, s, leafOf(s))
	if err != nil {
		t.Fatal(err)
	}
	s.Index = index
	return s
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("new file has mode %o, want 600", perm)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fi, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("reopened 644 file has mode %o, want 600", perm)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	for _, timeout := range []time.Duration{100 * time.Millisecond, -1} {
		db2, err := Open(path, Options{Timeout: timeout})
		if err == nil {
			db2.Close()
			t.Fatalf("second Open with timeout %v succeeded", timeout)
		}
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("second Open with timeout %v: %v, want ErrTimeout", timeout, err)
		}
		if !errors.Is(err, bolterrors.ErrTimeout) {
			t.Errorf("second Open with timeout %v: %v does not wrap bbolt's ErrTimeout", timeout, err)
		}
	}

	if err := Compact(filepath.Join(t.TempDir(), "copy.db"), path, Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Errorf("Compact of an open file: %v, want ErrTimeout", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	withSchema := func(name, version string) string {
		path := filepath.Join(dir, name)
		bdb, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = bdb.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketStore)
			if err != nil {
				return err
			}
			return b.Put(keySchema, []byte(version))
		})
		bdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		return path
	}

	for name, path := range map[string]string{
		"missing directory": filepath.Join(dir, "nope", "x.db"),
		"not bbolt":         notDB,
		"newer layout":      withSchema("future.db", "4"),
		// Layout 1 kept signed receipts and had no intake log.
		"older layout": withSchema("past.db", "1"),
	} {
		t.Run(name, func(t *testing.T) {
			for _, ro := range []bool{false, true} {
				db, err := Open(path, Options{ReadOnly: ro})
				if err == nil {
					db.Close()
					t.Fatalf("Open (read-only %v) succeeded", ro)
				}
				t.Log(err)
			}
		})
	}
}

// TestOpenMigratesLayout2 opens a file of layout 2 that a binary of that
// layout wrote to after the indexes and running hashes existed, without
// maintaining them: a submission it finished is missing from both indexes,
// and an upload's running hash no longer matches its chunks. Open must
// rebuild the indexes, drop the running hashes and record layout 3, which
// a binary of layout 2 refuses. A read-only Open (check of an old backup)
// reads layout 2 without changing it.
func TestOpenMigratesLayout2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testimony.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 4 {
		all = append(all, submit(t, db, []byte(strconv.Itoa(i)), t0).ID)
	}
	if err := db.MarkCollected(all[0]); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(ChunkSize + 10)
	upload := newID(t)
	createUpload(t, db, upload, int64(len(data)))
	if err := db.PutChunk(upload, 0, data[:ChunkSize]); err != nil {
		t.Fatal(err)
	}
	other := sha256.New()
	other.Write(make([]byte, ChunkSize))
	state, err := marshalHash(other)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := json.Marshal(&hashRecord{Off: ChunkSize, State: state, ChunkState: state})
	if err != nil {
		t.Fatal(err)
	}
	last, err := db.Submission(all[3])
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketByIndex, bucketPending} {
			if err := tx.Bucket(name).Delete(u64(last.Index)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketHashes).Put([]byte(upload), stale); err != nil {
			return err
		}
		return tx.Bucket(bucketStore).Put(keySchema, []byte(layoutBeforeIndexes))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	layout := func(db *DB) string {
		var v []byte
		db.bolt.View(func(tx *bolt.Tx) error {
			v, _ = get(tx.Bucket(bucketStore), keySchema)
			return nil
		})
		return string(v)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of layout 2: %v", err)
	}
	if got := layout(ro); got != layoutBeforeIndexes {
		t.Errorf("layout %q after a read-only Open, want %s", got, layoutBeforeIndexes)
	}
	ro.Close()
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := pageAll(t, db, false, MaxSubmissionsPage); !slices.Equal(got, all) {
		t.Errorf("all: %v, want %v", got, all)
	}
	if got := pageAll(t, db, true, MaxSubmissionsPage); !slices.Equal(got, all[1:]) {
		t.Errorf("pending: %v, want %v", got, all[1:])
	}
	if err := db.PutChunk(upload, 1, data[ChunkSize:]); err != nil {
		t.Fatal(err)
	}
	checkUploadSHA256(t, db, upload, data, int64(len(data)))
	if got := layout(db); got != schemaVersion {
		t.Errorf("layout %q after Open, want %s", got, schemaVersion)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(ChunkSize + 17)
	s := submit(t, db, data, t0)
	if err := db.PutMeta("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.GetMeta("k"); err != nil || string(v) != "v" {
		t.Errorf("GetMeta after reopen = %q, %v", v, err)
	}
	if got := readAll(t, db, s.ID); !bytes.Equal(got, data) {
		t.Error("submission differs after reopen")
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestCheck(t *testing.T) {
	db := openTemp(t)
	if err := db.Check(); err != nil {
		t.Fatalf("fresh database: %v", err)
	}
	submit(t, db, randomBytes(3*ChunkSize+5), t0)
	id := newID(t)
	createUpload(t, db, id, -1)
	putAll(t, db, id, randomBytes(2*ChunkSize))
	if err := db.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("after writes and deletes: %v", err)
	}
	db.Close()
	if err := db.Check(); err == nil {
		t.Error("Check on a closed database succeeded")
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	db, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept := randomBytes(2*ChunkSize + 3)
	s := submit(t, db, kept, t0)
	for range 4 {
		id := newID(t)
		createUpload(t, db, id, 8*ChunkSize)
		putAll(t, db, id, randomBytes(8*ChunkSize))
		if err := db.DeleteUpload(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "dst.db")
	if err := Compact(dst, src, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Compact(dst, src, Options{}); !errors.Is(err, ErrExists) {
		t.Errorf("Compact onto an existing file: %v, want ErrExists", err)
	}
	srcInfo, _ := os.Stat(src)
	dstInfo, _ := os.Stat(dst)
	if dstInfo.Size() >= srcInfo.Size()/2 {
		t.Errorf("compacted file is %d bytes, source %d: deleted pages were copied", dstInfo.Size(), srcInfo.Size())
	}
	if perm := dstInfo.Mode().Perm(); perm != 0o600 {
		t.Errorf("compacted file has mode %o, want 600", perm)
	}

	db, err = Open(dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := readAll(t, db, s.ID); !bytes.Equal(got, kept) {
		t.Error("submission differs after compaction")
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestMeta(t *testing.T) {
	db := openTemp(t)
	if err := db.PutMeta("recipients", []byte("age1pq1...")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		op      func() ([]byte, error)
		want    string
		wantErr error
	}{
		{"get", func() ([]byte, error) { return db.GetMeta("recipients") }, "age1pq1...", nil},
		{"get empty value", func() ([]byte, error) { return db.GetMeta("empty") }, "", nil},
		{"get missing", func() ([]byte, error) { return db.GetMeta("nope") }, "", ErrNotFound},
		{"get empty key", func() ([]byte, error) { return db.GetMeta("") }, "", ErrInvalid},
		{"put replaces", func() ([]byte, error) {
			if err := db.PutMeta("type", []byte("X25519")); err != nil {
				return nil, err
			}
			if err := db.PutMeta("type", []byte("mlkem768x25519")); err != nil {
				return nil, err
			}
			return db.GetMeta("type")
		}, "mlkem768x25519", nil},
		{"put if absent new", func() ([]byte, error) {
			if err := db.PutMetaIfAbsent("seed", []byte("first")); err != nil {
				return nil, err
			}
			return db.GetMeta("seed")
		}, "first", nil},
		{"put if absent existing", func() ([]byte, error) {
			return nil, db.PutMetaIfAbsent("seed", []byte("second"))
		}, "", ErrExists},
		{"put if absent kept first", func() ([]byte, error) { return db.GetMeta("seed") }, "first", nil},
		{"put if absent existing empty", func() ([]byte, error) {
			return nil, db.PutMetaIfAbsent("empty", []byte("x"))
		}, "", ErrExists},
		{"put long key", func() ([]byte, error) {
			return nil, db.PutMeta(string(make([]byte, maxMetaKey+1)), nil)
		}, "", ErrInvalid},
		{"put huge value", func() ([]byte, error) {
			return nil, db.PutMeta("big", make([]byte, ChunkSize+1))
		}, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.op()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMetaValueCopied(t *testing.T) {
	db := openTemp(t)
	val := []byte("secret seed")
	if err := db.PutMeta("k", val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X'
	got, err := db.GetMeta("k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "secret seed" {
		t.Errorf("stored value changed with the caller's slice: %q", got)
	}
	got[0] = 'Y'
	again, _ := db.GetMeta("k")
	if string(again) != "secret seed" {
		t.Errorf("stored value changed with a returned slice: %q", again)
	}
}

func TestInvalidIDs(t *testing.T) {
	db := openTemp(t)
	for _, id := range []string{
		"",
		"00112233445566778899aabbccddeef",   // 31 chars
		"00112233445566778899aabbccddeeff0", // 33 chars
		"00112233445566778899AABBCCDDEEFF",  // uppercase
		"00112233445566778899aabbccddeefg",
		"../../../../../../../../etc/pass",
	} {
		ops := map[string]error{
			"CreateUpload":  db.CreateUpload(Upload{ID: id, Size: 1, Expires: future}),
			"PutChunk":      db.PutChunk(id, 0, []byte("x")),
			"DeleteUpload":  db.DeleteUpload(id),
			"MarkCollected": db.MarkCollected(id),
		}
		_, ops["FinishUpload"] = db.FinishUpload(id, submissionOf(id, []byte("x"), t0), []byte("leaf"))
		_, ops["Upload"] = db.Upload(id)
		_, ops["ReadChunk"] = db.ReadChunk(id, 0)
		_, ops["ChunkIndexes"] = db.ChunkIndexes(id)
		_, ops["Submission"] = db.Submission(id)
		_, ops["NewReader"] = db.NewReader(id)
		for op, err := range ops {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%q): %v, want ErrInvalid", op, id, err)
			}
		}
	}
}

// TestConcurrentUse runs writers, readers and expiry at once; it is mainly
// a target for the race detector, but also checks every submission is
// intact afterwards.
func TestConcurrentUse(t *testing.T) {
	db := openTemp(t)
	const writers = 4
	datas := make([][]byte, writers)
	ids := make([]string, writers)
	errs := make(chan error, 3*writers)
	var wg sync.WaitGroup
	for w := range writers {
		datas[w] = randomBytes(3*ChunkSize + w + 1)
		ids[w] = newID(t)
		createUpload(t, db, ids[w], int64(len(datas[w])))
		wg.Add(2)
		// Two goroutines race to store the same chunks, as a client
		// retrying a chunk on a second connection would.
		for range 2 {
			go func() {
				defer wg.Done()
				for i := 3; i >= 0; i-- {
					chunk := datas[w][i*ChunkSize : min(len(datas[w]), (i+1)*ChunkSize)]
					if err := db.PutChunk(ids[w], i, chunk); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	old := submit(t, db, randomBytes(2*ChunkSize), t0)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5 {
			r, err := db.NewReader(old.ID)
			if err != nil {
				errs <- err
				return
			}
			_, err = io.Copy(io.Discard, r)
			r.Close()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := db.ExpireUploads(t0); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		s := submissionOf(ids[w], datas[w], t0)
		if _, err := db.FinishUpload(ids[w], s, leafOf(s)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, db, ids[w]); !bytes.Equal(got, datas[w]) {
			t.Errorf("submission %d differs", w)
		}
	}
}
