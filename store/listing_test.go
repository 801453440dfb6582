package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// pageAll reads every page of SubmissionsPage with limit and returns the
// ids in order.
func pageAll(t testing.TB, db *DB, pendingOnly bool, limit int) []string {
	t.Helper()
	var ids []string
	for after := int64(-1); ; {
		page, err := db.SubmissionsPage(pendingOnly, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			ids = append(ids, s.ID)
		}
		if len(page) < limit {
			return ids
		}
		after = page[len(page)-1].Index
	}
}

func TestSubmissionsPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testimony.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 7 {
		all = append(all, submit(t, db, []byte(strconv.Itoa(i)), t0).ID)
	}
	for _, i := range []int{0, 3, 4} {
		if err := db.MarkCollected(all[i]); err != nil {
			t.Fatal(err)
		}
	}
	pending := []string{all[1], all[2], all[5], all[6]}
	check := func(db *DB) {
		t.Helper()
		for _, limit := range []int{1, 2, 3, 7, MaxSubmissionsPage} {
			if got := pageAll(t, db, false, limit); !slices.Equal(got, all) {
				t.Errorf("all, limit %d: %v, want %v", limit, got, all)
			}
			if got := pageAll(t, db, true, limit); !slices.Equal(got, pending) {
				t.Errorf("pending, limit %d: %v, want %v", limit, got, pending)
			}
		}
	}
	check(db)

	// A file from before the indexes gets them at Open.
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketByIndex); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketPending)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)

	for _, tt := range []struct {
		after int64
		limit int
	}{{-2, 1}, {0, 0}, {0, MaxSubmissionsPage + 1}} {
		if _, err := db.SubmissionsPage(false, tt.after, tt.limit); !errors.Is(err, ErrInvalid) {
			t.Errorf("SubmissionsPage(after %d, limit %d) = %v, want ErrInvalid", tt.after, tt.limit, err)
		}
	}
}

// scaleSubmissions is how many submissions BenchmarkScale's store holds.
const scaleSubmissions = 100_000

// BenchmarkScale measures a store of 100,000 submissions of 10 KiB, the
// first 99% collected: opening it, as the server does when it starts, a
// page of 1000 from the middle, and the first page of pending ones. Filling
// it commits without fsync, which only a benchmark may do, and takes about
// a minute and 1.4 GB of disk.
func BenchmarkScale(b *testing.B) {
	if os.Getenv("TESTIMONY_SCALE") == "" {
		b.Skip("set TESTIMONY_SCALE=1 to fill a store with 100,000 submissions")
	}
	path := filepath.Join(b.TempDir(), "testimony.db")
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	db.bolt.NoSync = true
	data := randomBytes(10 << 10)
	for i := range scaleSubmissions {
		id := newID(b)
		createUpload(b, db, id, int64(len(data)))
		putAll(b, db, id, data)
		s := submissionOf(id, data, t0)
		if _, err := db.FinishUpload(id, s, leafOf(s)); err != nil {
			b.Fatal(err)
		}
		if i < scaleSubmissions*99/100 {
			if err := db.MarkCollected(id); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := db.bolt.Sync(); err != nil {
		b.Fatal(err)
	}
	db.Close()

	// A start after a clean stop reads the freelist Close wrote; a start
	// after a crash walks the file to rebuild it. Closing the bbolt file
	// without the store's Close leaves it as a crash would, once Open's
	// own commit has marked it as having no freelist.
	for _, crash := range []bool{false, true} {
		name := "open"
		if crash {
			name = "open-after-crash"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				db, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if crash {
					db.bolt.Close()
				} else if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	// Leave the file as a clean stop does, for the pages below.
	if db, err = Open(path, Options{}); err != nil {
		b.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, pending := range []bool{false, true} {
		b.Run("page/pending="+strconv.FormatBool(pending), func(b *testing.B) {
			after := int64(scaleSubmissions / 2)
			if pending {
				after = -1
			}
			for b.Loop() {
				page, err := db.SubmissionsPage(pending, after, MaxSubmissionsPage)
				if err != nil || len(page) != MaxSubmissionsPage {
					b.Fatalf("page of %d, %v", len(page), err)
				}
			}
		})
	}
}
