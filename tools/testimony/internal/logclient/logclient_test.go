package logclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// fakeAPI is a server's log API in memory, with real hashing and
// signatures.
type fakeAPI struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	leaves []intakelog.Leaf
	hashes []tlog.Hash

	calls map[string]int
	// fail makes this many calls fail with a network error first.
	fail int
	// proof, if set, replaces every proof sent.
	proof []string
	// page, if set, edits each page of leaves.
	page func([]api.LogLeaf) []api.LogLeaf
}

func newFakeAPI(t *testing.T, n int) *fakeAPI {
	skey, vkey, err := note.GenerateKey(rand.Reader, "testimony-log-0000abcd")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{t: t, signer: s, vkey: vkey, calls: map[string]int{}}
	f.grow(n, 0)
	return f
}

// grow appends n leaves; seed makes them differ from another log's.
func (f *fakeAPI) grow(n, seed int) {
	for range n {
		i := len(f.leaves)
		l := intakelog.Leaf{ID: fmt.Sprintf("%032x", i+1000*seed), SHA256: fmt.Sprintf("%064x", i), Size: 10, Date: "2026-11-27"}
		hs, err := tlog.StoredHashes(int64(i), l.Bytes(), f)
		if err != nil {
			f.t.Fatal(err)
		}
		f.hashes = append(f.hashes, hs...)
		f.leaves = append(f.leaves, l)
	}
}

func (f *fakeAPI) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(f.hashes)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = f.hashes[x]
	}
	return out, nil
}

// note returns the signed checkpoint of the first n leaves.
func (f *fakeAPI) note(n int64) []byte {
	root, err := tlog.TreeHash(n, f)
	if err != nil {
		f.t.Fatal(err)
	}
	msg, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: f.signer.Name(), Size: n, Root: root}, f.signer)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg
}

func (f *fakeAPI) call(name string) error {
	f.calls[name]++
	if f.fail > 0 {
		f.fail--
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (f *fakeAPI) Checkpoint(context.Context) ([]byte, error) {
	if err := f.call("checkpoint"); err != nil {
		return nil, err
	}
	return f.note(int64(len(f.leaves))), nil
}

func (f *fakeAPI) Consistency(_ context.Context, oldSize, newSize int64) ([]string, error) {
	if err := f.call("consistency"); err != nil {
		return nil, err
	}
	p, err := tlog.ProveTree(newSize, oldSize, f)
	if f.proof != nil {
		return f.proof, nil
	}
	return intakelog.EncodeProof(p), err
}

func (f *fakeAPI) Inclusion(_ context.Context, index, size int64) ([]string, error) {
	if err := f.call("inclusion"); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(size, index, f)
	if f.proof != nil {
		return f.proof, nil
	}
	return intakelog.EncodeProof(p), err
}

func (f *fakeAPI) Leaves(_ context.Context, start, end int64) ([]api.LogLeaf, error) {
	if err := f.call("leaves"); err != nil {
		return nil, err
	}
	if end-start > api.MaxLeaves {
		f.t.Errorf("asked for %d leaves in one request", end-start)
	}
	var out []api.LogLeaf
	for i := start; i < end && i < int64(len(f.leaves)); i++ {
		l := f.leaves[i]
		out = append(out, api.LogLeaf{Index: i, ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date})
	}
	if f.page != nil {
		out = f.page(out)
	}
	return out, nil
}

func ops(f *fakeAPI) *Ops {
	return &Ops{
		API:   f,
		Retry: retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 3},
		Sleep: func(context.Context, time.Duration) error { return nil },
	}
}

func TestOpsPagesAndChecksLeaves(t *testing.T) {
	ctx := context.Background()
	f := newFakeAPI(t, api.MaxLeaves+5)
	leaves, err := ops(f).Leaves(ctx, 3, api.MaxLeaves+5)
	if err != nil || len(leaves) != api.MaxLeaves+2 || leaves[0] != f.leaves[3] {
		t.Fatalf("Leaves = %d leaves, %v", len(leaves), err)
	}
	if f.calls["leaves"] != 2 {
		t.Errorf("%d requests for %d leaves, want 2", f.calls["leaves"], api.MaxLeaves+2)
	}
	for _, tt := range []struct {
		name string
		page func([]api.LogLeaf) []api.LogLeaf
		msg  string
	}{
		{"short page", func(p []api.LogLeaf) []api.LogLeaf { return p[1:] }, "asked for log leaves 3 to 5, got 2"},
		{"wrong index", func(p []api.LogLeaf) []api.LogLeaf { p[1].Index = 9; return p }, "asked for log leaf 4, got leaf 9"},
	} {
		f.page = tt.page
		_, err := ops(f).Leaves(ctx, 3, 6)
		if !errors.Is(err, intakelog.ErrMalformed) || err.Error() != intakelog.ErrMalformed.Error()+": "+tt.msg {
			t.Errorf("%s: Leaves = %v", tt.name, err)
		}
	}
}

func TestOpsRetriesNetworkNotProofs(t *testing.T) {
	ctx := context.Background()
	f := newFakeAPI(t, 4)
	f.fail = 2
	if _, err := ops(f).Consistency(ctx, 2, 4); err != nil || f.calls["consistency"] != 3 {
		t.Fatalf("Consistency after 2 network failures = %v after %d calls", err, f.calls["consistency"])
	}
	f.proof = []string{"not base64"}
	f.calls = map[string]int{}
	if _, err := ops(f).Inclusion(ctx, 1, 4); !errors.Is(err, intakelog.ErrMalformed) || f.calls["inclusion"] != 1 {
		t.Fatalf("Inclusion with a malformed proof = %v after %d calls, want ErrMalformed at once", err, f.calls["inclusion"])
	}
	f.proof, f.fail = nil, 5
	if _, err := ops(f).Checkpoint(ctx); !errors.Is(err, io.ErrUnexpectedEOF) || intakelog.IsLogError(err) {
		t.Fatalf("Checkpoint on a dead link = %v", err)
	}
}

func TestFileStore(t *testing.T) {
	f := newFakeAPI(t, 3)
	path := filepath.Join(t.TempDir(), "logs", "host_443")
	store := &File{Path: path, LogKey: f.vkey}
	if msg, err := store.Latest(); msg != nil || err != nil {
		t.Fatalf("Latest without a file = %q, %v", msg, err)
	}
	a, b := f.note(2), f.note(3)
	if err := store.Swap(nil, a); err != nil {
		t.Fatal(err)
	}
	if err := store.Swap(nil, b); !errors.Is(err, intakelog.ErrWriteConflict) {
		t.Fatalf("Swap from a stale value = %v, want ErrWriteConflict", err)
	}
	if err := store.Swap(a, b); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(saved, b) {
		t.Fatalf("file holds %q, %v; want the checkpoint note as sent", saved, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode())
	}

	// A checkpoint of another log key: returned, for the client to
	// refuse, unless the caller starts again.
	other := newFakeAPI(t, 1)
	c, err := intakelog.NewClient(other.vkey, ops(other), &File{Path: path, LogKey: other.vkey})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Latest(); !errors.Is(err, intakelog.ErrStored) {
		t.Fatalf("Latest of another key's checkpoint = %v, want ErrStored", err)
	}
	c, _ = intakelog.NewClient(other.vkey, ops(other), &File{Path: path, LogKey: other.vkey, ReplaceOtherKey: true})
	if cp, _, err := c.Update(context.Background()); err != nil || cp.Size != 1 {
		t.Fatalf("Update replacing another key's checkpoint = %+v, %v", cp, err)
	}
}

// TestFileStoreConcurrentSwaps: of two updates from the same checkpoint,
// exactly one is saved; the other learns of the conflict.
func TestFileStoreConcurrentSwaps(t *testing.T) {
	f := newFakeAPI(t, 5)
	path := filepath.Join(t.TempDir(), "host_443")
	base := f.note(2)
	for range 20 {
		if err := os.WriteFile(path, base, 0o600); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { errs[i] = (&File{Path: path, LogKey: f.vkey}).Swap(base, f.note(int64(3+i))) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, intakelog.ErrWriteConflict):
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of 2 concurrent swaps from the same checkpoint succeeded", won)
		}
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	f := newFakeAPI(t, 5)
	fork := newFakeAPI(t, 0)
	fork.signer, fork.vkey = f.signer, f.vkey
	fork.grow(3, 1)
	for _, tt := range []struct {
		name        string
		checkpoints []byte // legacy checkpoints/<hp>
		collect     []byte // last checkpoint of collect/<hp>.json
		replace     bool
		want        error
		keep        []byte
	}{
		{"collect newer", f.note(2), f.note(4), false, nil, f.note(4)},
		{"receipts newer", f.note(5), f.note(3), false, nil, f.note(5)},
		{"only receipts", f.note(3), nil, false, nil, f.note(3)},
		{"same", f.note(3), f.note(3), false, nil, f.note(3)},
		{"fork", f.note(3), fork.note(3), false, intakelog.ErrFork, nil},
		{"not a prefix", fork.note(2), f.note(4), false, intakelog.ErrInconsistent, nil},
		{"other key", newFakeAPI(t, 2).note(2), f.note(4), false, intakelog.ErrStored, nil},
		{"other key, starting again", newFakeAPI(t, 2).note(2), f.note(4), true, nil, f.note(4)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, "checkpoints", "h_1")
			os.MkdirAll(filepath.Dir(old), 0o700)
			if err := os.WriteFile(old, tt.checkpoints, 0o600); err != nil {
				t.Fatal(err)
			}
			store := &File{Path: filepath.Join(dir, "logs", "h_1"), LogKey: f.vkey, ReplaceOtherKey: tt.replace}
			err := Migrate(ctx, store, ops(f), []Legacy{
				{Name: old, Note: tt.checkpoints, Remove: true},
				{Name: filepath.Join(dir, "collect", "h_1.json"), Note: tt.collect},
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Migrate = %v, want %v", err, tt.want)
			}
			got, _ := store.Latest()
			if !bytes.Equal(got, tt.keep) {
				t.Errorf("saved %q, want %q", got, tt.keep)
			}
			_, statErr := os.Stat(old)
			if removed := statErr != nil; removed != (tt.want == nil) {
				t.Errorf("checkpoints/ file removed: %v, want %v", removed, tt.want == nil)
			}
			// Migrating again changes nothing: the new file is the record.
			if tt.want == nil {
				if err := Migrate(ctx, store, ops(f), []Legacy{{Name: old, Note: f.note(5), Remove: true}}); err != nil {
					t.Fatal(err)
				}
				if again, _ := store.Latest(); !bytes.Equal(again, got) {
					t.Error("a second migration changed the record")
				}
			}
		})
	}
}
