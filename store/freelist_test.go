package store

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// syncedFreelist reads the current meta page of the bbolt file at path
// (of the two, the one with the higher transaction id) and reports whether
// it points to a freelist written to the file. The layout is bbolt's file
// format: a 16-byte page header, then magic, version, page size and flags
// (4 bytes each), the root bucket (16), the freelist page id (8), the
// high water mark (8) and the transaction id (8).
func syncedFreelist(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(off int) (freelist, txid uint64) {
		m := data[off+16:]
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED {
			t.Fatalf("no bbolt meta page at offset %d", off)
		}
		return binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[48:])
	}
	pageSize := int(binary.LittleEndian.Uint32(data[16+8:]))
	f0, tx0 := meta(0)
	f1, tx1 := meta(pageSize)
	if tx1 > tx0 {
		f0 = f1
	}
	return f0 != math.MaxUint64
}

// TestCloseSavesFreelist: Close leaves the freelist in the file, so the
// next Open reads it instead of walking every page; while the store is
// open (as after a crash) the file has none, so a crash is followed by a
// walk, never by a stale list. The reopened store is consistent and
// reuses the pages freed before the close.
func TestCloseSavesFreelist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testimony.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := newID(t)
	createUpload(t, db, id, -1)
	data := randomBytes(ChunkSize)
	for i := range 8 {
		if err := db.PutChunk(id, i, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	if syncedFreelist(t, path) {
		t.Fatal("an open store's file has a freelist: a crash now would leave it stale")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !syncedFreelist(t, path) {
		t.Fatal("Close did not write the freelist")
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if syncedFreelist(t, path) {
		t.Error("the file still points to its freelist after Open committed without one")
	}
	if db.bolt.Stats().FreePageN < 8*256 {
		t.Errorf("%d free pages read back, want the 8 MiB freed before the close", db.bolt.Stats().FreePageN)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	id = newID(t)
	createUpload(t, db, id, -1)
	for i := range 8 {
		if err := db.PutChunk(id, i, data); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() > before.Size() {
		t.Errorf("the file grew from %d to %d bytes: the freed pages were not reused", before.Size(), after.Size())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Fatalf("closing a read-only store: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
