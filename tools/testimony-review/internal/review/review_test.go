package review

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

func id(n int) string { return fmt.Sprintf("%032x", n) }

// env is a reviewer's machine and the server's log it witnesses.
type env struct {
	t     *testing.T
	log   *fixture.Log
	id    *age.X25519Identity
	tmp   string
	out   string
	next  int
	w     Witness
	warns []string
}

func newEnv(t *testing.T) *env {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	_, key := fixture.LogKey()
	dir := t.TempDir()
	return &env{
		t: t, log: fixture.NewLog(), id: k, tmp: dir, out: filepath.Join(dir, "out"),
		w: Witness{LogKey: key, Opened: map[string]SeenLeaf{}},
	}
}

// files writes the files of a submission and returns their paths.
func (e *env) files(files map[string]string) []string {
	e.t.Helper()
	src := e.t.TempDir()
	var paths []string
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			e.t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// add logs a new submission of plaintext in l and returns its id.
func (e *env) add(l *fixture.Log, pt fixture.Plaintext) string {
	e.t.Helper()
	ct, err := fixture.Encrypt([]age.Recipient{e.id.Recipient()}, pt, false)
	if err != nil {
		e.t.Fatal(err)
	}
	e.next++
	l.Append(id(e.next), ct)
	return id(e.next)
}

// reuse logs a new submission of plaintext in e.log under an id already
// used, as a server that holds the log key can.
func (e *env) reuse(id string, pt fixture.Plaintext) int64 {
	e.t.Helper()
	ct, err := fixture.Encrypt([]age.Recipient{e.id.Recipient()}, pt, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.log.Append(id, ct)
}

// reuseIn logs another submission in l under an id already used.
func (e *env) reuseIn(l *fixture.Log, id string) int64 {
	e.t.Helper()
	ct, err := fixture.Encrypt([]age.Recipient{e.id.Recipient()}, fixture.Tar(fixture.Entry{Name: "other.txt", Body: "another testimony"}), false)
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Append(id, ct)
}

// submit logs an envelope of files signed by signer (nil: unsigned).
func (e *env) submit(signer ed25519.PrivateKey, files map[string]string) string {
	e.t.Helper()
	return e.add(e.log, fixture.Envelope(envelope.Meta{Case: fmt.Sprintf("NK-%d", e.next+1), Language: "ko"}, signer, e.files(files)...))
}

// submitN logs n small unsigned submissions.
func (e *env) submitN(n int) []string {
	var ids []string
	for range n {
		ids = append(ids, e.submit(nil, map[string]string{"a.txt": "alpha"}))
	}
	return ids
}

// bundle writes the bundle of l's part [from, to) into a new directory.
func (e *env) bundle(l *fixture.Log, from, to int64, opt fixture.BundleOptions) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.tmp, "bundle-")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := l.WriteBundle(dir, from, to, opt); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func (e *env) options() Options {
	return Options{
		Identities: []age.Identity{e.id},
		Limits:     envelope.DefaultLimits,
		Now:        time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
		Tool:       "testimony-review test",
		Warnf:      func(f string, a ...any) { e.warns = append(e.warns, fmt.Sprintf(f, a...)) },
	}
}

// open verifies and opens a bundle and records it in the witness state as
// the command does.
func (e *env) open(dir string, opt Options) []Result {
	e.t.Helper()
	v, err := Verify(dir, e.w)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := Open(v, e.out, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	e.w.Checkpoint = v.CheckpointNote
	for _, r := range res {
		if r.Status == Opened {
			e.w.Opened[r.ID] = e.seen(r.Index)
		}
	}
	return res
}

// seen is the witness record of e.log's leaf at index.
func (e *env) seen(index int64) SeenLeaf {
	return SeenLeaf{Index: index, Hash: LeafHash(e.log.Leaf(index))}
}

// ls lists a directory, hidden entries included.
func ls(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpen(t *testing.T) {
	e := newEnv(t)
	e.submit(nil, map[string]string{"a.txt": "alpha", "b.txt": "bravo!"})
	e.add(e.log, fixture.Tar(fixture.Entry{Name: "notes.txt", Body: "plain tar"}))
	res := e.open(e.bundle(e.log, 0, 2, fixture.BundleOptions{}), e.options())
	if len(res) != 2 {
		t.Fatalf("got %d results", len(res))
	}
	r := res[0]
	if r.Status != Opened || r.Err != nil || r.Case != "NK-1" || !r.Manifest || r.Files != 2 || r.Size != 11 || r.Index != 0 || r.Signer.Status != Unsigned {
		t.Fatalf("result %+v", r)
	}
	if r := res[1]; r.Status != Opened || r.Manifest || r.Index != 1 {
		t.Fatalf("result %+v", r)
	}
	dst := filepath.Join(e.out, id(1))
	if got, want := ls(t, dst), []string{"a.txt", "b.txt", CustodyJSONName, CustodyTextName, "manifest.json"}; !slices.Equal(got, want) {
		t.Errorf("opened directory holds %v, want %v", got, want)
	}
	if got, want := ls(t, filepath.Join(e.out, id(2))), []string{CustodyJSONName, CustodyTextName, "notes.txt"}; !slices.Equal(got, want) {
		t.Errorf("opened directory holds %v, want %v", got, want)
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(1), id(2)}) {
		t.Errorf("output directory holds %v", got)
	}
	for _, p := range []string{e.out, dst} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", p, fi.Mode().Perm(), err)
		}
	}

	// The next bundle continues from the stored checkpoint.
	e.submitN(1)
	res = e.open(e.bundle(e.log, 2, 3, fixture.BundleOptions{}), e.options())
	if len(res) != 1 || res[0].Status != Opened || res[0].Index != 2 {
		t.Fatalf("second bundle: %+v", res)
	}
}

// TestAttacks refuses each attack on the log or the bundle with its own
// reason and message, before anything is decrypted.
func TestAttacks(t *testing.T) {
	other, _ := fixture.OtherLogKey()
	for _, tc := range []struct {
		name string
		// attack prepares the witness and returns the bundle to verify.
		attack func(e *env) string
		reason error
		msg    string // a regular expression for the whole message
	}{
		{
			name: "submission dropped",
			attack: func(e *env) string {
				ids := e.submitN(3)
				dir := e.bundle(e.log, 0, 3, fixture.BundleOptions{})
				must(t, fixture.DropSubmission(dir, ids[1]))
				return dir
			},
			reason: ErrDropped,
			msg:    `^bundle refused: submission dropped: leaf 1 \(id 0+2\) is in the log but not in the bundle, and was not opened on this machine before$`,
		},
		{
			name: "leaf dropped from bundle.json",
			attack: func(e *env) string {
				e.submitN(3)
				dir := e.bundle(e.log, 0, 3, fixture.BundleOptions{})
				must(t, fixture.DropLeaf(dir, 2))
				return dir
			},
			reason: ErrDropped,
			msg:    `^bundle refused: submission dropped: leaf 2 is in the log \(size 3\) but the bundle does not list it$`,
		},
		{
			name: "ciphertext file missing",
			attack: func(e *env) string {
				ids := e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, os.Remove(filepath.Join(dir, bundle.CiphertextName(ids[0]))))
				return dir
			},
			reason: ErrDropped,
			msg:    `^bundle refused: submission dropped: leaf 0 \(id 0+1\) is in the log and in bundle.json, but its ciphertext 0+1\.age is not in the bundle$`,
		},
		{
			name: "ciphertexts swapped",
			attack: func(e *env) string {
				ids := e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.SwapCiphertexts(dir, ids[0], ids[1]))
				return dir
			},
			reason: ErrAltered,
			msg:    `^bundle refused: ciphertext swapped or altered: ciphertext of 0+1 does not match its log leaf 0: 0+1\.age has sha256 [0-9a-f]{64} \(\d+ bytes\), the leaf says [0-9a-f]{64} \(\d+ bytes\)$`,
		},
		{
			name: "ciphertext altered",
			attack: func(e *env) string {
				ids := e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.AlterCiphertext(dir, ids[1]))
				return dir
			},
			reason: ErrAltered,
			msg:    `^bundle refused: ciphertext swapped or altered: ciphertext of 0+2 does not match its log leaf 1: 0+2\.age has sha256 `,
		},
		{
			name: "ciphertext replaced and bundle.json edited to match",
			attack: func(e *env) string {
				ids := e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.ReplaceCiphertext(dir, ids[0], []byte("age-encryption.org/v1\nforged")))
				return dir
			},
			reason: ErrAltered,
			msg:    `^bundle refused: ciphertext swapped or altered: ciphertext of 0+1 does not match its log leaf 0: bundle.json says sha256 [0-9a-f]{64} \(28 bytes\), the leaf says`,
		},
		{
			name: "history rewritten",
			attack: func(e *env) string {
				e.submitN(3)
				e.open(e.bundle(e.log, 0, 3, fixture.BundleOptions{}), e.options())
				// The server rewrites leaf 2 and shows the reviewer's own
				// checkpoint as the start of the next bundle.
				evil := e.log.Fork(2)
				e.add(evil, fixture.Tar(fixture.Entry{Name: "forged.txt", Body: "x"}))
				e.add(evil, fixture.Tar(fixture.Entry{Name: "next.txt", Body: "y"}))
				dir := e.bundle(evil, 3, 4, fixture.BundleOptions{})
				must(t, fixture.SetFromCheckpoint(dir, e.log.SignedCheckpoint(3, nil)))
				return dir
			},
			reason: ErrRewritten,
			msg:    `^bundle refused: history rewritten: the consistency proof from log size 3 to 4 does not verify: the log at size 4 does not extend the one at size 3$`,
		},
		{
			name: "forked history",
			attack: func(e *env) string {
				e.submitN(3)
				e.open(e.bundle(e.log, 0, 3, fixture.BundleOptions{}), e.options())
				evil := e.log.Fork(2)
				e.add(evil, fixture.Tar(fixture.Entry{Name: "forged.txt", Body: "x"}))
				e.add(evil, fixture.Tar(fixture.Entry{Name: "next.txt", Body: "y"}))
				return e.bundle(evil, 3, 4, fixture.BundleOptions{})
			},
			reason: ErrForked,
			msg:    `^bundle refused: forked history: the bundle continues from a checkpoint of size 3 with root \S+, but the checkpoint of that size verified on this machine has root \S+$`,
		},
		{
			name: "forked history at the same size",
			attack: func(e *env) string {
				e.submitN(3)
				e.open(e.bundle(e.log, 0, 3, fixture.BundleOptions{}), e.options())
				evil := e.log.Fork(2)
				e.add(evil, fixture.Tar(fixture.Entry{Name: "forged.txt", Body: "x"}))
				return e.bundle(evil, 0, 3, fixture.BundleOptions{})
			},
			reason: ErrForked,
			msg:    `^bundle refused: forked history: the bundle's checkpoint of size 3 has root \S+, but the checkpoint of size 3 verified on this machine has root \S+$`,
		},
		{
			name: "checkpoint signed by an unknown key",
			attack: func(e *env) string {
				e.submitN(2)
				return e.bundle(e.log, 0, 2, fixture.BundleOptions{Signer: other})
			},
			reason: ErrForeignKey,
			msg:    `^bundle refused: checkpoint signed by an unknown key: the bundle's checkpoint is signed by "testimony-log-fixture" \(key hash [0-9a-f]{8}\), not by the pinned log key "testimony-log-fixture" \(key hash [0-9a-f]{8}\)$`,
		},
		{
			name: "checkpoint altered after signing",
			attack: func(e *env) string {
				e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.Edit(dir, func(b *bundle.Bundle) error {
					b.Checkpoint = strings.Replace(b.Checkpoint, "\n2\n", "\n1\n", 1)
					return nil
				}))
				return dir
			},
			reason: ErrBadCheckpoint,
			msg:    `^bundle refused: checkpoint signature is invalid: the bundle's checkpoint names the pinned log key "testimony-log-fixture" but its signature does not verify: it was altered after signing$`,
		},
		{
			name: "bundle replayed out of order",
			attack: func(e *env) string {
				e.submitN(2)
				b1 := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				e.open(b1, e.options())
				e.submitN(2)
				e.open(e.bundle(e.log, 2, 4, fixture.BundleOptions{}), e.options())
				return b1
			},
			reason: ErrReplayed,
			msg:    `^bundle refused: bundle replayed out of order: it starts at log size 0 and ends at 2, but this machine has already verified the log up to size 4$`,
		},
		{
			name: "bundle missing",
			attack: func(e *env) string {
				e.submitN(2)
				e.open(e.bundle(e.log, 0, 2, fixture.BundleOptions{}), e.options())
				e.submitN(3)
				e.bundle(e.log, 2, 4, fixture.BundleOptions{}) // never opened
				return e.bundle(e.log, 4, 5, fixture.BundleOptions{})
			},
			reason: ErrMissing,
			msg:    `^bundle refused: bundle missing: this bundle starts at log size 4, but this machine has verified the log only up to size 2: a bundle covering 2 to 4 is missing$`,
		},
		{
			name: "first bundle missing",
			attack: func(e *env) string {
				e.submitN(3)
				return e.bundle(e.log, 2, 3, fixture.BundleOptions{})
			},
			reason: ErrMissing,
			msg:    `^bundle refused: bundle missing: this bundle starts at log size 2, but this machine has verified the log only up to size 0: a bundle covering 0 to 2 is missing$`,
		},
		{
			name: "inclusion proof fails",
			attack: func(e *env) string {
				e.submitN(3)
				dir := e.bundle(e.log, 0, 3, fixture.BundleOptions{})
				must(t, fixture.AlterProof(dir, 1))
				return dir
			},
			reason: ErrInclusion,
			msg:    `^bundle refused: inclusion proof failed: leaf 1 \(id 0+2\) is not in the log at the bundle's checkpoint of size 3: the leaf or its proof was altered$`,
		},
		{
			name: "leaf altered with its ciphertext",
			attack: func(e *env) string {
				ids := e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				forged := []byte("age-encryption.org/v1\nforged")
				must(t, fixture.ReplaceCiphertext(dir, ids[1], forged))
				must(t, fixture.Edit(dir, func(b *bundle.Bundle) error {
					b.Leaves[1].SHA256, b.Leaves[1].Size = b.Submissions[1].SHA256, b.Submissions[1].Size
					return nil
				}))
				return dir
			},
			reason: ErrInclusion,
			msg:    `^bundle refused: inclusion proof failed: leaf 1 \(id 0+2\)`,
		},
		{
			name: "submission not in the log",
			attack: func(e *env) string {
				e.submitN(2)
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.Edit(dir, func(b *bundle.Bundle) error {
					b.Submissions[0].Index = 1
					return nil
				}))
				return dir
			},
			reason: ErrUnlogged,
			msg:    `^bundle refused: submission not in the log: submission 0+1 claims log leaf 1, which is submission 0+2$`,
		},
		{
			name: "submission id reused",
			attack: func(e *env) string {
				ids := e.submitN(2)
				e.open(e.bundle(e.log, 0, 2, fixture.BundleOptions{}), e.options())
				// The server logs a genuine new testimony under the id of
				// one the reviewer opened: a new leaf, every proof holds.
				e.reuse(ids[0], fixture.Tar(fixture.Entry{Name: "second.txt", Body: "second testimony"}))
				return e.bundle(e.log, 2, 3, fixture.BundleOptions{})
			},
			reason: ErrReused,
			msg:    `^bundle refused: submission id reused: leaf 2 \(id 0+1\) reuses the id of the submission opened from leaf 0 on this machine: a second submission logged under that id would be skipped as already open$`,
		},
		{
			name: "id of a submission that failed to open reused",
			attack: func(e *env) string {
				ids := e.submitN(2)
				e.open(e.bundle(e.log, 0, 2, fixture.BundleOptions{}), e.options())
				delete(e.w.Opened, ids[1])
				e.w.Failed = map[string]SeenLeaf{ids[1]: e.seen(1)}
				e.reuse(ids[1], fixture.Tar(fixture.Entry{Name: "second.txt", Body: "second testimony"}))
				return e.bundle(e.log, 2, 3, fixture.BundleOptions{})
			},
			reason: ErrReused,
			msg:    `^bundle refused: submission id reused: leaf 2 \(id 0+2\) reuses the id of the submission that failed to open from leaf 1 on this machine: a second submission logged under that id would be taken for it$`,
		},
		{
			name: "id of a submission that failed to open, at its index of another log",
			attack: func(e *env) string {
				// The failed one was at leaf 1 of the old log; after "log
				// trust -replace", the new log holds another submission
				// under its id at that index.
				ids := e.submitN(2)
				old := fixture.NewLog()
				old.Append(ids[0], []byte("old ciphertext 0"))
				old.Append(ids[1], []byte("old ciphertext 1"))
				e.w.Failed = map[string]SeenLeaf{ids[1]: {Index: 1, Hash: LeafHash(old.Leaf(1))}}
				return e.bundle(e.log, 0, 2, fixture.BundleOptions{})
			},
			reason: ErrReused,
			msg:    `^bundle refused: submission id reused: leaf 1 \(id 0+2\) has leaf hash \S+, but the submission that failed to open under that id from leaf 1 on this machine has leaf hash \S+: a second submission logged under that id would be taken for it, and the one that failed forgotten$`,
		},
		{
			name: "id of an opened submission, at its index in a fork, left out",
			attack: func(e *env) string {
				ids := e.submitN(2)
				fork := e.log.Fork(1)
				e.w.Opened[ids[1]] = e.seen(1)
				e.reuseIn(fork, ids[1])
				dir := e.bundle(fork, 0, 2, fixture.BundleOptions{})
				must(t, fixture.DropSubmission(dir, ids[1]))
				return dir
			},
			reason: ErrReused,
			msg:    `^bundle refused: submission id reused: leaf 1 \(id 0+2\) has leaf hash \S+, but the submission opened under that id from leaf 1 on this machine has leaf hash \S+: a second submission logged under that id would be skipped as already open$`,
		},
		{
			name: "left out, opened here per a record without leaf hash",
			attack: func(e *env) string {
				ids := e.submitN(2)
				e.w.Opened[ids[1]] = SeenLeaf{Index: 1}
				dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				must(t, fixture.DropSubmission(dir, ids[1]))
				return dir
			},
			reason: ErrDropped,
			msg:    `^bundle refused: submission dropped: leaf 1 \(id 0+2\) is in the log but not in the bundle; this machine opened a submission under that id from leaf 1, but recorded it before leaf hashes were kept, so it cannot tell that leaf from another logged under the same id: only a bundle that delivers it can be checked$`,
		},
		{
			name: "two leaves share an id",
			attack: func(e *env) string {
				ids := e.submitN(2)
				e.reuse(ids[0], fixture.Tar(fixture.Entry{Name: "second.txt", Body: "second testimony"}))
				// bundle.json cannot list one submission twice (the bundle
				// package refuses that as malformed), so the server lists
				// only leaf 2's, hoping leaf 0 passes as opened earlier.
				dir, err := os.MkdirTemp(e.tmp, "bundle-")
				must(t, err)
				// WriteBundle writes the ciphertexts (leaf 2's under the
				// shared name), then refuses to write the duplicate list.
				if err := e.log.WriteBundle(dir, 0, 3, fixture.BundleOptions{}); !errors.Is(err, bundle.ErrInvalid) {
					t.Fatalf("WriteBundle: %v, want the duplicate refused", err)
				}
				b, err := e.log.Bundle(0, 3, fixture.BundleOptions{})
				must(t, err)
				b.Submissions = b.Submissions[1:]
				writeRaw(t, dir, b)
				return dir
			},
			reason: ErrReused,
			msg:    `^bundle refused: submission id reused: leaves 0 and 2 both have id 0+1: the log holds two submissions under one id, and one would hide the other$`,
		},
		{
			name: "ciphertext is a symlink",
			attack: func(e *env) string {
				ids := e.submitN(1)
				dir := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
				p := filepath.Join(dir, bundle.CiphertextName(ids[0]))
				must(t, os.Rename(p, p+".real"))
				must(t, os.Symlink(filepath.Base(p)+".real", p))
				return dir
			},
			reason: ErrMalformed,
			msg:    `^bundle refused: malformed bundle: 0+1\.age is a symbolic link, not a regular file$`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := tc.attack(e)
			before := e.w.Checkpoint
			_, err := Verify(dir, e.w)
			var r *RefusedError
			if !errors.As(err, &r) || !errors.Is(err, tc.reason) {
				t.Fatalf("Verify: %v; want a refusal wrapping %q", err, tc.reason)
			}
			if !matches(tc.msg, err.Error()) {
				t.Errorf("message\n\t%s\ndoes not match\n\t%s", err, tc.msg)
			}
			if string(e.w.Checkpoint) != string(before) {
				t.Error("Verify changed the witness state")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRerun opens the last bundle again: it ends at the stored checkpoint,
// so it is not a replay, and what opened is skipped.
func TestRerun(t *testing.T) {
	e := newEnv(t)
	e.submitN(2)
	b1 := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
	e.open(b1, e.options())
	v, err := Verify(b1, e.w)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Rerun || v.Stored != 2 {
		t.Errorf("Rerun %v, Stored %d", v.Rerun, v.Stored)
	}
	res, err := Open(v, e.out, e.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != AlreadyOpen {
			t.Errorf("%+v, want already open", r)
		}
	}
	// An empty bundle at the stored size is fine too.
	if _, err := Verify(e.bundle(e.log, 2, 2, fixture.BundleOptions{}), e.w); err != nil {
		t.Errorf("empty bundle: %v", err)
	}
}

// TestOpenedEarlier accepts a bundle that leaves out a submission opened
// here before, but only at the index it was opened at.
func TestOpenedEarlier(t *testing.T) {
	e := newEnv(t)
	ids := e.submitN(3)
	b := e.bundle(e.log, 0, 3, fixture.BundleOptions{})
	must(t, fixture.DropSubmission(b, ids[1]))
	e.w.Opened[ids[1]] = e.seen(1)
	v, err := Verify(b, e.w)
	if err != nil {
		t.Fatal(err)
	}
	if v.Earlier != 1 || len(v.Submissions) != 2 {
		t.Errorf("Earlier %d, %d submissions", v.Earlier, len(v.Submissions))
	}
	e.w.Opened[ids[1]] = e.seen(2)
	if _, err := Verify(b, e.w); !errors.Is(err, ErrReused) {
		t.Errorf("opened at another index: %v, want ErrReused", err)
	}
}

func TestWitnessState(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	b := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
	other, _ := fixture.OtherLogKey()
	e.w.Checkpoint = e.log.SignedCheckpoint(1, other)
	if _, err := Verify(b, e.w); !errors.Is(err, ErrWitnessState) {
		t.Errorf("got %v, want ErrWitnessState", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	b := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
	must(t, os.WriteFile(filepath.Join(b, bundle.FileName), []byte(`{"version":1}`), 0o644))
	_, err := Verify(b, e.w)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, bundle.ErrInvalid) || !strings.HasPrefix(err.Error(), "bundle refused: malformed bundle: ") {
		t.Errorf("got %v", err)
	}
	if _, err := Verify(filepath.Join(e.tmp, "nowhere"), e.w); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing bundle: %v", err)
	}
}

// TestSigners reports each caseworker signature status; a bad signature
// fails that submission and writes nothing for it.
func TestSigners(t *testing.T) {
	e := newEnv(t)
	known, stranger := fixture.DeviceKey(1), fixture.DeviceKey(2)
	e.submit(known, map[string]string{"a.txt": "alpha"})
	e.submit(stranger, map[string]string{"a.txt": "alpha"})
	e.submit(nil, map[string]string{"a.txt": "alpha"})
	e.add(e.log, fixture.AlteredAfterSigning(envelope.Meta{Case: "NK-4"}, known, e.files(map[string]string{"a.txt": "alpha"})...))
	opt := e.options()
	knownKey := envelope.DeviceKeyString(known.Public().(ed25519.PublicKey))
	opt.Caseworkers = map[string]string{knownKey: "Kim"}
	res := e.open(e.bundle(e.log, 0, 4, fixture.BundleOptions{}), opt)

	strangerPub := stranger.Public().(ed25519.PublicKey)
	for i, want := range []Signer{
		{Status: Known, Name: "Kim", Key: knownKey, Fingerprint: envelope.Fingerprint(known.Public().(ed25519.PublicKey))},
		{Status: Unknown, Key: envelope.DeviceKeyString(strangerPub), Fingerprint: envelope.Fingerprint(strangerPub)},
		{Status: Unsigned},
	} {
		got := res[i].Signer
		got.Signature = ""
		if res[i].Status != Opened || got != want {
			t.Errorf("submission %d: %+v, signer %+v; want %+v", i+1, res[i], got, want)
		}
	}
	if r := res[3]; r.Status != Failed || !errors.Is(r.Err, envelope.ErrBadSignature) || r.Reason != "bad caseworker signature" {
		t.Errorf("altered manifest: %+v", r)
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(1), id(2), id(3)}) {
		t.Errorf("output directory holds %v", got)
	}
}

func TestOpenDecryptFailure(t *testing.T) {
	e := newEnv(t)
	ct, err := fixture.Encrypt([]age.Recipient{e.id.Recipient()}, fixture.Tar(fixture.Entry{Name: "a.txt", Body: "alpha"}), true)
	must(t, err)
	e.log.Append(id(1), ct)
	res := e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.options())
	if res[0].Status != Failed || res[0].Reason != "decryption failed" {
		t.Fatalf("got %+v, want a decryption failure", res[0])
	}
	if got := ls(t, e.out); len(got) != 0 {
		t.Errorf("output directory holds %v", got)
	}
}

func TestOpenWrongIdentity(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	opt := e.options()
	k, _ := age.GenerateX25519Identity()
	opt.Identities = []age.Identity{k}
	res := e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), opt)
	if !errors.Is(res[0].Err, ErrNoIdentity) {
		t.Errorf("got %+v, want ErrNoIdentity", res[0])
	}
}

// TestOpenCiphertextChanged replaces a ciphertext between Verify and Open.
func TestOpenCiphertextChanged(t *testing.T) {
	e := newEnv(t)
	ids := e.submitN(1)
	b := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
	v, err := Verify(b, e.w)
	must(t, err)
	must(t, fixture.AlterCiphertext(b, ids[0]))
	res, err := Open(v, e.out, e.options())
	must(t, err)
	if !errors.Is(res[0].Err, ErrCiphertextMismatch) {
		t.Fatalf("got %+v, want ErrCiphertextMismatch", res[0])
	}
	if got := ls(t, e.out); len(got) != 0 {
		t.Errorf("output directory holds %v", got)
	}
}

// TestOpenReservedName refuses an envelope that carries its own custody
// record, which would pose as the reviewer's.
func TestOpenReservedName(t *testing.T) {
	for _, name := range []string{CustodyJSONName, CustodyTextName} {
		e := newEnv(t)
		e.add(e.log, fixture.Tar(fixture.Entry{Name: name, Body: `{"forged":true}`}))
		res := e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.options())
		if !errors.Is(res[0].Err, ErrReservedName) {
			t.Errorf("%s: got %+v, want ErrReservedName", name, res[0])
		}
		if got := ls(t, e.out); len(got) != 0 {
			t.Errorf("output directory holds %v", got)
		}
	}
}

func TestOpenOutputPathTaken(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	must(t, os.MkdirAll(e.out, 0o700))
	must(t, os.WriteFile(filepath.Join(e.out, id(1)), []byte("x"), 0o600))
	res := e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.options())
	if !errors.Is(res[0].Err, ErrOutputExists) {
		t.Fatalf("got %+v, want ErrOutputExists", res[0])
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	left := filepath.Join(e.out, tmpPrefix+id(1)+"-123456")
	must(t, os.MkdirAll(left, 0o700))
	must(t, os.WriteFile(filepath.Join(left, "half.txt"), []byte("plaintext"), 0o600))
	res := e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.options())
	if res[0].Status != Opened {
		t.Fatalf("got %+v", res[0])
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(1)}) {
		t.Errorf("output directory holds %v", got)
	}
	if len(e.warns) != 1 || !strings.Contains(e.warns[0], "leftover") {
		t.Errorf("warnings %q", e.warns)
	}
}

func TestOpenNoIdentities(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	v, err := Verify(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.w)
	must(t, err)
	opt := e.options()
	opt.Identities = nil
	if _, err := Open(v, e.out, opt); err == nil {
		t.Fatal("Open without identities succeeded")
	}
}

func matches(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// TestOpenExistingFolder takes OUTDIR/<id> for the submission only when its
// custody record names this log, leaf index and leaf hash; anything else is
// refused and left alone, never skipped as already open.
func TestOpenExistingFolder(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare opens the first bundle (leaves 0 and 1) as needed and
		// returns the bundle to open next.
		prepare func(e *env, ids []string) string
		status  Status
		errs    []error
		msg     string // a regular expression for Err
	}{
		{
			name: "opened here, rerun",
			prepare: func(e *env, ids []string) string {
				b := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				e.open(b, e.options())
				return b
			},
			status: AlreadyOpen,
		},
		{
			name: "opened, but the record in opened.json was lost in a crash",
			prepare: func(e *env, ids []string) string {
				b := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				e.open(b, e.options())
				clear(e.w.Opened)
				return b
			},
			status: AlreadyOpen,
		},
		{
			name: "a folder this program did not make",
			prepare: func(e *env, ids []string) string {
				must(t, os.MkdirAll(filepath.Join(e.out, ids[0]), 0o700))
				return e.bundle(e.log, 0, 2, fixture.BundleOptions{})
			},
			status: Failed,
			errs:   []error{ErrNotThisSubmission},
			msg:    `^submission 0+1: output directory holds something other than this submission: \S+ exists but was not opened by this program \(custody.json: .*\); it is not submission 0+1 from leaf 0: move it out of OUTDIR and run again$`,
		},
		{
			name: "the folder edited after opening",
			prepare: func(e *env, ids []string) string {
				b := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				e.open(b, e.options())
				p := filepath.Join(e.out, ids[0], CustodyJSONName)
				data, err := os.ReadFile(p)
				must(t, err)
				must(t, os.WriteFile(p, []byte(strings.Replace(string(data), `"index": 0,`, `"index": 7,`, 1)), 0o600))
				return b
			},
			status: Failed,
			errs:   []error{ErrNotThisSubmission},
			msg:    `^submission 0+1: output directory holds something other than this submission: \S+ was opened here from leaf 0, but its custody.json now records id 0+1, leaf 7, leaf hash \S+: the folder was changed after it was opened; move it out of OUTDIR \(keep it\) and run again to open the submission afresh$`,
		},
		{
			name: "a folder from another log",
			prepare: func(e *env, ids []string) string {
				b := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
				e.open(b, e.options())
				clear(e.w.Opened)
				p := filepath.Join(e.out, ids[0], CustodyJSONName)
				data, err := os.ReadFile(p)
				must(t, err)
				must(t, os.WriteFile(p, []byte(strings.Replace(string(data), `"key": "testimony-log-fixture+`, `"key": "testimony-log-other+`, 1)), 0o600))
				return b
			},
			status: Failed,
			errs:   []error{ErrNotThisSubmission},
			msg:    `^submission 0+1: output directory holds something other than this submission: \S+ holds a submission opened from another log \(key "testimony-log-other\+\S+"\): move it out of OUTDIR and run again$`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ids := e.submitN(2)
			b := tc.prepare(e, ids)
			v, err := Verify(b, e.w)
			must(t, err)
			folder := filepath.Join(e.out, ids[0])
			before := snapshot(t, folder)
			res, err := Open(v, e.out, e.options())
			must(t, err)
			r := res[0]
			if r.Status != tc.status || r.Index != 0 {
				t.Fatalf("got %+v, want status %v", r, tc.status)
			}
			for _, want := range tc.errs {
				if !errors.Is(r.Err, want) {
					t.Errorf("error %v does not wrap %q", r.Err, want)
				}
			}
			if tc.msg != "" && !matches(tc.msg, r.Err.Error()) {
				t.Errorf("message\n\t%s\ndoes not match\n\t%s", r.Err, tc.msg)
			}
			if after := snapshot(t, folder); !maps.Equal(before, after) {
				t.Errorf("%s changed:\n%v\n%v", folder, before, after)
			}
		})
	}
}

// TestOpenReusedIDFolder opens a bundle whose new leaf reuses the id of a
// submission opened into the same OUTDIR by another state directory, which
// Verify cannot know about: the folder's custody record tells.
func TestOpenReusedIDFolder(t *testing.T) {
	e := newEnv(t)
	ids := e.submitN(2)
	e.open(e.bundle(e.log, 0, 2, fixture.BundleOptions{}), e.options())
	clear(e.w.Opened)
	e.reuse(ids[0], fixture.Tar(fixture.Entry{Name: "second.txt", Body: "second testimony"}))
	before := snapshot(t, e.out)
	res := e.open(e.bundle(e.log, 2, 3, fixture.BundleOptions{}), e.options())
	r := res[0]
	if r.Status != Failed || r.Index != 2 || !errors.Is(r.Err, ErrReused) || !errors.Is(r.Err, ErrNotThisSubmission) || r.Reason != "submission id reused" {
		t.Fatalf("got %+v, want a failure naming the reused id", r)
	}
	const msg = `^submission 0+1: submission id reused: output directory holds something other than this submission: leaf 2 \(leaf hash \S+\) reuses the id of the submission in \S+, opened from leaf 0 \(leaf hash \S+\) of the same log: keep the bundle as evidence; to open the new one, move that folder out of OUTDIR and run again$`
	if !matches(msg, r.Err.Error()) {
		t.Errorf("message\n\t%s\ndoes not match\n\t%s", r.Err, msg)
	}
	if after := snapshot(t, e.out); !maps.Equal(before, after) {
		t.Errorf("the output directory changed:\n%v\n%v", before, after)
	}
}

// snapshot maps every path under dir to its content, for comparing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			m[rel] = "/"
			return nil
		}
		data, err := os.ReadFile(p)
		m[rel] = string(data)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return m
}

// writeRaw writes b as bundle.json in dir without the bundle package's
// checks, which would refuse it before the reviewer's checks see it.
func writeRaw(t *testing.T, dir string, b *bundle.Bundle) {
	t.Helper()
	data, err := json.Marshal(b)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, bundle.FileName), data, 0o644))
}

// TestOpenCiphertextSwapped puts another valid ciphertext, decryptable with
// the same identity, in place of a submission's after Verify: only the
// hash taken while decrypting tells, and it must fail the submission
// without writing the other testimony under this id.
func TestOpenCiphertextSwapped(t *testing.T) {
	e := newEnv(t)
	ids := e.submitN(2)
	b := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
	v, err := Verify(b, e.w)
	must(t, err)
	// Renamed over it, as a meddling copy tool would.
	p := filepath.Join(b, bundle.CiphertextName(ids[0]))
	other, err := os.ReadFile(filepath.Join(b, bundle.CiphertextName(ids[1])))
	must(t, err)
	must(t, os.WriteFile(p+".new", other, 0o644))
	must(t, os.Rename(p+".new", p))
	res, err := Open(v, e.out, e.options())
	must(t, err)
	if r := res[0]; r.Status != Failed || !errors.Is(r.Err, ErrCiphertextMismatch) || r.Reason != "ciphertext changed" {
		t.Fatalf("got %+v, want ErrCiphertextMismatch", r)
	}
	if res[1].Status != Opened {
		t.Fatalf("the unchanged submission: %+v", res[1])
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("output directory holds %v, want only %s", got, ids[1])
	}
}

// TestFileChangedWhileOpened replaces a ciphertext by a link to a copy of
// it between the regular-file check and the opening, in Verify
// and in Open: the hashes cannot tell, the identity check of the opened
// file must.
func TestFileChangedWhileOpened(t *testing.T) {
	swap := func(t *testing.T, dir, name string) {
		t.Cleanup(func() { testHookBetweenLstatAndOpen = nil })
		testHookBetweenLstatAndOpen = func(got string) {
			if got != name {
				return
			}
			testHookBetweenLstatAndOpen = nil
			p := filepath.Join(dir, name)
			data, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(p+".copy", data, 0o644))
			must(t, os.Remove(p))
			must(t, os.Symlink(name+".copy", p))
		}
	}
	t.Run("verify", func(t *testing.T) {
		e := newEnv(t)
		ids := e.submitN(1)
		b := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
		swap(t, b, bundle.CiphertextName(ids[0]))
		_, err := Verify(b, e.w)
		if !errors.Is(err, ErrMalformed) || !matches(`^bundle refused: malformed bundle: 0+1\.age changed while being opened$`, err.Error()) {
			t.Fatalf("Verify: %v, want the change refused", err)
		}
	})
	t.Run("open", func(t *testing.T) {
		e := newEnv(t)
		ids := e.submitN(1)
		b := e.bundle(e.log, 0, 1, fixture.BundleOptions{})
		v, err := Verify(b, e.w)
		must(t, err)
		swap(t, b, bundle.CiphertextName(ids[0]))
		res, err := Open(v, e.out, e.options())
		must(t, err)
		if r := res[0]; r.Status != Failed || r.Reason != "cannot read ciphertext" || !matches(`^submission 0+1: 0+1\.age changed while being opened$`, r.Err.Error()) {
			t.Fatalf("got %+v, want the change refused", r)
		}
		if got := ls(t, e.out); len(got) != 0 {
			t.Errorf("output directory holds %v", got)
		}
	})
}

// TestVerifyRetry takes from an older bundle only the submissions that
// failed to open from it, and only if their leaf is the one recorded.
func TestVerifyRetry(t *testing.T) {
	other, _ := fixture.OtherLogKey()
	e := newEnv(t)
	ids := e.submitN(3)
	b1 := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
	e.open(b1, e.options())
	e.open(e.bundle(e.log, 2, 3, fixture.BundleOptions{}), e.options())
	if _, err := Verify(b1, e.w); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Verify of the older bundle: %v", err)
	}
	h := e.log.Leaf(1).Hash()
	retry := []Retry{{ID: ids[1], Index: 1, LeafHash: base64.StdEncoding.EncodeToString(h[:])}}
	v, err := VerifyRetry(b1, e.w, retry)
	must(t, err)
	if !v.Retry || len(v.Submissions) != 1 || v.Submissions[0].ID != ids[1] || v.Submissions[0].Index != 1 {
		t.Fatalf("VerifyRetry = %+v", v)
	}

	for _, tc := range []struct {
		name   string
		dir    func() string
		retry  []Retry
		reason error
	}{
		{"not in the bundle", func() string { return b1 }, []Retry{{ID: ids[2], Index: 2, LeafHash: retry[0].LeafHash}}, ErrNoRetry},
		{"another leaf hash", func() string { return b1 }, []Retry{{ID: ids[1], Index: 1, LeafHash: "AAAA"}}, ErrForked},
		{"ciphertext altered", func() string {
			d := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
			must(t, fixture.AlterCiphertext(d, ids[1]))
			return d
		}, retry, ErrAltered},
		{"proof altered", func() string {
			d := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
			must(t, fixture.AlterProof(d, 1))
			return d
		}, retry, ErrInclusion},
		{"unknown signer", func() string { return e.bundle(e.log, 0, 2, fixture.BundleOptions{Signer: other}) }, retry, ErrForeignKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyRetry(tc.dir(), e.w, tc.retry); !errors.Is(err, tc.reason) {
				t.Errorf("VerifyRetry: %v, want %q", err, tc.reason)
			}
		})
	}
}
