package store

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

func BenchmarkPutChunk(b *testing.B) {
	db := openTemp(b)
	id := newID(b)
	createUpload(b, db, id, -1)
	data := randomBytes(ChunkSize)
	b.SetBytes(ChunkSize)
	for i := 0; b.Loop(); i++ {
		if err := db.PutChunk(id, i, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	db := openTemp(b)
	const size = 32 * ChunkSize
	s := submit(b, db, randomBytes(size), t0)
	b.SetBytes(size)
	for b.Loop() {
		r, err := db.NewReader(s.ID)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			b.Fatalf("io.Copy = %d, %v", n, err)
		}
		r.Close()
	}
}

// heapPeak samples the Go heap until stop is called, after every explicit
// sample and every millisecond in between, and returns the largest
// HeapAlloc and HeapInuse seen.
type heapPeak struct {
	mu              sync.Mutex
	alloc, inuse    uint64
	stop            chan struct{}
	done            sync.WaitGroup
	baseAlloc, base uint64
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p := &heapPeak{stop: make(chan struct{}), baseAlloc: ms.HeapAlloc, base: ms.HeapInuse}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	return p
}

func (p *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.mu.Lock()
	p.alloc = max(p.alloc, ms.HeapAlloc)
	p.inuse = max(p.inuse, ms.HeapInuse)
	p.mu.Unlock()
}

func (p *heapPeak) end() {
	close(p.stop)
	p.done.Wait()
	p.sample()
}

// BenchmarkWrite512MiB writes 512 MiB through PutChunk into a fresh file per
// iteration and reports the peak Go heap seen while doing so, to show that
// memory stays bounded by a few chunks whatever the submission size. It
// also reports how long reopening the 512 MiB file takes, which includes
// rebuilding the freelist (see NoFreelistSync in the package docs).
// Run it with -benchtime=1x; it needs 512 MiB of disk per iteration.
func BenchmarkWrite512MiB(b *testing.B) {
	const chunks = 512
	data := randomBytes(ChunkSize)
	var peakAlloc, peakInuse, baseAlloc uint64
	var reopen time.Duration
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "big.db")
		db, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		id := newID(b)
		createUpload(b, db, id, chunks*ChunkSize)
		p := startHeapPeak()
		for i := range chunks {
			// Vary the bytes so that no page is accidentally shared.
			data[0], data[ChunkSize-1] = byte(i), byte(i>>8)
			if err := db.PutChunk(id, i, data); err != nil {
				b.Fatal(err)
			}
			p.sample()
		}
		p.end()
		peakAlloc, peakInuse, baseAlloc = max(peakAlloc, p.alloc), max(peakInuse, p.inuse), p.baseAlloc
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		start := time.Now()
		db, err = Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		reopen = max(reopen, time.Since(start))
		db.Close()
		os.Remove(path)
		b.StartTimer()
	}
	b.SetBytes(chunks * ChunkSize)
	b.ReportMetric(float64(peakAlloc)/(1<<20), "peak-heap-alloc-MiB")
	b.ReportMetric(float64(peakInuse)/(1<<20), "peak-heap-inuse-MiB")
	b.ReportMetric(float64(baseAlloc)/(1<<20), "base-heap-alloc-MiB")
	b.ReportMetric(float64(reopen.Microseconds())/1000, "reopen-ms")
}

// BenchmarkPutChunkConcurrent stores chunks of four uploads from four
// goroutines at once, as a server does for four caseworkers sending at the
// same time. Against BenchmarkPutChunk it shows what sharing commits could
// gain (docs/benchmarks.md: nothing measurable, the commit's cost is per
// byte).
func BenchmarkPutChunkConcurrent(b *testing.B) {
	db := openTemp(b)
	const writers = 4
	ids := make([]string, writers)
	for w := range ids {
		ids[w] = newID(b)
		createUpload(b, db, ids[w], -1)
	}
	data := randomBytes(ChunkSize)
	b.SetBytes(ChunkSize)
	var next [writers]int
	var mu sync.Mutex
	b.SetParallelism(writers) // with GOMAXPROCS 2 or more, at least 4 goroutines
	w := 0
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		me := w % writers
		w++
		mu.Unlock()
		for pb.Next() {
			mu.Lock()
			i := next[me]
			next[me]++
			mu.Unlock()
			if err := db.PutChunk(ids[me], i, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
