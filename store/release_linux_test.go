package store

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

// rssFile returns how much of the process's resident memory is file-backed
// (the memory-mapped database), from /proc/self/status.
func rssFile(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		testenv.SkipOrFail(t, "no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	testenv.SkipOrFail(t, "RssFile is not in /proc/self/status: this kernel does not report it")
	return 0
}

// TestReadReleasesMappedPages reads a 64 MiB submission and checks that its
// pages of the database mapping do not stay resident: a collector
// downloading gigabytes must not grow the server's memory by as much.
func TestReadReleasesMappedPages(t *testing.T) {
	db := openTemp(t)
	data := randomBytes(64 << 20)
	s := submit(t, db, data, time.Now())

	before := rssFile(t)
	r, err := db.NewReader(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the 64 MiB written", len(got), err)
	}
	for i := 0; i < len(data)/ChunkSize; i++ {
		if _, err := db.ReadChunk(s.ID, i); err != nil {
			t.Fatal(err)
		}
	}
	if grown := rssFile(t) - before; grown > 16<<20 {
		t.Fatalf("file-backed resident memory grew by %d MiB reading a 64 MiB submission; mapped pages are not released", grown>>20)
	}
}
