package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

func TestBackupSummaryAndCheckLog(t *testing.T) {
	db := openTemp(t)
	var sizes int64
	for i := range 5 {
		s := submit(t, db, randomBytes(1000+i), t0)
		sizes += s.Size
	}
	createUpload(t, db, newID(t), 10)
	var buf bytes.Buffer
	var announced Summary
	sum, err := db.Backup(&buf, func(s Summary) error { announced = s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{LogSize: 5, Submissions: 5, Bytes: sizes, Uploads: 1, FileSize: int64(buf.Len())}
	if sum != want || announced != want {
		t.Errorf("Backup: %+v, announced %+v, want %+v", sum, announced, want)
	}
	n, root, err := db.CheckLog()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := tlog.TreeHash(5, db.LogHashReader())
	if n != 5 || err != nil || root != stored {
		t.Errorf("CheckLog: %d %v, want 5 and the stored tree's root", n, root)
	}

	// The copy opens read-only, checks and says the same.
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	before := buf.Bytes()
	cp, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Check(); err != nil {
		t.Error(err)
	}
	if got, err := cp.Summary(); err != nil || got != want {
		t.Errorf("copy: %+v %v, want %+v", got, err, want)
	}
	if _, r2, err := cp.CheckLog(); err != nil || r2 != root {
		t.Errorf("copy's log: %v %v", r2, err)
	}
	if err := cp.PutMeta("k", []byte("v")); err == nil {
		t.Error("a read-only store accepted a write")
	}
	cp.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("opening read-only changed the file")
	}
}

func TestCheckLogFindsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
	}{
		{"stored hash flipped", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLogHashes)
			v := bytes.Clone(b.Get(u64(0)))
			v[0] ^= 1
			return b.Put(u64(0), v)
		}},
		{"leaf changed", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLogLeaves)
			v := bytes.Clone(b.Get(u64(1)))
			v[len(v)-1] ^= 1
			return b.Put(u64(1), v)
		}},
		{"leaf missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketLogLeaves).Delete(u64(2)) }},
		{"extra leaf", func(tx *bolt.Tx) error { return tx.Bucket(bucketLogLeaves).Put(u64(9), []byte("x")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTemp(t)
			for range 3 {
				submit(t, db, randomBytes(100), t0)
			}
			if _, _, err := db.CheckLog(); err != nil {
				t.Fatalf("intact: %v", err)
			}
			if err := db.bolt.Update(tc.damage); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.CheckLog(); !errors.Is(err, ErrLogMismatch) {
				t.Errorf("CheckLog: %v, want ErrLogMismatch", err)
			}
		})
	}
}

func TestSpace(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, 4*ChunkSize)
	putAll(t, db, id, randomBytes(4*ChunkSize))
	before, err := db.Space()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	after, err := db.Space()
	if err != nil {
		t.Fatal(err)
	}
	if after.FreeBytes < 4*ChunkSize || after.FreeFraction() <= before.FreeFraction() || after.FreeFraction() > 1 {
		t.Errorf("space before %+v, after deleting 4 MiB %+v", before, after)
	}
}
