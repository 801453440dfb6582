package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"

	bolt "go.etcd.io/bbolt"
)

// readAll reads a submission through NewReader with plain Read calls.
func readAll(t testing.TB, db *DB, id string) []byte {
	t.Helper()
	r, err := db.NewReader(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(struct{ io.Reader }{r}) // hide WriteTo
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReader(t *testing.T) {
	db := openTemp(t)
	for _, tt := range []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"just under a chunk", ChunkSize - 1},
		{"one chunk", ChunkSize},
		{"just over a chunk", ChunkSize + 1},
		{"several chunks", 3*ChunkSize + 12345},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size)
			s := submit(t, db, data, t0)

			if got := readAll(t, db, s.ID); !bytes.Equal(got, data) {
				t.Errorf("Read returned %d bytes, differing from the %d stored", len(got), len(data))
			}

			r, err := db.NewReader(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := io.Copy(&buf, r)
			if err != nil || n != int64(tt.size) || !bytes.Equal(buf.Bytes(), data) {
				t.Errorf("io.Copy (WriteTo) = %d, %v; content equal %v", n, err, bytes.Equal(buf.Bytes(), data))
			}
			r.Close()

			r, err = db.NewReader(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(r, data); err != nil {
				t.Error(err)
			}
			r.Close()
		})
	}
}

func TestReaderSmallReadsThenWriteTo(t *testing.T) {
	db := openTemp(t)
	data := randomBytes(2*ChunkSize + 7)
	s := submit(t, db, data, t0)
	r, err := db.NewReader(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	if _, err := io.Copy(&rest, r); err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest.Bytes()...); !bytes.Equal(got, data) {
		t.Error("Read followed by WriteTo returned different bytes")
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("client went away")
	}
	w.n--
	return len(p), nil
}

func TestReaderErrors(t *testing.T) {
	db := openTemp(t)

	if _, err := db.NewReader(newID(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("NewReader(unknown): %v, want ErrNotFound", err)
	}
	open := newID(t)
	createUpload(t, db, open, 1)
	if _, err := db.NewReader(open); !errors.Is(err, ErrNotFound) {
		t.Errorf("NewReader(open upload): %v, want ErrNotFound", err)
	}

	data := randomBytes(3 * ChunkSize)
	s := submit(t, db, data, t0)

	r, err := db.NewReader(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&failWriter{n: 1}, r); err == nil || err.Error() != "client went away" {
		t.Errorf("io.Copy to a failing writer: %v", err)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}

	// Damage the file behind the records' back: a truncated chunk and a
	// missing one must both be reported, never read as a shorter stream.
	for _, tt := range []struct {
		name   string
		damage func(b *bolt.Bucket, raw [16]byte) error
	}{
		{"truncated chunk", func(b *bolt.Bucket, raw [16]byte) error {
			return b.Bucket(chunkKey(raw, 1)).Put(chunkData, data[:10])
		}},
		{"missing last chunk", func(b *bolt.Bucket, raw [16]byte) error { return b.DeleteBucket(chunkKey(raw, 2)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := submit(t, db, data, t0)
			raw, _ := parseID(s.ID)
			err := db.bolt.Update(func(tx *bolt.Tx) error { return tt.damage(tx.Bucket(bucketChunks), raw) })
			if err != nil {
				t.Fatal(err)
			}
			r, err := db.NewReader(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := io.Copy(io.Discard, r); !errors.Is(err, ErrCorrupt) {
				t.Errorf("io.Copy of damaged submission: %v, want ErrCorrupt", err)
			}
			if _, err := io.ReadAll(struct{ io.Reader }{r}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Read after the error: %v, want ErrCorrupt again", err)
			}
		})
	}

	r, err = db.NewReader(submit(t, db, []byte("x"), t0).ID)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := io.ReadAll(r); err == nil {
		t.Error("Read after DB.Close succeeded")
	}
}
