package store

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestUploadRecordPrecision is the regression test for records that kept
// the time an upload began and its expiry to the nanosecond: the raw
// record holds the creation date and an expiry on the hour, nothing finer,
// also after a chunk moved the expiry.
func TestUploadRecordPrecision(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	created := time.Date(2026, 11, 27, 14, 37, 12, 345678901, time.UTC)
	if err := db.CreateUpload(Upload{ID: id, Size: 2 * ChunkSize, Created: created, Expires: created.Add(7 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	check := func(wantExpires time.Time) {
		t.Helper()
		var raw []byte
		db.bolt.View(func(tx *bolt.Tx) error {
			raw = bytes.Clone(tx.Bucket(bucketUploads).Get([]byte(id)))
			return nil
		})
		if fine := regexp.MustCompile(`T\d\d:(\d\d:\d\d)`).FindAllSubmatch(raw, -1); len(fine) != 2 ||
			string(fine[0][1]) != "00:00" || string(fine[1][1]) != "00:00" || bytes.Contains(raw, []byte(".")) {
			t.Fatalf("stored record %s holds a time finer than an hour", raw)
		}
		if !bytes.Contains(raw, []byte(`"created":"2026-11-27T00:00:00Z"`)) {
			t.Errorf("stored record %s: created is not the date 2026-11-27", raw)
		}
		u, err := db.Upload(id)
		if err != nil || !u.Expires.Equal(wantExpires) {
			t.Fatalf("Expires = %v (%v), want %v: rounded up, never earlier than asked", u.Expires, err, wantExpires)
		}
	}
	check(time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC))
	if err := db.PutPieces(id, 0, 0, randomBytes(100), created.Add(8*24*time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	check(time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC))
	if err := db.PutChunkUntil(id, 1, randomBytes(ChunkSize), created.Add(9*24*time.Hour+time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	check(time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC))
}

func TestUploadExpiry(t *testing.T) {
	for _, tt := range []struct{ in, want time.Time }{
		{time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 10, 0, 0, 1, time.UTC), time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 23, 59, 59, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 10, 30, 0, 0, time.FixedZone("KST", 9*3600)), time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)},
	} {
		if got := UploadExpiry(tt.in); !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("UploadExpiry(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestPieces stores a chunk in pieces as a slow link delivers it, reads the
// prefix back, refuses pieces at the wrong offset, and completes the chunk
// with PutChunkUntil.
func TestPieces(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	size := int64(ChunkSize + 1000)
	createUpload(t, db, id, size)
	chunk := randomBytes(ChunkSize)
	buf := make([]byte, ChunkSize)

	// 150 000 bytes in one commit become three pieces.
	if err := db.PutPieces(id, 0, 0, chunk[:150000], future); err != nil {
		t.Fatal(err)
	}
	if err := db.PutPieces(id, 0, 150000, chunk[150000:150001], future); err != nil {
		t.Fatal(err)
	}
	n, complete, err := db.ChunkPrefix(id, 0, buf)
	if err != nil || n != 150001 || complete || !bytes.Equal(buf[:n], chunk[:n]) {
		t.Fatalf("ChunkPrefix = %d, %v, %v; want the 150001 bytes stored", n, complete, err)
	}
	var pieces int
	db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Bucket(chunkKey(mustRaw(t, id), 0)).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			pieces++
		}
		return nil
	})
	if pieces != 4 {
		t.Errorf("%d pieces stored, want 4 (150000 bytes in pieces of at most %d, then 1)", pieces, PieceSize)
	}
	complete0, partial, err := db.ChunkState(id)
	if err != nil || len(complete0) != 0 || !slices.Equal(partial, []Partial{{0, 150001}}) {
		t.Fatalf("ChunkState = %v, %v, %v; want chunk 0 partial at 150001", complete0, partial, err)
	}

	for _, tt := range []struct {
		name      string
		index     int
		off       int
		data      []byte
		wantErr   error
		wantState int
	}{
		{"gap", 0, 150002, chunk[150002:150010], ErrOffset, 150001},
		{"behind", 0, 100, chunk[100:200], ErrOffset, 150001},
		{"past the chunk", 1, 900, make([]byte, 101), ErrInvalid, 150001},
		{"past the last chunk", 2, 0, []byte{1}, ErrInvalid, 150001},
		{"more than a chunk", 0, 150001, make([]byte, ChunkSize), ErrInvalid, 150001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.PutPieces(id, tt.index, tt.off, tt.data, future); !errors.Is(err, tt.wantErr) {
				t.Fatalf("PutPieces: %v, want %v", err, tt.wantErr)
			}
			if n, _, _ := db.ChunkPrefix(id, 0, buf); n != tt.wantState {
				t.Fatalf("chunk 0 holds %d bytes after a refused piece, want %d", n, tt.wantState)
			}
		})
	}

	// A whole chunk that does not start with the pieces is a conflict and
	// changes nothing.
	other := bytes.Clone(chunk)
	other[10] ^= 1
	if err := db.PutChunkUntil(id, 0, other, future); !errors.Is(err, ErrChunkConflict) {
		t.Fatalf("PutChunkUntil with different bytes: %v, want ErrChunkConflict", err)
	}
	if err := db.PutChunkUntil(id, 0, chunk, future); err != nil {
		t.Fatal(err)
	}
	if got, err := db.ReadChunk(id, 0); err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("ReadChunk after completion: %v", err)
	}
	if n, complete, err := db.ChunkPrefix(id, 0, buf); err != nil || n != ChunkSize || !complete {
		t.Fatalf("ChunkPrefix of a complete chunk = %d, %v, %v", n, complete, err)
	}
	if err := db.PutPieces(id, 0, ChunkSize-1, chunk[ChunkSize-1:], future); !errors.Is(err, ErrChunkConflict) {
		t.Fatalf("PutPieces on a complete chunk: %v, want ErrChunkConflict", err)
	}
	if complete, partial, _ := db.ChunkState(id); !slices.Equal(complete, []int{0}) || len(partial) != 0 {
		t.Fatalf("ChunkState = %v, %v after completion", complete, partial)
	}
}

// TestResetChunk drops the pieces of a chunk whose bytes failed their
// hash, and never a complete chunk.
func TestResetChunk(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, 2*ChunkSize)
	if err := db.PutPieces(id, 0, 0, randomBytes(5000), future); err != nil {
		t.Fatal(err)
	}
	chunk := randomBytes(ChunkSize)
	if err := db.PutChunkUntil(id, 1, chunk, future); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := db.ResetChunk(id, i); err != nil {
			t.Fatal(err)
		}
	}
	complete, partial, err := db.ChunkState(id)
	if err != nil || !slices.Equal(complete, []int{1}) || len(partial) != 0 {
		t.Fatalf("ChunkState = %v, %v, %v; want only the complete chunk 1", complete, partial, err)
	}
	// The reset chunk starts over from offset 0.
	if err := db.PutPieces(id, 0, 0, randomBytes(10), future); err != nil {
		t.Fatal(err)
	}
}

// TestPieceDamage: a piece whose bytes no longer match their SHA-256 is
// reported as corruption instead of being assembled into a chunk.
func TestPieceDamage(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, ChunkSize)
	if err := db.PutPieces(id, 0, 0, randomBytes(1000), future); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketChunks).Bucket(chunkKey(mustRaw(t, id), 0)).Bucket(pieceKey(0))
		return pb.Put(pieceData, randomBytes(1000))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChunkPrefix(id, 0, make([]byte, ChunkSize)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ChunkPrefix of a damaged piece: %v, want ErrCorrupt", err)
	}
}

// TestDeleteUploadWithPieces: deleting or expiring an upload removes its
// pieces too, so the id's chunks are gone.
func TestDeleteUploadWithPieces(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, ChunkSize)
	if err := db.PutPieces(id, 0, 0, randomBytes(3*PieceSize), future); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		raw := mustRaw(t, id)
		if k, _ := tx.Bucket(bucketChunks).Cursor().Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]) {
			t.Error("pieces remain after DeleteUpload")
		}
		return nil
	})
}

func mustRaw(t *testing.T, id string) [16]byte {
	t.Helper()
	raw, err := parseID(id)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
