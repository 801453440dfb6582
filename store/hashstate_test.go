package store

import (
	"crypto/sha256"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// checkUploadSHA256 checks that UploadSHA256 returns the hash of data and
// read at most maxRead bytes back.
func checkUploadSHA256(t *testing.T, db *DB, id string, data []byte, maxRead int64) {
	t.Helper()
	sum, read, err := db.UploadSHA256(id, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(data) {
		t.Error("UploadSHA256 differs from the SHA-256 of the stored bytes")
	}
	if read > maxRead {
		t.Errorf("UploadSHA256 read %d bytes back, want at most %d", read, maxRead)
	}
}

// TestUploadSHA256InOrder is the constant-time finish: whatever the size,
// an upload stored in order, in whole chunks or in pieces with resumption
// inside a chunk and across a reopen, is hashed without reading a byte of
// it back.
func TestUploadSHA256InOrder(t *testing.T) {
	for _, chunks := range []int{1, 3, 12} {
		db := openTemp(t)
		data := randomBytes(chunks*ChunkSize - 1000)
		id := newID(t)
		createUpload(t, db, id, int64(len(data)))
		putAll(t, db, id, data)
		checkUploadSHA256(t, db, id, data, 0)

		id = newID(t)
		createUpload(t, db, id, -1)
		putAll(t, db, id, data)
		checkUploadSHA256(t, db, id, data, 0)
	}

	path := filepath.Join(t.TempDir(), "testimony.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(3*ChunkSize + 5)
	id := newID(t)
	createUpload(t, db, id, int64(len(data)))
	chunk := func(i int) []byte { return data[i*ChunkSize : min(len(data), (i+1)*ChunkSize)] }
	if err := db.PutChunk(id, 0, chunk(0)); err != nil {
		t.Fatal(err)
	}
	// Chunk 1 arrives in pieces that are not multiples of PieceSize, with a
	// reopen (a restart) in the middle.
	c1 := chunk(1)
	for _, r := range [][2]int{{0, 100_000}, {100_000, 300_001}} {
		if err := db.PutPieces(id, 1, r[0], c1[r[0]:r[1]], future); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutPieces(id, 1, 300_001, c1[300_001:ChunkSize], future); err != nil {
		t.Fatal(err)
	}
	if err := db.PutChunk(id, 1, c1); err != nil {
		t.Fatal(err)
	}
	// Chunk 2's pieces fail the chunk's check and are dropped.
	if err := db.PutPieces(id, 2, 0, randomBytes(200_000), future); err != nil {
		t.Fatal(err)
	}
	if err := db.ResetChunk(id, 2); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 3} {
		if err := db.PutChunk(id, i, chunk(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkUploadSHA256(t, db, id, data, 0)
}

// TestUploadSHA256OutOfOrder checks that chunks stored out of order are
// hashed once the gap before them closes, at most maxHashAdvance bytes in
// one transaction, and that UploadSHA256 hashes the rest.
func TestUploadSHA256OutOfOrder(t *testing.T) {
	db := openTemp(t)
	const chunks = maxHashAdvance/ChunkSize + 4
	data := randomBytes(chunks*ChunkSize - 7)
	id := newID(t)
	createUpload(t, db, id, int64(len(data)))
	for i := chunks - 1; i >= 0; i-- {
		if err := db.PutChunk(id, i, data[i*ChunkSize:min(len(data), (i+1)*ChunkSize)]); err != nil {
			t.Fatal(err)
		}
	}
	// Storing chunk 0 hashed maxHashAdvance bytes from the start.
	checkUploadSHA256(t, db, id, data, int64(len(data))-maxHashAdvance)

	// Two chunks out of order, then the gap closes.
	data = randomBytes(3 * ChunkSize)
	id = newID(t)
	createUpload(t, db, id, int64(len(data)))
	for _, i := range []int{0, 2, 1} {
		if err := db.PutChunk(id, i, data[i*ChunkSize:(i+1)*ChunkSize]); err != nil {
			t.Fatal(err)
		}
	}
	checkUploadSHA256(t, db, id, data, 0)
}

// TestUploadSHA256WithoutState covers a file written before running hashes
// existed: UploadSHA256 reads and hashes the whole upload.
func TestUploadSHA256WithoutState(t *testing.T) {
	db := openTemp(t)
	data := randomBytes(2*ChunkSize + 1)
	id := newID(t)
	createUpload(t, db, id, int64(len(data)))
	putAll(t, db, id, data)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketHashes) }); err != nil {
		t.Fatal(err)
	}
	checkUploadSHA256(t, db, id, data, int64(len(data)))
}

// TestHashStateDeleted checks that finishing and deleting an upload leave
// no running hash behind.
func TestHashStateDeleted(t *testing.T) {
	db := openTemp(t)
	s := submit(t, db, randomBytes(ChunkSize+1), t0)
	id := newID(t)
	createUpload(t, db, id, ChunkSize)
	putAll(t, db, id, randomBytes(ChunkSize))
	if err := db.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		for _, k := range []string{s.ID, id} {
			if tx.Bucket(bucketHashes).Get([]byte(k)) != nil {
				t.Errorf("running hash of %s left behind", k)
			}
		}
		return nil
	})
}

// BenchmarkUploadSHA256 measures finishing uploads of growing size: the
// time per operation stays the same.
func BenchmarkUploadSHA256(b *testing.B) {
	for _, chunks := range []int{16, 256} {
		b.Run(strconv.Itoa(chunks)+"MiB", func(b *testing.B) {
			db := openTemp(b)
			data := randomBytes(ChunkSize)
			id := newID(b)
			createUpload(b, db, id, int64(chunks)*ChunkSize)
			for i := range chunks {
				if err := db.PutChunk(id, i, data); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, read, err := db.UploadSHA256(id, int64(chunks)*ChunkSize); err != nil || read != 0 {
					b.Fatalf("UploadSHA256: read %d, %v", read, err)
				}
			}
		})
	}
}
