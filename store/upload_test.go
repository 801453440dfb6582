package store

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestCreateUpload(t *testing.T) {
	db := openTemp(t)
	existing := newID(t)
	createUpload(t, db, existing, 10)
	done := submit(t, db, []byte("ciphertext"), t0).ID

	sha := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		u       Upload
		wantErr error
	}{
		{"declared size", Upload{ID: newID(t), Size: 5 * ChunkSize, SHA256: sha, Created: t0, Expires: future}, nil},
		{"unknown size", Upload{ID: newID(t), Size: -1, Expires: future}, nil},
		{"empty", Upload{ID: newID(t), Size: 0, Expires: future}, nil},
		{"existing upload", Upload{ID: existing, Size: 1, Expires: future}, ErrExists},
		{"existing submission", Upload{ID: done, Size: 1, Expires: future}, ErrExists},
		{"size below -1", Upload{ID: newID(t), Size: -2, Expires: future}, ErrInvalid},
		{"size past uint32 chunks", Upload{ID: newID(t), Size: maxChunks*ChunkSize + 1, Expires: future}, ErrInvalid},
		{"bad sha256", Upload{ID: newID(t), Size: 1, SHA256: "AB", Expires: future}, ErrInvalid},
		{"uppercase sha256", Upload{ID: newID(t), Size: 1, SHA256: strings.ToUpper(sha), Expires: future}, ErrInvalid},
		{"no expiry", Upload{ID: newID(t), Size: 1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.CreateUpload(tt.u)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateUpload: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got, err := db.Upload(tt.u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.u.ID || got.Size != tt.u.Size || got.SHA256 != tt.u.SHA256 ||
				!got.Created.Equal(uploadCreated(tt.u.Created)) || !got.Expires.Equal(tt.u.Expires) {
				t.Errorf("Upload = %+v, want %+v", got, tt.u)
			}
		})
	}
}

func TestUploadLookup(t *testing.T) {
	db := openTemp(t)
	open := newID(t)
	createUpload(t, db, open, 3)
	done := submit(t, db, []byte("abc"), t0).ID
	for _, tt := range []struct {
		id      string
		wantErr error
	}{
		{open, nil},
		{done, ErrNotFound},
		{newID(t), ErrNotFound},
	} {
		if _, err := db.Upload(tt.id); !errors.Is(err, tt.wantErr) {
			t.Errorf("Upload(%s): %v, want %v", tt.id, err, tt.wantErr)
		}
	}
}

func TestPutChunk(t *testing.T) {
	db := openTemp(t)
	declared := newID(t)
	createUpload(t, db, declared, 2*ChunkSize+10)
	unknown := newID(t)
	createUpload(t, db, unknown, -1)
	done := submit(t, db, []byte("finished"), t0).ID

	full := randomBytes(ChunkSize)
	other := randomBytes(ChunkSize)
	tail := randomBytes(10)
	tests := []struct {
		name    string
		id      string
		index   int
		data    []byte
		wantErr error
	}{
		{"first", declared, 0, full, nil},
		{"same bytes again", declared, 0, full, nil},
		{"different bytes", declared, 0, other, ErrChunkConflict},
		{"different length", declared, 0, full[:10], ErrInvalid},
		{"out of order", declared, 2, tail, nil},
		{"middle", declared, 1, other, nil},
		{"past declared end", declared, 3, tail, ErrInvalid},
		{"short middle chunk", declared, 1, full[:ChunkSize-1], ErrInvalid},
		{"last chunk too long", declared, 2, full[:11], ErrInvalid},
		{"unknown size short", unknown, 0, tail, nil},
		{"unknown size full", unknown, 1, full, nil},
		{"unknown size conflict", unknown, 0, tail[:9], ErrChunkConflict},
		{"too large", unknown, 2, make([]byte, ChunkSize+1), ErrInvalid},
		{"empty", unknown, 2, nil, ErrInvalid},
		{"negative index", unknown, -1, tail, ErrInvalid},
		{"unknown upload", newID(t), 0, tail, ErrNotFound},
		{"finished", done, 0, []byte("finished"), ErrUploadComplete},
		{"finished new index", done, 1, tail, ErrUploadComplete},
	}
	if strconv.IntSize == 64 {
		var past uint64 = maxChunks // a variable, so that 32-bit builds compile
		tests = append(tests, struct {
			name    string
			id      string
			index   int
			data    []byte
			wantErr error
		}{"index past uint32", unknown, int(past), tail, ErrInvalid})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.PutChunk(tt.id, tt.index, tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PutChunk: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got, err := db.ReadChunk(tt.id, tt.index)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Error("ReadChunk returned different bytes")
			}
		})
	}
	if got, err := db.ReadChunk(declared, 0); err != nil || !bytes.Equal(got, full) {
		t.Errorf("chunk 0 after conflict attempt: %v", err)
	}
}

func TestPutChunkDoesNotRetainData(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, -1)
	data := []byte("chunk")
	if err := db.PutChunk(id, 0, data); err != nil {
		t.Fatal(err)
	}
	copy(data, "XXXXX")
	got, err := db.ReadChunk(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "chunk" {
		t.Errorf("stored chunk changed with the caller's buffer: %q", got)
	}
}

func TestChunkIndexesAndReadChunk(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	createUpload(t, db, id, -1)
	// A neighbouring id must not leak into the listing.
	neighbour := id[:31] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", id[31])+1)%16])
	createUpload(t, db, neighbour, -1)
	if err := db.PutChunk(neighbour, 1, []byte("n")); err != nil {
		t.Fatal(err)
	}

	idx, err := db.ChunkIndexes(id)
	if err != nil || len(idx) != 0 {
		t.Fatalf("ChunkIndexes of empty upload = %v, %v", idx, err)
	}
	for _, i := range []int{5, 0, 300, 2} {
		if err := db.PutChunk(id, i, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	idx, err = db.ChunkIndexes(id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2, 5, 300}; !slices.Equal(idx, want) {
		t.Errorf("ChunkIndexes = %v, want %v", idx, want)
	}
	if _, err := db.ChunkIndexes(newID(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChunkIndexes(unknown): %v, want ErrNotFound", err)
	}

	s := submit(t, db, randomBytes(ChunkSize+1), t0)
	if idx, err := db.ChunkIndexes(s.ID); err != nil || !slices.Equal(idx, []int{0, 1}) {
		t.Errorf("ChunkIndexes(submission) = %v, %v", idx, err)
	}

	for _, tt := range []struct {
		name    string
		id      string
		index   int
		want    []byte
		wantErr error
	}{
		{"upload chunk", id, 300, []byte{byte(300 % 256)}, nil},
		{"missing chunk", id, 1, nil, ErrNotFound},
		{"submission chunk", s.ID, 1, nil, nil},
		{"unknown id", newID(t), 0, nil, ErrNotFound},
		{"negative", id, -1, nil, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ReadChunk(tt.id, tt.index)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadChunk: %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && !bytes.Equal(got, tt.want) {
				t.Errorf("ReadChunk = %x, want %x", got, tt.want)
			}
		})
	}
}

// chunkCountOf counts the stored chunks of id directly, whatever its records
// say.
func chunkCountOf(t *testing.T, db *DB, id string) int {
	t.Helper()
	raw, err := parseID(id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		for k, _ := c.Seek(raw[:]); k != nil && bytes.HasPrefix(k, raw[:]); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// putSmallChunks stores n one-byte chunks, which is enough to exercise
// batching without writing n MiB.
func putSmallChunks(t *testing.T, db *DB, id string, n int) {
	t.Helper()
	for i := range n {
		if err := db.PutChunk(id, i, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeleteUpload(t *testing.T) {
	db := openTemp(t)
	small := newID(t)
	createUpload(t, db, small, -1)
	putSmallChunks(t, db, small, 3)
	big := newID(t)
	createUpload(t, db, big, -1)
	putSmallChunks(t, db, big, 2*deleteBatch+7)
	kept := submit(t, db, randomBytes(ChunkSize+5), t0)

	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{"small", small, nil},
		{"many batches", big, nil},
		{"again", small, ErrNotFound},
		{"unknown", newID(t), ErrNotFound},
		{"submission", kept.ID, ErrUploadComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.DeleteUpload(tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DeleteUpload: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if _, err := db.Upload(tt.id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Upload after delete: %v, want ErrNotFound", err)
			}
			if n := chunkCountOf(t, db, tt.id); n != 0 {
				t.Errorf("%d chunks left after delete", n)
			}
			if err := db.PutChunk(tt.id, 0, []byte("x")); !errors.Is(err, ErrNotFound) {
				t.Errorf("PutChunk after delete: %v, want ErrNotFound", err)
			}
		})
	}
	if n := chunkCountOf(t, db, kept.ID); n != 2 {
		t.Errorf("submission has %d chunks after deleting others, want 2", n)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestExpireUploads(t *testing.T) {
	db := openTemp(t)
	now := t0.Add(24 * time.Hour)
	mk := func(expires time.Time, chunks int) string {
		id := newID(t)
		if err := db.CreateUpload(Upload{ID: id, Size: -1, Created: t0, Expires: expires}); err != nil {
			t.Fatal(err)
		}
		putSmallChunks(t, db, id, chunks)
		return id
	}
	expiredSmall := mk(now.Add(-time.Hour), 2)
	expiredBig := mk(now.Add(-time.Minute), deleteBatch+1)
	expiredNow := mk(now, 1)
	alive := mk(now.Add(time.Nanosecond), 4)
	finished := submit(t, db, []byte("done"), t0)

	// Leftovers of a delete interrupted by a crash: chunks with no record.
	orphan := mk(now.Add(time.Hour), deleteBatch+3)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).Delete([]byte(orphan))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUpload(Upload{ID: orphan, Size: -1, Expires: future}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateUpload over leftover chunks: %v, want ErrExists", err)
	}

	n, err := db.ExpireUploads(now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("ExpireUploads = %d, want 3", n)
	}
	for _, tt := range []struct {
		name    string
		id      string
		records bool
		chunks  int
	}{
		{"expired an hour ago", expiredSmall, false, 0},
		{"expired in many batches", expiredBig, false, 0},
		{"expires exactly now", expiredNow, false, 0},
		{"expires after now", alive, true, 4},
		{"submission", finished.ID, true, 1},
		{"leftover chunks", orphan, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, upErr := db.Upload(tt.id)
			_, subErr := db.Submission(tt.id)
			if has := upErr == nil || subErr == nil; has != tt.records {
				t.Errorf("record present = %v, want %v", has, tt.records)
			}
			if got := chunkCountOf(t, db, tt.id); got != tt.chunks {
				t.Errorf("%d chunks, want %d", got, tt.chunks)
			}
		})
	}

	if n, err := db.ExpireUploads(now); err != nil || n != 0 {
		t.Errorf("second ExpireUploads = %d, %v; want 0, nil", n, err)
	}
	if err := db.CreateUpload(Upload{ID: orphan, Size: -1, Expires: future}); err != nil {
		t.Errorf("CreateUpload after leftovers were swept: %v", err)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestNextPrefix(t *testing.T) {
	for _, tt := range []struct {
		in, want [16]byte
		ok       bool
	}{
		{[16]byte{15: 1}, [16]byte{15: 2}, true},
		{[16]byte{14: 1, 15: 0xff}, [16]byte{14: 2}, true},
		{[16]byte{0: 0xfe, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}, [16]byte{0: 0xff}, true},
		{[16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, [16]byte{}, false},
	} {
		got, ok := nextPrefix(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("nextPrefix(%x) = %x, %v; want %x, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPutChunkUntilExtendsExpiry(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	if err := db.CreateUpload(Upload{ID: id, Size: 2 * ChunkSize, Created: start, Expires: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	later := start.Add(5 * time.Hour)
	if err := db.PutChunkUntil(id, 0, randomBytes(ChunkSize), later); err != nil {
		t.Fatal(err)
	}
	if u, err := db.Upload(id); err != nil || !u.Expires.Equal(later) {
		t.Fatalf("expires %v (%v), want %v after a new chunk", u.Expires, err, later)
	}
	// An earlier time never shortens the upload's life.
	if err := db.PutChunkUntil(id, 1, randomBytes(ChunkSize), start.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.Upload(id); !u.Expires.Equal(later) {
		t.Fatalf("expires %v, want it kept at %v", u.Expires, later)
	}
	if n, err := db.ExpireUploads(later.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("expired %d (%v) before the extended expiry", n, err)
	}
}

// TestPutChunkSideBySide: chunks of one upload stored from several
// goroutines at once, some of them twice and one with other bytes, end as
// if stored one by one: every chunk once, the conflict refused, and the
// running hash over the whole upload.
func TestPutChunkSideBySide(t *testing.T) {
	db := openTemp(t)
	id := newID(t)
	const n = 24
	data := randomBytes(n*ChunkSize - 100)
	createUpload(t, db, id, int64(len(data)))
	chunk := func(i int) []byte { return data[i*ChunkSize : min(len(data), (i+1)*ChunkSize)] }
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 2 { // every chunk by two goroutines
				err := db.PutChunk(id, i, chunk(i))
				if err != nil {
					t.Errorf("chunk %d: %v", i, err)
				}
			}
			other := bytes.Clone(chunk(w))
			other[0] ^= 1
			if err := db.PutChunk(id, w, other); errors.Is(err, ErrChunkConflict) {
				mu.Lock()
				conflicts++
				mu.Unlock()
			} else if err != nil {
				t.Errorf("conflicting chunk %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if conflicts != 4 {
		t.Errorf("%d of 4 conflicting chunks refused", conflicts)
	}
	for i := range n {
		got, err := db.ReadChunk(id, i)
		if err != nil || !bytes.Equal(got, chunk(i)) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	checkUploadSHA256(t, db, id, data, int64(len(data)))
}
