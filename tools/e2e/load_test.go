package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Load shapes. The quick one runs in every CI run; TESTIMONY_LOAD=long is
// the benchmark run.
type loadShape struct {
	clients, perClient int
	// everyMedium makes every n-th submission medium sized.
	everyMedium int
}

var loadShapes = map[string]loadShape{
	"quick": {clients: 100, perClient: 1, everyMedium: 20},
	"long":  {clients: 200, perClient: 5, everyMedium: 5},
}

const (
	loadSmall  = 10 << 10
	loadMedium = 10 << 20
)

// TestLoad runs concurrent clients, each with its own TLS connections,
// against the real server binary on 127.0.0.1. Small (10 KiB) submissions
// go as one request; medium (10 MiB) ones alternate between one request and
// the chunked protocol. Every submission must get 201 and a receipt for
// exactly what was sent, whose checkpoint signature and inclusion proof
// verify with the log key, and must download afterwards with the same hash;
// there may be no error of any kind. The test logs the figures, including
// the server's peak resident memory, and asserts no timings.
func TestLoad(t *testing.T) {
	mode := os.Getenv("TESTIMONY_LOAD")
	if mode == "" {
		mode = "quick"
	}
	shape, ok := loadShapes[mode]
	if !ok {
		t.Fatalf("TESTIMONY_LOAD=%q: use quick or long", mode)
	}
	e := newEnv(t)
	// Every client sends with the one submit token, and a one-shot counts
	// as an open upload while its body arrives; the server's capacity is
	// under test here, the limit per token in server's quota tests.
	e.restart("-max-open-uploads", strconv.Itoa(shape.clients))
	// The ciphertexts are made before the clients start, so the figures
	// are the server's, and shared, so memory stays bounded in long mode:
	// the server neither knows nor cares that two submissions are equal.
	enc := newAPIClient(t, e)
	smallFiles := make([][]byte, 32)
	for i := range smallFiles {
		smallFiles[i] = enc.encrypt(t, loadSmall, uint64(i))
	}
	mediumFiles := make([][]byte, 8)
	for i := range mediumFiles {
		mediumFiles[i] = enc.encrypt(t, loadMedium, uint64(1000+i))
	}

	type result struct {
		id, sha string
		size    int
	}
	var mu sync.Mutex
	var results []result
	var errs []string
	var small, medium, chunked int
	var sent int64
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range shape.clients {
		c := newAPIClient(t, e)
		wg.Go(func() {
			<-start
			for j := range shape.perClient {
				n := i*shape.perClient + j
				file, isMedium, viaChunks := smallFiles[n%len(smallFiles)], false, false
				if n%shape.everyMedium == shape.everyMedium-1 {
					file, isMedium = mediumFiles[(n/shape.everyMedium)%len(mediumFiles)], true
					viaChunks = (n/shape.everyMedium)%2 == 1
				}
				var r receiptFields
				var err error
				if viaChunks {
					r, err = c.chunked(file)
				} else {
					r, err = c.oneShot(file)
				}
				if err != nil {
					fail("client %d, submission %d (%d bytes): %v", i, j, len(file), err)
					continue
				}
				mu.Lock()
				results = append(results, result{r.ID, hexSHA256(file), len(file)})
				sent += int64(len(file))
				if isMedium {
					medium++
					if viaChunks {
						chunked++
					}
				} else {
					small++
				}
				mu.Unlock()
			}
		})
	}
	sampler := sampleMemory(e.server.Process.Pid)
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	anonPeak, filePeak := sampler()
	for _, e := range errs {
		t.Error(e)
	}
	uploadPeak := vmHWM(e.server.Process.Pid)

	want := map[string]string{}
	for _, r := range results {
		if _, dup := want[r.id]; dup {
			t.Errorf("two receipts for submission %s", r.id)
		}
		want[r.id] = r.sha
	}
	if len(want) != shape.clients*shape.perClient {
		t.Fatalf("%d submissions acknowledged, want %d", len(want), shape.clients*shape.perClient)
	}
	dlStart := time.Now()
	enc.checkDownloads(t, want)
	dlElapsed := time.Since(dlStart)
	subs, err := enc.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != len(want) {
		t.Errorf("%d submissions listed, want %d", len(subs), len(want))
	}
	finalPeak := vmHWM(e.server.Process.Pid)

	mib := float64(sent) / (1 << 20)
	t.Logf("load (%s): %d concurrent clients over TLS to testimony-server on 127.0.0.1", mode, shape.clients)
	t.Logf("  %-36s %d (%d × 10 KiB, %d × 10 MiB of which %d chunked)", "submissions (201, receipt verified)", len(results), small, medium, chunked)
	t.Logf("  %-36s %.1f MiB", "ciphertext sent", mib)
	t.Logf("  %-36s %s (%.1f MiB/s, %.0f submissions/s)", "upload phase", elapsed.Round(time.Millisecond), mib/elapsed.Seconds(), float64(len(results))/elapsed.Seconds())
	t.Logf("  %-36s %s, every hash matches", "download phase (8 at a time)", dlElapsed.Round(time.Millisecond))
	t.Logf("  %-36s %d", "errors", len(errs))
	t.Logf("  %-36s %d MiB after uploads, %d MiB after downloads", "server peak RSS (VmHWM)", uploadPeak>>20, finalPeak>>20)
	t.Logf("  %-36s %d MiB anonymous (heap, stacks, buffers), %d MiB mapped from the bbolt file (page cache)",
		"sampled during uploads", anonPeak>>20, filePeak>>20)
}

// sampleMemory samples a process's resident memory every 10 ms until the
// returned function is called, which returns the largest RssAnon and
// RssFile seen. The split matters because bbolt maps its file: pages of it
// that the server touched count as resident, yet belong to the page cache.
func sampleMemory(pid int) func() (anon, file int64) {
	stop := make(chan struct{})
	done := make(chan [2]int64)
	go func() {
		var peak [2]int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			a, f := procStatus(pid, "RssAnon:"), procStatus(pid, "RssFile:")
			peak[0], peak[1] = max(peak[0], a), max(peak[1], f)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(stop)
		p := <-done
		return p[0], p[1]
	}
}

// procStatus returns a field of /proc/PID/status in bytes, or -1.
func procStatus(pid int, field string) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// vmHWM returns a process's peak resident set size in bytes, from Linux's
// /proc/PID/status, or -1 where there is none.
func vmHWM(pid int) int64 { return procStatus(pid, "VmHWM:") }
