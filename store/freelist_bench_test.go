package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkFreelist compares, on bare bbolt files of 100,000 chunks of
// 10 KiB (1 GiB), what the store's choice of freelist costs and what the
// alternatives would: opening the file, and committing after the whole
// GiB was deleted (a 1 MiB chunk, a 10 KiB one-shot). "nested" is the
// store's layout (one bucket per chunk), "inline" puts each chunk directly
// in the chunks bucket; "nosync" is the store's NoFreelistSync, "sync"
// writes the freelist on every commit. The page cache is warm: the file was
// just written. Filling takes a few minutes and
// 2 GB of disk, so it runs only with TESTIMONY_SCALE set:
//
//	TESTIMONY_SCALE=1 go test ./store -run '^$' -bench Freelist -benchtime 1x
func BenchmarkFreelist(b *testing.B) {
	if os.Getenv("TESTIMONY_SCALE") == "" {
		b.Skip("set TESTIMONY_SCALE=1 to fill bbolt files with 100,000 chunks")
	}
	const n = 100_000
	chunk := randomBytes(10 << 10)
	big := randomBytes(ChunkSize)
	for _, v := range []struct {
		layout string
		sync   bool
	}{{"nested", false}, {"nested", true}, {"inline", false}} {
		layout, sync := v.layout, v.sync
		name := layout + "/nosync"
		if sync {
			name = layout + "/sync"
		}
		b.Run(name, func(b *testing.B) {
			opt := &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: !sync}
			path := filepath.Join(b.TempDir(), "bench.db")
			db, err := bolt.Open(path, 0o600, opt)
			if err != nil {
				b.Fatal(err)
			}
			db.NoSync = true
			put := func(tx *bolt.Tx, i int, v []byte) error {
				key := []byte(fmt.Sprintf("%016x", i))
				if layout == "inline" {
					return tx.Bucket([]byte("chunks")).Put(key, v)
				}
				cb, err := tx.Bucket([]byte("chunks")).CreateBucket(key)
				if err != nil {
					return err
				}
				return cb.Put([]byte("data"), v)
			}
			del := func(tx *bolt.Tx, i int) error {
				key := []byte(fmt.Sprintf("%016x", i))
				if layout == "inline" {
					return tx.Bucket([]byte("chunks")).Delete(key)
				}
				return tx.Bucket([]byte("chunks")).DeleteBucket(key)
			}
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("chunks")); return err }))
			for i := 0; i < n; i += 1000 {
				must(db.Update(func(tx *bolt.Tx) error {
					for j := i; j < i+1000; j++ {
						if err := put(tx, j, chunk); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			db.NoSync = false
			must(db.Update(func(tx *bolt.Tx) error { return nil }))
			must(db.Close())

			var open time.Duration
			for range b.N {
				start := time.Now()
				db, err = bolt.Open(path, 0o600, opt)
				open += time.Since(start)
				must(err)
				if !sync {
					must(db.Close())
				}
			}
			if !sync {
				db, err = bolt.Open(path, 0o600, opt)
				must(err)
			}
			b.ReportMetric(open.Seconds()/float64(b.N), "open-s")

			db.NoSync = true
			for i := 0; i < n; i += 1000 {
				must(db.Update(func(tx *bolt.Tx) error {
					for j := i; j < i+1000; j++ {
						if err := del(tx, j); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			db.NoSync = false
			next := n
			commits := func(v []byte, count int) float64 {
				start := time.Now()
				for range count {
					must(db.Update(func(tx *bolt.Tx) error { return put(tx, next, v) }))
					next++
				}
				return time.Since(start).Seconds() * 1000 / float64(count)
			}
			b.ReportMetric(commits(big, 64), "1MiB-commit-ms")
			b.ReportMetric(commits(chunk, 64), "10KiB-commit-ms")
			must(db.Close())
		})
	}
}
