package collect

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// fakeLog is an intake log server in memory, with real RFC 6962 hashing
// and signatures; its knobs make it lie or fail.
type fakeLog struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	leaves []intakelog.Leaf
	hashes []tlog.Hash
	data   map[string][]byte

	downloads int
	// What the collector asked for: leaves sent, inclusion and consistency
	// proofs sent and the most hashes in one of them.
	leavesSent, inclusions, consistencies, maxProof int
	collected                                       map[string]bool
	// failMark makes MarkCollected fail with a network error.
	failMark bool
	// failDownload makes downloading this id fail with a network error.
	failDownload string
	// body, if set, replaces the data sent for a download.
	body func(id string, data []byte) []byte
	// header, if set, replaces the Ciphertext-SHA256 header.
	header string
	// size, if set, replaces the tree size the checkpoint is made for.
	size func(n int64) int64
	// signWith, if set, signs checkpoints instead of the log key.
	signWith note.Signer
	// leafPage, if set, edits a page of leaves before it is returned.
	leafPage func([]api.LogLeaf) []api.LogLeaf
	// badProof corrupts the inclusion proof of this index, if ≥ 0.
	badProof int64
}

func newLog(t *testing.T) *fakeLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, "testimony-log-0000abcd")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeLog{t: t, signer: signer, vkey: vkey, data: map[string][]byte{}, collected: map[string]bool{}, badProof: -1}
}

// add appends a submission of size random bytes and returns its leaf.
func (f *fakeLog) add(size int) intakelog.Leaf {
	l := f.append(size)
	f.rebuild()
	return l
}

// append adds a leaf as add does, without hashing the tree again: call
// rebuild after the last one.
func (f *fakeLog) append(size int) intakelog.Leaf {
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var id [16]byte
	rand.Read(id[:])
	l := intakelog.Leaf{ID: hex.EncodeToString(id[:]), SHA256: hex.EncodeToString(sum[:]), Size: int64(size), Date: "2026-11-27"}
	f.data[l.ID] = data
	f.leaves = append(f.leaves, l)
	return l
}

// rebuild recomputes the stored hashes from the leaves, as a server that
// rewrites its history would.
func (f *fakeLog) rebuild() {
	f.hashes = nil
	for i, l := range f.leaves {
		h, err := tlog.StoredHashes(int64(i), l.Bytes(), f.reader())
		if err != nil {
			f.t.Fatal(err)
		}
		f.hashes = append(f.hashes, h...)
	}
}

func (f *fakeLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(f.hashes)) {
				return nil, fmt.Errorf("no hash %d", x)
			}
			out[i] = f.hashes[x]
		}
		return out, nil
	})
}

func (f *fakeLog) treeSize() int64 {
	n := int64(len(f.leaves))
	if f.size != nil {
		n = f.size(n)
	}
	return n
}

func (f *fakeLog) Checkpoint(context.Context) ([]byte, error) {
	n := f.treeSize()
	root, err := tlog.TreeHash(n, f.reader())
	if err != nil {
		return nil, err
	}
	s := f.signer
	if f.signWith != nil {
		s = f.signWith
	}
	return note.Sign(&note.Note{Text: string(intakelog.Checkpoint{Origin: f.signer.Name(), Size: n, Root: root}.Body())}, s)
}

func (f *fakeLog) Consistency(_ context.Context, oldSize, newSize int64) ([]string, error) {
	p, err := tlog.ProveTree(newSize, oldSize, f.reader())
	if err != nil {
		return nil, &api.StatusError{Code: http.StatusBadRequest, Message: err.Error()}
	}
	f.consistencies++
	f.maxProof = max(f.maxProof, len(p))
	return intakelog.EncodeProof(p), nil
}

func (f *fakeLog) Inclusion(_ context.Context, index, size int64) ([]string, error) {
	p, err := tlog.ProveRecord(size, index, f.reader())
	if err != nil {
		return nil, &api.StatusError{Code: http.StatusBadRequest, Message: err.Error()}
	}
	if index == f.badProof && len(p) > 0 {
		p[0][0] ^= 1
	}
	f.inclusions++
	f.maxProof = max(f.maxProof, len(p))
	return intakelog.EncodeProof(p), nil
}

func (f *fakeLog) Leaves(_ context.Context, start, end int64) ([]api.LogLeaf, error) {
	var out []api.LogLeaf
	for i := start; i < end && i < int64(len(f.leaves)); i++ {
		l := f.leaves[i]
		out = append(out, api.LogLeaf{Index: i, ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date})
	}
	if f.leafPage != nil {
		out = f.leafPage(out)
	}
	f.leavesSent += len(out)
	return out, nil
}

func (f *fakeLog) Download(_ context.Context, id string) (io.ReadCloser, int64, string, error) {
	f.downloads++
	if id == f.failDownload {
		return nil, 0, "", io.ErrUnexpectedEOF
	}
	data, ok := f.data[id]
	if !ok {
		return nil, 0, "", &api.StatusError{Code: http.StatusNotFound, Message: "no such submission"}
	}
	sum := sha256.Sum256(data)
	header := hex.EncodeToString(sum[:])
	if f.body != nil {
		data = f.body(id, data)
	}
	if f.header != "" {
		header = f.header
	}
	return io.NopCloser(bytes.NewReader(data)), -1, header, nil
}

func (f *fakeLog) MarkCollected(_ context.Context, id string) error {
	if f.failMark {
		return io.ErrUnexpectedEOF
	}
	f.collected[id] = true
	return nil
}

func collector(f *fakeLog, dir string) *Collector {
	return &Collector{
		Server: f,
		Dir:    dir,
		LogKey: f.vkey,
		Retry:  retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 2},
		Sleep:  func(context.Context, time.Duration) error { return nil },
		Now:    func() time.Time { return time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC) },
	}
}

// checkBundle verifies what the reviewer will verify.
func checkBundle(t *testing.T, f *fakeLog, dir string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := intakelog.OpenCheckpoint([]byte(b.Checkpoint), f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if b.FromSize > 0 {
		from, err := intakelog.OpenCheckpoint([]byte(b.FromCheckpoint), f.vkey)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := intakelog.DecodeProof(b.Consistency)
		if err != nil {
			t.Fatal(err)
		}
		if err := intakelog.VerifyConsistency(from, cp, proof); err != nil {
			t.Fatalf("bundle consistency: %v", err)
		}
	}
	if int64(len(b.Leaves)) != cp.Size-b.FromSize || len(b.Submissions) != len(b.Leaves) {
		t.Fatalf("bundle from %d to %d has %d leaves and %d submissions", b.FromSize, cp.Size, len(b.Leaves), len(b.Submissions))
	}
	for i, l := range b.Leaves {
		if l.Index != b.FromSize+int64(i) {
			t.Errorf("leaf %d has index %d", i, l.Index)
		}
		proof, err := intakelog.DecodeProof(l.Proof)
		if err != nil {
			t.Fatal(err)
		}
		leaf := intakelog.Leaf{ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date}
		if err := intakelog.VerifyInclusion(cp, l.Index, leaf, proof); err != nil {
			t.Errorf("leaf %d: %v", l.Index, err)
		}
		e, ok := b.Lookup(l.ID)
		if !ok || e.Index != l.Index || e.SHA256 != l.SHA256 || e.Size != l.Size {
			t.Errorf("submission entry for leaf %d: %+v, %v", l.Index, e, ok)
		}
		got, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil || !bytes.Equal(got, f.data[l.ID]) {
			t.Errorf("%s: %v, equal=%v", e.File, err, bytes.Equal(got, f.data[l.ID]))
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".part") || strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("leftover %s", de.Name())
		}
	}
	return b
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	f := newLog(t)
	a, b := f.add(3000), f.add(70000)
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Downloaded != 2 || sum.Present != 0 || sum.From != 0 || sum.Size != 2 || len(sum.AckFailed) != 0 {
		t.Errorf("summary %+v", sum)
	}
	bd := checkBundle(t, f, dir)
	if bd.LogKey != f.vkey || bd.Created != "2026-11-28T09:00:00Z" || bd.FromCheckpoint != "" || len(bd.Consistency) != 0 {
		t.Errorf("bundle %+v", bd)
	}
	if !f.collected[a.ID] || !f.collected[b.ID] {
		t.Errorf("not marked collected: %v", f.collected)
	}
	if string(sum.Checkpoint) != bd.Checkpoint {
		t.Error("the summary's checkpoint is not the bundle's")
	}
}

// TestCollectIncremental: the second bundle starts where the first ended,
// proves the log only grew, and carries only the new submissions.
func TestCollectIncremental(t *testing.T) {
	f := newLog(t)
	for range 3 {
		f.add(100)
	}
	first, err := collector(f, t.TempDir()).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.add(200)
	f.add(300)
	dir := t.TempDir()
	c := collector(f, dir)
	c.From, c.FromCheckpoint, c.Store = first.Size, first.Checkpoint, intakelog.NewMemStore(first.Checkpoint)
	sum, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != 3 || sum.Size != 5 || sum.Downloaded != 2 {
		t.Errorf("summary %+v", sum)
	}
	b := checkBundle(t, f, dir)
	if b.FromCheckpoint != string(first.Checkpoint) || len(b.Consistency) == 0 {
		t.Errorf("second bundle does not continue the first: from %q, proof %v", b.FromCheckpoint, b.Consistency)
	}

	// Nothing new: an empty bundle that ends where it starts.
	dir = t.TempDir()
	c = collector(f, dir)
	c.From, c.FromCheckpoint, c.Store = sum.Size, sum.Checkpoint, intakelog.NewMemStore(sum.Checkpoint)
	empty, err := c.Run(context.Background())
	if err != nil || empty.Size != 5 || empty.Downloaded+empty.Present != 0 {
		t.Fatalf("empty collection = %+v, %v", empty, err)
	}
	checkBundle(t, f, dir)

	// From 0 again, with the witness: everything.
	dir = t.TempDir()
	c = collector(f, dir)
	c.Store = intakelog.NewMemStore(sum.Checkpoint)
	all, err := c.Run(context.Background())
	if err != nil || all.From != 0 || all.Downloaded != 5 {
		t.Fatalf("collection from 0 = %+v, %v", all, err)
	}
	checkBundle(t, f, dir)
}

// TestCollectReplacesBundle: collecting again into a directory that holds
// a bundle writes the next slice, and says which range it replaced.
func TestCollectReplacesBundle(t *testing.T) {
	f := newLog(t)
	f.add(100)
	f.add(100)
	dir := t.TempDir()
	first, err := collector(f, dir).Run(context.Background())
	if err != nil || first.Replaced != nil {
		t.Fatalf("first Run = %+v, %v", first, err)
	}
	f.add(100)
	c := collector(f, dir)
	c.From, c.FromCheckpoint, c.Store = first.Size, first.Checkpoint, intakelog.NewMemStore(first.Checkpoint)
	sum, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != 2 || sum.Downloaded != 1 || f.downloads != 3 {
		t.Errorf("summary %+v, downloads %d", sum, f.downloads)
	}
	if sum.Replaced == nil || *sum.Replaced != (Range{0, 2}) {
		t.Errorf("Replaced = %+v, want 0 to 2", sum.Replaced)
	}
	b := checkBundle(t, f, dir)
	if len(b.Submissions) != 1 {
		t.Errorf("bundle lists %d submissions, want 1", len(b.Submissions))
	}
	// The same slice again replaces nothing worth a word.
	again, err := c.Run(context.Background())
	if err != nil || again.Replaced != nil || again.Present != 1 {
		t.Errorf("same slice again = %+v, %v", again, err)
	}
}

// TestCollectInterrupted: a download fails; no bundle.json is written, and
// the next run downloads only what is missing.
func TestCollectInterrupted(t *testing.T) {
	dir := t.TempDir()
	f := newLog(t)
	f.add(100)
	second := f.add(100)
	f.failDownload = second.ID
	if _, err := collector(f, dir).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "could not be downloaded") {
		t.Fatalf("Run with a failing download = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, bundle.FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("bundle.json written although a ciphertext is missing: %v", err)
	}
	if len(f.collected) != 0 {
		t.Error("submissions marked collected before the bundle was written")
	}
	f.failDownload = ""
	f.downloads = 0
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Present != 1 || sum.Downloaded != 1 || f.downloads != 1 {
		t.Errorf("second run: summary %+v, downloads %d", sum, f.downloads)
	}
	checkBundle(t, f, dir)
}

func TestCollectAckFails(t *testing.T) {
	dir := t.TempDir()
	f := newLog(t)
	l := f.add(100)
	f.failMark = true
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sum.AckFailed[l.ID]; !ok || len(sum.AckFailed) != 1 {
		t.Errorf("AckFailed = %v", sum.AckFailed)
	}
	checkBundle(t, f, dir)
}

func TestCollectReplacesDamagedFile(t *testing.T) {
	dir := t.TempDir()
	f := newLog(t)
	l := f.add(100)
	if err := os.WriteFile(filepath.Join(dir, l.ID+".age"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil || sum.Downloaded != 1 {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	checkBundle(t, f, dir)
}

// TestCollectRefusesLies: every way a server can lie about its log or the
// ciphertexts is refused, with the specific error, and no bundle.json.
func TestCollectRefusesLies(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup runs after a first bundle of 3 entries was collected and 2
		// more entries were added; incremental says whether the second
		// collection continues from the first.
		setup       func(f *fakeLog)
		incremental bool
		want        error
		msg         string
	}{
		{"checkpoint signed by another key", func(f *fakeLog) {
			other := newLog(f.t)
			f.signWith = other.signer
		}, true, intakelog.ErrUnknownKey, "newest checkpoint"},
		{"history rewritten", func(f *fakeLog) {
			f.leaves[1].Size++
			f.rebuild()
		}, true, intakelog.ErrInconsistent, "size 3"},
		{"forked at the same size", func(f *fakeLog) {
			f.leaves = f.leaves[:3]
			f.leaves[0].Date = "2026-11-26"
			f.rebuild()
		}, true, intakelog.ErrFork, ""},
		{"rolled back", func(f *fakeLog) {
			f.size = func(int64) int64 { return 2 }
		}, true, intakelog.ErrRollback, "already bundled up to size 3"},
		{"rolled back behind the witness", func(f *fakeLog) {
			f.size = func(int64) int64 { return 2 }
		}, false, intakelog.ErrRollback, "bundled before"},
		{"rewritten behind the witness", func(f *fakeLog) {
			f.leaves[0].Size++
			f.rebuild()
		}, false, intakelog.ErrInconsistent, ""},
		{"bad inclusion proof", func(f *fakeLog) { f.badProof = 4 }, true, intakelog.ErrInclusion, "leaf 4"},
		{"leaf altered", func(f *fakeLog) {
			f.leafPage = func(p []api.LogLeaf) []api.LogLeaf { p[0].Size++; return p }
		}, true, intakelog.ErrInclusion, "leaf 3"},
		{"leaf missing", func(f *fakeLog) {
			f.leafPage = func(p []api.LogLeaf) []api.LogLeaf { return p[1:] }
		}, true, ErrLog, "got 1"},
		{"leaves out of order", func(f *fakeLog) {
			f.leafPage = func(p []api.LogLeaf) []api.LogLeaf { p[0], p[1] = p[1], p[0]; return p }
		}, true, ErrLog, "asked for log leaf 3, got leaf 4"},
		{"malformed leaf", func(f *fakeLog) {
			f.leafPage = func(p []api.LogLeaf) []api.LogLeaf { p[0].ID = "../../etc/passwd"; return p }
		}, true, ErrLog, "malformed"},
		{"same submission twice", func(f *fakeLog) {
			f.leaves[4].ID = f.leaves[3].ID
			f.rebuild()
		}, false, ErrLog, "both name submission"},
		{"ciphertext swapped", func(f *fakeLog) {
			f.body = func(_ string, d []byte) []byte { return bytes.Repeat([]byte{1}, len(d)) }
		}, true, ErrMismatch, "sha256"},
		{"ciphertext with extra bytes", func(f *fakeLog) {
			f.body = func(_ string, d []byte) []byte { return append(bytes.Clone(d), 0) }
		}, true, ErrMismatch, "received"},
		{"ciphertext short", func(f *fakeLog) {
			f.body = func(_ string, d []byte) []byte { return d[:10] }
		}, true, ErrMismatch, "received 10 bytes"},
		{"header", func(f *fakeLog) { f.header = strings.Repeat("0", 64) }, true, ErrMismatch, "Ciphertext-SHA256"},
		{"ciphertext withheld", func(f *fakeLog) { delete(f.data, f.leaves[4].ID) }, true, nil, "could not be downloaded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newLog(t)
			for range 3 {
				f.add(100)
			}
			first, err := collector(f, t.TempDir()).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.add(100)
			f.add(100)
			tt.setup(f)
			f.downloads = 0
			dir := t.TempDir()
			c := collector(f, dir)
			c.Store = intakelog.NewMemStore(first.Checkpoint)
			if tt.incremental {
				c.From, c.FromCheckpoint = first.Size, first.Checkpoint
			}
			_, err = c.Run(context.Background())
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Run = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
			if _, err := os.Stat(filepath.Join(dir, bundle.FileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("bundle.json written for a lying server: %v", err)
			}
			if errors.Is(err, ErrMismatch) && f.downloads > 1 {
				t.Errorf("a mismatching download was retried (%d downloads)", f.downloads)
			}
			des, _ := os.ReadDir(dir)
			for _, de := range des {
				if strings.HasSuffix(de.Name(), ".part") {
					t.Errorf("leftover %s", de.Name())
				}
			}
		})
	}
}

func TestCollectOtherKey(t *testing.T) {
	dir := t.TempDir()
	other := newLog(t)
	other.add(10)
	if _, err := collector(other, dir).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := newLog(t)
	f.add(10)
	if _, err := collector(f, dir).Run(context.Background()); !errors.Is(err, ErrOtherKey) {
		t.Errorf("Run = %v, want ErrOtherKey", err)
	}
	if f.downloads != 0 {
		t.Error("downloaded into another log's bundle")
	}
}

func TestState(t *testing.T) {
	f := newLog(t)
	name := filepath.Join(t.TempDir(), "h_443.json")
	s, err := LoadState(name, f.vkey)
	if err != nil || len(s.Checkpoints) != 0 {
		t.Fatalf("LoadState of a missing file = %+v, %v", s, err)
	}
	if raw, size, err := s.Last(); raw != nil || size != 0 || err != nil {
		t.Errorf("Last of an empty state = %q, %d, %v", raw, size, err)
	}
	var cps [][]byte
	for range 3 {
		f.add(10)
		cp, _ := f.Checkpoint(context.Background())
		cps = append(cps, cp)
		s.Record(cp)
		s.Record(cp) // recording the same checkpoint twice keeps one
	}
	if err := s.Save(name); err != nil {
		t.Fatal(err)
	}
	s, err = LoadState(name, f.vkey)
	if err != nil || len(s.Checkpoints) != 3 {
		t.Fatalf("LoadState = %+v, %v", s, err)
	}
	if raw, size, err := s.Last(); !bytes.Equal(raw, cps[2]) || size != 3 || err != nil {
		t.Errorf("Last = %q, %d, %v", raw, size, err)
	}
	if got := s.Find(2); !bytes.Equal(got, cps[1]) {
		t.Errorf("Find(2) = %q", got)
	}
	if got := s.Find(7); got != nil {
		t.Errorf("Find(7) = %q, want nil", got)
	}
	if got := strings.Join(s.Sizes(), ","); got != "1,2,3" {
		t.Errorf("Sizes = %s", got)
	}
	if _, err := LoadState(name, newLog(t).vkey); err == nil {
		t.Error("LoadState accepted a state of another log key")
	}
	os.WriteFile(name, []byte(`{"version":1,"log_key":"x","checkpoints":[],"extra":1}`), 0o600)
	if _, err := LoadState(name, "x"); err == nil {
		t.Error("LoadState accepted an unknown field")
	}
	for range MaxStateCheckpoints + 5 {
		s.Record([]byte(fmt.Sprint(len(s.Checkpoints))))
	}
	if len(s.Checkpoints) != MaxStateCheckpoints {
		t.Errorf("state keeps %d checkpoints, want at most %d", len(s.Checkpoints), MaxStateCheckpoints)
	}
}

// TestCollectEmptyLog: a log with no entries yet makes a valid, empty
// bundle, and a later one continues from it.
func TestCollectEmptyLog(t *testing.T) {
	f := newLog(t)
	dir := t.TempDir()
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil || sum.Size != 0 || sum.Downloaded+sum.Present != 0 {
		t.Fatalf("Run on an empty log = %+v, %v", sum, err)
	}
	checkBundle(t, f, dir)
	f.add(10)
	c := collector(f, t.TempDir())
	c.Store = intakelog.NewMemStore(sum.Checkpoint)
	next, err := c.Run(context.Background())
	if err != nil || next.Size != 1 || next.Downloaded != 1 {
		t.Fatalf("Run after the first entry = %+v, %v", next, err)
	}
}

// addAs appends a new submission under an id that may be in use already,
// as a server holding the log key can.
func (f *fakeLog) addAs(id string, size int) intakelog.Leaf {
	l := f.add(size)
	f.data[id] = f.data[l.ID]
	delete(f.data, l.ID)
	f.leaves[len(f.leaves)-1].ID = id
	l.ID = id
	f.rebuild()
	return l
}

// TestCollectRefusesReusedID: a leaf naming a submission id this device
// collected in an earlier bundle is refused before anything is written,
// however valid its proofs; a re-collection of the same leaves is not.
func TestCollectRefusesReusedID(t *testing.T) {
	f := newLog(t)
	first := f.add(100)
	f.add(100)
	state := &State{Version: StateVersion, LogKey: f.vkey, Checkpoints: []string{}}
	c := collector(f, t.TempDir())
	c.Seen = state
	sum, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	state.Record(sum.Checkpoint)
	// Saved and loaded again, as the next run of the command does.
	name := filepath.Join(t.TempDir(), "h_443.json")
	if err := state.Save(name); err != nil {
		t.Fatal(err)
	}
	if state, err = LoadState(name, f.vkey); err != nil {
		t.Fatal(err)
	}
	if at, ok := state.SeenAt(first.ID); !ok || at != 0 {
		t.Fatalf("SeenAt(first) = %d, %v", at, ok)
	}

	firstData := f.data[first.ID]
	f.addAs(first.ID, 200)
	dir := t.TempDir()
	c = collector(f, dir)
	c.From, c.FromCheckpoint, c.Store, c.Seen = sum.Size, sum.Checkpoint, intakelog.NewMemStore(sum.Checkpoint), state
	_, err = c.Run(context.Background())
	if !errors.Is(err, ErrLog) || !errors.Is(err, ErrReusedID) {
		t.Fatalf("Run = %v, want ErrReusedID", err)
	}
	want := fmt.Sprintf("log leaf 2 names submission %s, which this device collected before from log leaf 0", first.ID)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("the bundle directory holds %d entries", len(des))
	}

	// Collecting the first leaves again (-since 0) is no reuse.
	c = collector(f, t.TempDir())
	f.leaves, f.data[first.ID] = f.leaves[:2], firstData
	f.rebuild()
	c.Seen = state
	if _, err := c.Run(context.Background()); err != nil {
		t.Errorf("collecting the same leaves again: %v", err)
	}

	// Within one bundle, too.
	g := newLog(t)
	a := g.add(10)
	g.addAs(a.ID, 20)
	if _, err := collector(g, t.TempDir()).Run(context.Background()); !errors.Is(err, ErrReusedID) {
		t.Errorf("two leaves under one id: %v, want ErrReusedID", err)
	}
}

func TestStateSeen(t *testing.T) {
	f := newLog(t)
	s := &State{Version: StateVersion, LogKey: f.vkey, Checkpoints: []string{}}
	var leaves []bundle.Leaf
	for i := range MaxSeenIDs + 3 {
		leaves = append(leaves, bundle.Leaf{Index: int64(i), ID: fmt.Sprintf("%032x", i)})
	}
	s.AddSeen(leaves[:2])
	s.AddSeen(leaves[:2]) // again: kept once
	if raw, _ := base64.StdEncoding.DecodeString(s.Seen); len(raw) != 2*seenRecordSize {
		n := len(raw)
		t.Errorf("two ids take %d bytes, want %d", n, 2*seenRecordSize)
	}
	s.AddSeen(leaves[2:])
	if _, ok := s.SeenAt(leaves[0].ID); ok {
		t.Error("the oldest id is still remembered beyond MaxSeenIDs")
	}
	if at, ok := s.SeenAt(leaves[len(leaves)-1].ID); !ok || at != int64(len(leaves)-1) {
		t.Errorf("SeenAt(newest) = %d, %v", at, ok)
	}
	name := filepath.Join(t.TempDir(), "h_443.json")
	if err := s.Save(name); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Size() > maxStateFile {
		t.Fatalf("a full state file: %v, %v", fi, err)
	}
	if _, err := LoadState(name, f.vkey); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"!!", "AAAA", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, seenRecordSize))} {
		os.WriteFile(name, []byte(`{"version":1,"log_key":"`+f.vkey+`","checkpoints":[],"seen":"`+bad+`"}`), 0o600)
		if _, err := LoadState(name, f.vkey); err == nil {
			t.Errorf("LoadState accepted seen %q", bad)
		}
	}
}

// TestCollectRefusesForeignDir: a directory without bundle.json is used
// only if it holds nothing or what an interrupted collection left; a USB
// stick's root with other files is refused before anything is downloaded
// or written.
func TestCollectRefusesForeignDir(t *testing.T) {
	f := newLog(t)
	l := f.add(100)
	for _, tc := range []struct {
		name  string
		files []string
		msg   string // "" if accepted
	}{
		{name: "empty"},
		{name: "left by an interrupted collection", files: []string{l.ID + ".age", fmt.Sprintf("%032x.age.part", 7), ".bundle.json-123.tmp"}},
		{name: "plaintext", files: []string{"interview.m4a"}, msg: "has no bundle.json but holds interview.m4a"},
		{name: "many", files: []string{"a.txt", "b.txt", "c.txt", "d.txt", l.ID + ".age"}, msg: "has no bundle.json but holds a.txt, b.txt, c.txt and 1 more"},
		{name: "not an id", files: []string{"notes.age"}, msg: "holds notes.age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f.downloads = 0
			_, err := collector(f, dir).Run(context.Background())
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bundle.Read(dir); err != nil {
					t.Error(err)
				}
				return
			}
			if !errors.Is(err, ErrNotBundleDir) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Run = %v, want ErrNotBundleDir saying %q", err, tc.msg)
			}
			if des, _ := os.ReadDir(dir); len(des) != len(tc.files) || f.downloads != 0 {
				t.Errorf("%d entries in the directory, %d downloads", len(des), f.downloads)
			}
		})
	}
	// A subdirectory is not ours either.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, l.ID+".age"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := collector(f, dir).Run(context.Background()); !errors.Is(err, ErrNotBundleDir) {
		t.Errorf("a directory named like a ciphertext: %v", err)
	}
}

// TestCollectStoresVerifiedCheckpoint: a Run that verified everything
// stores its checkpoint as the newest verified one; a lying server leaves
// the store as it was.
func TestCollectStoresVerifiedCheckpoint(t *testing.T) {
	f := newLog(t)
	f.add(100)
	f.add(100)
	store := intakelog.NewMemStore(nil)
	c := collector(f, t.TempDir())
	c.Store = store
	sum, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Latest(); !bytes.Equal(got, sum.Checkpoint) {
		t.Fatalf("store holds %q, want the bundle's checkpoint", got)
	}
	f.add(100)
	f.badProof = 2
	c = collector(f, t.TempDir())
	c.Store = store
	if _, err := c.Run(context.Background()); !errors.Is(err, intakelog.ErrInclusion) {
		t.Fatalf("Run with a bad proof = %v", err)
	}
	if got, _ := store.Latest(); !bytes.Equal(got, sum.Checkpoint) {
		t.Error("a lying server moved the stored checkpoint")
	}
}

// TestCollectTransfersOnlyNew: after 9,900 collected submissions (99,000
// with TESTIMONY_SCALE set), a collect of 100 new ones (1,000) asks for
// exactly the new leaves and ciphertexts, and proofs of at most 2·log2(n)
// hashes: what it transfers grows with what is new, not with the log.
func TestCollectTransfersOnlyNew(t *testing.T) {
	old, new := 9_900, 100
	if os.Getenv("TESTIMONY_SCALE") != "" {
		old, new = 99_000, 1_000
	}
	f := newLog(t)
	for range old {
		f.append(1)
	}
	f.rebuild()
	// The old ones went in earlier bundles, which ended at this checkpoint.
	oldCp, err := f.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range new {
		f.append(1)
	}
	f.rebuild()
	c := collector(f, t.TempDir())
	c.From, c.FromCheckpoint, c.Store = int64(old), oldCp, intakelog.NewMemStore(oldCp)
	sum, err := c.Run(context.Background())
	if err != nil || sum.Downloaded != new {
		t.Fatalf("second collect = %+v, %v", sum, err)
	}
	log2n := bits.Len(uint(old + new - 1)) // ceil(log2(n))
	if f.leavesSent != new || f.downloads != new || f.inclusions > new || f.maxProof > 2*log2n {
		t.Errorf("collecting %d new after %d: %d leaves, %d downloads, %d inclusion proofs, %d consistency proofs, longest proof %d hashes",
			new, old, f.leavesSent, f.downloads, f.inclusions, f.consistencies, f.maxProof)
	}
	t.Logf("%d leaves, %d downloads, %d inclusion proofs, %d consistency proofs, longest proof %d hashes",
		f.leavesSent, f.downloads, f.inclusions, f.consistencies, f.maxProof)
}
