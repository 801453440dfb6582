// Package collect pulls a slice of the server's intake log, and the
// ciphertexts of its submissions, into a bundle directory for the
// air-gapped reviewer.
//
// A bundle continues from a checkpoint the reviewer already verified (or
// from the beginning of the log) up to the server's newest checkpoint. The
// collector checks everything the reviewer will check before it writes a
// byte of bundle.json, through intakelog.Client (fed by logclient.Ops): the
// checkpoint's signature, its consistency with the checkpoint the bundle
// starts from and with the newest one this device verified, every leaf's
// inclusion proof, and every ciphertext's size and SHA-256 against its leaf. A server that rewrites, forks or rolls back its
// log, or swaps a ciphertext, is refused here already, before anything is
// carried to the reviewer.
//
// A bundle directory holds one bundle: collecting into it again replaces
// bundle.json with the next slice (the ciphertexts already there stay, and
// are not downloaded again if the new slice lists them).
//
// The order of steps makes collection safe to interrupt and re-run: each
// ciphertext is downloaded to <id>.age.part, checked, synced and renamed;
// bundle.json is written atomically once every ciphertext is in place;
// only then is the server told what was collected, and only then does the
// caller record where the bundle ended. A re-run finds the ciphertexts already
// there and does not download them again.
package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/logclient"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// MaxSubmissionSize is the largest ciphertext the collector downloads; it
// is well above the server's default limit of 16 GiB, and only guards
// against a server that claims absurd sizes.
const MaxSubmissionSize = 1 << 40

var (
	// ErrOtherKey means the bundle directory already holds a bundle of a
	// different log (another server, or a replaced log key).
	ErrOtherKey = errors.New("bundle directory holds a bundle of another log")
	// ErrNotBundleDir means the bundle directory holds no bundle.json but
	// other files than the ones an interrupted collection leaves (a USB
	// stick's root, a folder of documents): ciphertext is not mixed in.
	ErrNotBundleDir = errors.New("bundle directory holds files that are not part of a bundle")
	// ErrMismatch means a ciphertext does not match its log leaf.
	ErrMismatch = errors.New("ciphertext does not match its log leaf")
	// ErrLog means the server's log does not verify: a bad checkpoint
	// signature, a rewritten, forked or rolled-back history, a leaf
	// without a valid inclusion proof, or malformed log data. The wrapped
	// intakelog error says which.
	ErrLog = errors.New("the server's log does not verify")
	// ErrReusedID means a log leaf names a submission id that another leaf
	// names too, in this bundle or in one this device collected before.
	// The server chooses ids; the reviewer opens each submission into a
	// folder named by its id, so a second submission under a used id
	// could pass as the first. It is always wrapped with ErrLog.
	ErrReusedID = errors.New("submission id reused")
	// errDeleted means the server deleted a submission's ciphertext after
	// a reviewer acknowledged it (410): its leaf is bundled without it.
	errDeleted = errors.New("ciphertext deleted after review")
)

// Server is the part of the API the collector needs. *api.Client implements it.
type Server interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	Consistency(ctx context.Context, oldSize, newSize int64) ([]string, error)
	Inclusion(ctx context.Context, index, size int64) ([]string, error)
	Leaves(ctx context.Context, start, end int64) ([]api.LogLeaf, error)
	Download(ctx context.Context, id string) (body io.ReadCloser, size int64, sha256Hex string, err error)
	MarkCollected(ctx context.Context, id string) error
}

// Collector collects one bundle.
type Collector struct {
	Server Server
	Dir    string // must exist
	// LogKey is the pinned log verifier key.
	LogKey string
	// From is the log size the bundle starts at, and FromCheckpoint the
	// signed checkpoint of that size (nil if From is 0).
	From           int64
	FromCheckpoint []byte
	// Store, if set, holds the newest checkpoint this device verified of
	// this log (by collecting or by checking receipts): the server's
	// newest checkpoint must be consistent with it too, and replaces it
	// once everything verified, before bundle.json is written.
	Store intakelog.Store
	// Seen, if set, holds the ids this device collected before: a leaf
	// naming one of them at another index is refused, and a successful
	// Run adds the bundle's ids to it (the caller saves it).
	Seen  *State
	Retry retry.Policy    // zero means retry.Default
	Sleep retry.SleepFunc // nil means retry.Sleep
	// Progress, if set, reports download progress.
	Progress func(id string, done, total int64)
	Now      func() time.Time // nil means time.Now
}

// Summary says what a Run did.
type Summary struct {
	From int64 // where the bundle starts
	// Checkpoint is the signed checkpoint the bundle ends at, of Size.
	Checkpoint []byte
	Size       int64
	Downloaded int // ciphertexts newly downloaded
	Present    int // ciphertexts already in the directory with the right hash
	// AckFailed maps the ids the server could not be told about to why.
	// They are safely in the bundle; the server just still lists them as
	// pending.
	AckFailed map[string]error
	// Replaced is set if Dir held a bundle of another range, whose
	// bundle.json was replaced.
	Replaced *Range
	// Deleted are the log indexes whose ciphertext the server deleted
	// after review. Their leaves are in the bundle, their ciphertexts not:
	// the reviewer accepts that only for leaves it opened itself.
	Deleted []int64
}

// Range is the slice [From, To) of the log a bundle covers.
type Range struct {
	From, To int64
}

// Run collects the log from c.From (or earlier, see From) to the server's
// newest checkpoint. It writes bundle.json only if everything verified and
// every ciphertext is in the directory.
func (c *Collector) Run(ctx context.Context) (*Summary, error) {
	if c.Retry.Attempts == 0 {
		c.Retry = retry.Default
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	lc, err := intakelog.NewClient(c.LogKey, &logclient.Ops{API: c.Server, Retry: c.Retry, Sleep: c.Sleep, Retryable: retryable}, c.Store)
	if err != nil {
		return nil, err
	}
	cp, raw, err := lc.Checkpoint(ctx)
	switch {
	case intakelog.IsLogError(err):
		return nil, fmt.Errorf("%w: the newest checkpoint: %w", ErrLog, err)
	case err != nil:
		return nil, err
	}

	// A bundle already in Dir is replaced: each bundle continues from the
	// last one collected, which is what the reviewer expects next, and
	// overlapping bundles would be refused as replayed.
	var replaced *Range
	old, err := bundle.Read(c.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := checkBundleDir(c.Dir); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("%s holds a bundle.json that cannot be read: %w", c.Dir, err)
	case old.LogKey != c.LogKey:
		return nil, fmt.Errorf("%w: %s holds a bundle of the log with key %s", ErrOtherKey, c.Dir, old.LogKey)
	default:
		replaced = &Range{From: old.FromSize, To: -1}
		if oldCp, err := intakelog.OpenCheckpoint([]byte(old.Checkpoint), c.LogKey); err == nil {
			replaced.To = oldCp.Size
		}
	}
	from, fromRaw := c.From, c.FromCheckpoint
	if from == 0 {
		fromRaw = nil
	}
	if from > cp.Size {
		return nil, fmt.Errorf("%w: the server's newest checkpoint has size %d, but the log was already bundled up to size %d: %w",
			ErrLog, cp.Size, from, intakelog.ErrRollback)
	}
	consistency := []string{}
	fromCp := intakelog.Checkpoint{Origin: cp.Origin, Root: emptyRoot}
	if from > 0 {
		fromCp, err = lc.Open(fromRaw)
		if err != nil {
			return nil, fmt.Errorf("the checkpoint of size %d the bundle starts from: %w", from, err)
		}
		if fromCp.Size != from {
			return nil, fmt.Errorf("the checkpoint the bundle starts from has size %d, not %d", fromCp.Size, from)
		}
		proof, err := consistent(ctx, lc, fromCp, cp)
		if err != nil {
			return nil, err
		}
		consistency = intakelog.EncodeProof(proof)
	}
	w, _, ok, err := lc.Latest()
	if err != nil {
		return nil, fmt.Errorf("the last verified checkpoint: %w", err)
	}
	if ok {
		if w.Size > cp.Size {
			return nil, fmt.Errorf("%w: the server's newest checkpoint has size %d, but a checkpoint of size %d was bundled before or verified with receipts on this device: %w",
				ErrLog, cp.Size, w.Size, intakelog.ErrRollback)
		}
		// The checkpoint the bundle starts from was checked above.
		if w != fromCp {
			if _, err := consistent(ctx, lc, w, cp); err != nil {
				return nil, err
			}
		}
	}

	leaves, err := c.leaves(ctx, lc, from, cp)
	if err != nil {
		return nil, err
	}
	if c.Store != nil {
		if err := lc.Accept(ctx, cp, raw); err != nil {
			if intakelog.IsLogError(err) {
				return nil, fmt.Errorf("%w: the newest checkpoint (size %d) against the one stored meanwhile: %w", ErrLog, cp.Size, err)
			}
			return nil, err
		}
	}
	sum := &Summary{From: from, Checkpoint: raw, Size: cp.Size, AckFailed: map[string]error{}}
	if replaced != nil && (replaced.From != from || replaced.To != cp.Size) {
		sum.Replaced = replaced
	}
	subs := make([]bundle.Entry, 0, len(leaves))
	for _, l := range leaves {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		downloaded, err := c.fetch(ctx, l)
		if errors.Is(err, errDeleted) {
			sum.Deleted = append(sum.Deleted, l.Index)
			continue
		}
		if err != nil {
			return nil, err
		}
		if downloaded {
			sum.Downloaded++
		} else {
			sum.Present++
		}
		subs = append(subs, bundle.NewEntry(l.ID, l.Size, l.SHA256, l.Index))
	}
	b := &bundle.Bundle{
		Version:        bundle.Version,
		Created:        bundle.CreatedAt(now()),
		LogKey:         c.LogKey,
		FromSize:       from,
		FromCheckpoint: string(fromRaw),
		Checkpoint:     string(raw),
		Consistency:    consistency,
		Leaves:         leaves,
		Submissions:    subs,
	}
	if err := b.Write(c.Dir); err != nil {
		return nil, err
	}
	if c.Seen != nil {
		c.Seen.AddSeen(leaves)
	}
	for _, l := range leaves {
		err := c.do(ctx, func(ctx context.Context) error { return c.Server.MarkCollected(ctx, l.ID) })
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			sum.AckFailed[l.ID] = err
		}
	}
	return sum, nil
}

// consistent checks that new extends old, and returns the proof.
func consistent(ctx context.Context, lc *intakelog.Client, old, new intakelog.Checkpoint) ([]tlog.Hash, error) {
	proof, err := lc.Consistent(ctx, old, new)
	if intakelog.IsLogError(err) {
		return nil, fmt.Errorf("%w: the newest checkpoint (size %d) against the one of size %d: %w", ErrLog, new.Size, old.Size, err)
	}
	return proof, err
}

// leaves fetches the leaves from … cp.Size-1 with their inclusion proofs
// at cp, and checks them.
func (c *Collector) leaves(ctx context.Context, lc *intakelog.Client, from int64, cp intakelog.Checkpoint) ([]bundle.Leaf, error) {
	if cp.Size-from > bundle.MaxEntries {
		return nil, fmt.Errorf("the log grew by %d entries since size %d, more than one bundle holds (%d)", cp.Size-from, from, bundle.MaxEntries)
	}
	leaves, err := lc.Leaves(ctx, from, cp.Size)
	switch {
	case intakelog.IsLogError(err):
		return nil, fmt.Errorf("%w: %w", ErrLog, err)
	case err != nil:
		return nil, err
	}
	out := make([]bundle.Leaf, 0, len(leaves))
	seen := map[string]int64{}
	for i, l := range leaves {
		index := from + int64(i)
		if l.Size <= 0 || l.Size > MaxSubmissionSize {
			return nil, fmt.Errorf("%w: log leaf %d is malformed", ErrLog, index)
		}
		if prev, ok := seen[l.ID]; ok {
			return nil, fmt.Errorf("%w: %w: log leaves %d and %d both name submission %s", ErrLog, ErrReusedID, prev, index, l.ID)
		}
		if c.Seen != nil {
			if prev, ok := c.Seen.SeenAt(l.ID); ok && prev != index {
				return nil, fmt.Errorf("%w: %w: log leaf %d names submission %s, which this device collected before from log leaf %d",
					ErrLog, ErrReusedID, index, l.ID, prev)
			}
		}
		seen[l.ID] = index
		proof, err := lc.Included(ctx, cp, index, l)
		switch {
		case intakelog.IsLogError(err):
			return nil, fmt.Errorf("%w: leaf %d (submission %s): %w", ErrLog, index, l.ID, err)
		case err != nil:
			return nil, err
		}
		out = append(out, bundle.Leaf{Index: index, ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date, Proof: intakelog.EncodeProof(proof)})
	}
	return out, nil
}

func (c *Collector) do(ctx context.Context, op func(context.Context) error) error {
	return c.Retry.Do(ctx, c.Sleep, retryable, op)
}

// maxForeignNames is how many unexpected names ErrNotBundleDir lists.
const maxForeignNames = 3

// checkBundleDir accepts a directory without bundle.json only if it is
// empty or holds what an interrupted collection leaves behind: ciphertexts,
// partial downloads and temporary files of an atomic write. Anything else
// means the user pointed -o at a directory of their own, and ciphertext
// added to it would be mixed with, and carried around with, their files.
func checkBundleDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("failed to read bundle directory: %w", err)
	}
	var foreign []string
	for _, e := range entries {
		name := e.Name()
		id := strings.TrimSuffix(strings.TrimSuffix(name, ".part"), ".age")
		ours := e.Type().IsRegular() && (safefile.IsTemp(name) ||
			ids.ValidSubmission(id) && (name == bundle.CiphertextName(id) || name == bundle.CiphertextName(id)+".part"))
		if !ours {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	list := strings.Join(foreign[:min(len(foreign), maxForeignNames)], ", ")
	if len(foreign) > maxForeignNames {
		list += fmt.Sprintf(" and %d more", len(foreign)-maxForeignNames)
	}
	return fmt.Errorf("%w: %s has no %s but holds %s", ErrNotBundleDir, dir, bundle.FileName, list)
}

// fetch makes sure the ciphertext of l is in the directory.
func (c *Collector) fetch(ctx context.Context, l bundle.Leaf) (downloaded bool, err error) {
	name := filepath.Join(c.Dir, bundle.CiphertextName(l.ID))
	present, err := hasFile(name, l.Size, l.SHA256)
	if err != nil || present {
		return false, err
	}
	err = c.do(ctx, func(ctx context.Context) error { return c.download(ctx, l, name) })
	if api.IsGone(err) {
		return false, errDeleted
	}
	if err != nil {
		if errors.Is(err, ErrMismatch) || ctx.Err() != nil {
			return false, err
		}
		return false, fmt.Errorf("the log lists submission %s (leaf %d), but its ciphertext could not be downloaded: %w", l.ID, l.Index, err)
	}
	return true, nil
}

// retryable accepts network failures, not local ones or mismatches.
func retryable(err error) bool {
	return !retry.IsPermanent(err) && api.Retryable(err)
}

// hasFile reports whether name exists with the given size and hash, so an
// interrupted collection does not download it again.
func hasFile(name string, size int64, sha256Hex string) (bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to check %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("failed to check %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("failed to check %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sha256Hex, nil
}

func (c *Collector) download(ctx context.Context, l bundle.Leaf, name string) error {
	body, size, header, err := c.Server.Download(ctx, l.ID)
	if err != nil {
		return err
	}
	defer body.Close()
	if header != l.SHA256 {
		return retry.Permanent(fmt.Errorf("%w: %s: the server's Ciphertext-SHA256 header is %q, the leaf says %s", ErrMismatch, l.ID, api.Sanitize(header, 64), l.SHA256))
	}
	if size >= 0 && size != l.Size {
		return retry.Permanent(fmt.Errorf("%w: %s: the server sends %d bytes, the leaf says %d", ErrMismatch, l.ID, size, l.Size))
	}
	part := name + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return retry.Permanent(fmt.Errorf("failed to create %s: %w", part, err))
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(part)
		}
	}()
	h := sha256.New()
	var w io.Writer = io.MultiWriter(localWriter{f}, h)
	if c.Progress != nil {
		w = &progressWriter{w: w, id: l.ID, total: l.Size, fn: c.Progress}
	}
	// Read one byte more than the leaf says, to notice a server that sends more.
	n, err := io.Copy(w, io.LimitReader(body, l.Size+1))
	if err != nil {
		return fmt.Errorf("failed to download %s: %w", l.ID, err)
	}
	if n != l.Size {
		return retry.Permanent(fmt.Errorf("%w: %s: received %d bytes, the leaf says %d", ErrMismatch, l.ID, n, l.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.SHA256 {
		return retry.Permanent(fmt.Errorf("%w: %s: received data has sha256 %s, the leaf says %s", ErrMismatch, l.ID, got, l.SHA256))
	}
	if err := f.Sync(); err != nil {
		return retry.Permanent(fmt.Errorf("failed to sync %s: %w", part, err))
	}
	if err := f.Close(); err != nil {
		return retry.Permanent(fmt.Errorf("failed to write %s: %w", part, err))
	}
	if err := os.Rename(part, name); err != nil {
		return retry.Permanent(fmt.Errorf("failed to write %s: %w", name, err))
	}
	ok = true
	return retry.Permanent(safefile.SyncDir(c.Dir))
}

// localWriter marks write errors as permanent, so a full disk is not
// mistaken for a network failure and retried.
type localWriter struct{ w io.Writer }

func (l localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	return n, retry.Permanent(err)
}

type progressWriter struct {
	w     io.Writer
	id    string
	done  int64
	total int64
	fn    func(id string, done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.id, p.done, p.total)
	return n, err
}

// emptyRoot is the root hash of a log of size 0.
var emptyRoot, _ = tlog.TreeHash(0, nil)
