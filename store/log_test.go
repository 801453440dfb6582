package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is an in-memory tlog hash storage, computed from the leaves
// alone; tests compare the store's stored hashes with it.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", idx)
		}
		out[i] = m[idx]
	}
	return out, nil
}

// recomputeLog reads every leaf of db and rebuilds the tree from them,
// independently of the hashes the store keeps.
func recomputeLog(t testing.TB, db *DB) (n int64, leaves [][]byte, hashes memHashes) {
	t.Helper()
	n, err := db.LogSize()
	if err != nil {
		t.Fatal(err)
	}
	for start := int64(0); start < n; start += MaxLogLeaves {
		got, err := db.LogLeaves(start, min(n, start+MaxLogLeaves))
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, got...)
	}
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashes(int64(i), leaf, hashes)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	return n, leaves, hashes
}

// checkLog verifies that the store's stored hashes are exactly those the
// leaves produce, and that the tree hash agrees at every size.
func checkLog(t testing.TB, db *DB) int64 {
	t.Helper()
	n, _, mem := recomputeLog(t, db)
	if got := tlog.StoredHashCount(n); got != int64(len(mem)) {
		t.Fatalf("recomputed %d stored hashes for %d leaves, want %d", len(mem), n, got)
	}
	if n > 0 {
		idx := make([]int64, len(mem))
		for i := range idx {
			idx[i] = int64(i)
		}
		stored, err := db.LogHashReader().ReadHashes(idx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range stored {
			if stored[i] != mem[i] {
				t.Fatalf("stored hash %d differs from the one recomputed from the leaves", i)
			}
		}
	}
	for size := int64(0); size <= n; size++ {
		want, err := tlog.TreeHash(size, mem)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tlog.TreeHash(size, db.LogHashReader())
		if err != nil {
			t.Fatalf("TreeHash(%d) from the store: %v", size, err)
		}
		if got != want {
			t.Fatalf("tree hash at size %d differs from the one recomputed from the leaves", size)
		}
	}
	return n
}

func TestLog(t *testing.T) {
	db := openTemp(t)
	if n, err := db.LogSize(); err != nil || n != 0 {
		t.Fatalf("LogSize of a new store = %d, %v", n, err)
	}
	var subs []Submission
	for i := range 17 {
		subs = append(subs, submit(t, db, []byte{byte(i), 1, 2}, t0))
	}
	if n := checkLog(t, db); n != 17 {
		t.Fatalf("LogSize = %d, want 17", n)
	}
	leaves, err := db.LogLeaves(0, 17)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if !bytes.Equal(leaves[i], leafOf(s)) {
			t.Errorf("leaf %d = %q, want the leaf of submission %s", i, leaves[i], s.ID)
		}
	}

	// Proofs from the store's hashes check out with tlog.
	r := db.LogHashReader()
	th, err := tlog.TreeHash(17, r)
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range leaves {
		p, err := tlog.ProveRecord(17, int64(i), r)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, 17, th, int64(i), tlog.RecordHash(leaf)); err != nil {
			t.Errorf("inclusion proof of leaf %d: %v", i, err)
		}
	}
	old, err := tlog.TreeHash(5, r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tlog.ProveTree(17, 5, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, 17, th, 5, old); err != nil {
		t.Errorf("consistency proof 5 -> 17: %v", err)
	}
	if _, err := tlog.TreeHash(18, r); !errors.Is(err, ErrNotFound) {
		t.Errorf("TreeHash beyond the log: %v, want ErrNotFound", err)
	}

	for _, tt := range []struct {
		start, end int64
		want       int
		wantErr    error
	}{
		{0, 0, 0, nil},
		{3, 7, 4, nil},
		{16, 17, 1, nil},
		{17, 17, 0, nil},
		{-1, 2, 0, ErrInvalid},
		{5, 4, 0, ErrInvalid},
		{0, 18, 0, ErrInvalid},
		{18, 18, 0, ErrInvalid},
		{0, MaxLogLeaves + 1, 0, ErrInvalid},
	} {
		got, err := db.LogLeaves(tt.start, tt.end)
		if !errors.Is(err, tt.wantErr) || len(got) != tt.want {
			t.Errorf("LogLeaves(%d, %d) = %d leaves, %v; want %d, %v", tt.start, tt.end, len(got), err, tt.want, tt.wantErr)
		}
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// A finish refused for any reason leaves the log as it was, and a finish
// that succeeds is the only thing that extends it.
func TestLogOnlyGrowsWithSubmissions(t *testing.T) {
	db := openTemp(t)
	s := submit(t, db, []byte("one"), t0)
	if _, err := db.FinishUpload(s.ID, s, leafOf(s)); !errors.Is(err, ErrUploadComplete) {
		t.Fatalf("finishing again: %v", err)
	}
	id := newID(t)
	createUpload(t, db, id, 10)
	bad := submissionOf(id, []byte("0123456789"), t0)
	if _, err := db.FinishUpload(id, bad, leafOf(bad)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("finishing without chunks: %v", err)
	}
	if n := checkLog(t, db); n != 1 {
		t.Fatalf("LogSize = %d, want 1", n)
	}
	list, err := db.Submissions(false)
	if err != nil || len(list) != 1 || list[0].Index != 0 {
		t.Fatalf("Submissions = %+v, %v", list, err)
	}
}
