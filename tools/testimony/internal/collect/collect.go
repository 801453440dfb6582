// Package collect pulls pending submissions from the intake server into a
// bundle directory for the air-gapped reviewer.
//
// The order of steps is what makes collection safe to interrupt and re-run:
// a ciphertext is downloaded to <id>.age.part, checked against the size and
// SHA-256 the server listed (and signed in the receipt), synced and renamed;
// its receipt is written; bundle.json is rewritten atomically; only then is
// the server told the submission was collected. A crash at any point leaves
// the submission either still pending on the server or complete in the
// bundle, and a re-run never adds an entry twice.
package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// MaxSubmissionSize is the largest ciphertext the collector downloads; it
// is well above the server's default limit of 16 GiB, and only guards
// against a server that claims absurd sizes.
const MaxSubmissionSize = 1 << 40

// ErrOtherKey means the bundle directory already holds submissions signed
// by a different receipt key (another server, or a replaced key).
var ErrOtherKey = errors.New("bundle belongs to a different receipt key")

// ErrMismatch means a download does not match what the server listed.
var ErrMismatch = errors.New("downloaded ciphertext does not match the listing")

// Server is the part of the API the collector needs. *api.Client implements it.
type Server interface {
	Pending(ctx context.Context) ([]api.Submission, error)
	Download(ctx context.Context, id string) (body io.ReadCloser, size int64, sha256Hex string, err error)
	MarkCollected(ctx context.Context, id string) error
}

// Collector collects into one bundle directory.
type Collector struct {
	Server Server
	Dir    string // must exist
	// ReceiptKey is the pinned receipt key (base64); the bundle records it.
	ReceiptKey string
	// VerifyReceipt checks that raw is a receipt for s signed with the
	// pinned key, whose id, size and SHA-256 are those of s.
	VerifyReceipt func(raw []byte, s api.Submission) error
	Retry         retry.Policy    // zero means retry.Default
	Sleep         retry.SleepFunc // nil means retry.Sleep
	// Progress, if set, reports download progress.
	Progress func(id string, done, total int64)
	// Done, if set, is called after each submission is safely in the bundle.
	Done func(id string, downloaded bool)
	Now  func() time.Time // nil means time.Now
}

// Summary says what a Run did.
type Summary struct {
	Pending    int // submissions the server listed
	Downloaded int // newly downloaded
	Present    int // already in the directory with the right hash
	Bundle     int // submissions in bundle.json afterwards
	// Failed maps ids (or "#n" for the malformed n-th entry of the list)
	// to why they were left pending; they stay on the server for the next
	// run.
	Failed map[string]error
}

// Run collects every pending submission. An error is returned only if
// nothing can be collected at all; per-submission failures are in the
// summary.
func (c *Collector) Run(ctx context.Context) (*Summary, error) {
	if c.Retry.Attempts == 0 {
		c.Retry = retry.Default
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	b, err := bundle.Read(c.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b = bundle.New(c.ReceiptKey, now())
	case err != nil:
		return nil, err
	case b.ReceiptKey != c.ReceiptKey:
		return nil, fmt.Errorf("%w: %s was collected from a server with receipt key %s", ErrOtherKey, c.Dir, b.ReceiptKey)
	}
	var list []api.Submission
	err = c.Retry.Do(ctx, c.Sleep, retryable, func(ctx context.Context) error {
		var err error
		list, err = c.Server.Pending(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	sum := &Summary{Pending: len(list), Failed: map[string]error{}}
	seen := map[string]bool{}
	for i, s := range list {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		downloaded, err := c.one(ctx, b, s)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return sum, err
			}
			id := s.ID
			if !bundle.ValidID(id) {
				id = fmt.Sprintf("#%d", i+1)
			}
			sum.Failed[id] = err
			continue
		}
		if downloaded {
			sum.Downloaded++
		} else {
			sum.Present++
		}
		if c.Done != nil {
			c.Done(s.ID, downloaded)
		}
	}
	sum.Bundle = len(b.Submissions)
	return sum, nil
}

func (c *Collector) one(ctx context.Context, b *bundle.Bundle, s api.Submission) (downloaded bool, err error) {
	if !bundle.ValidID(s.ID) {
		return false, fmt.Errorf("server listed a malformed submission id")
	}
	if s.Size <= 0 || s.Size > MaxSubmissionSize {
		return false, fmt.Errorf("server listed %s with impossible size %d", s.ID, s.Size)
	}
	if _, err := hex.DecodeString(s.SHA256); err != nil || len(s.SHA256) != 2*sha256.Size {
		return false, fmt.Errorf("server listed %s with a malformed sha256", s.ID)
	}
	if err := c.VerifyReceipt(s.Receipt, s); err != nil {
		return false, fmt.Errorf("receipt of %s: %w", s.ID, err)
	}
	name := filepath.Join(c.Dir, bundle.CiphertextName(s.ID))
	present, err := hasFile(name, s.Size, s.SHA256)
	if err != nil {
		return false, err
	}
	if !present {
		err := c.Retry.Do(ctx, c.Sleep, retryable, func(ctx context.Context) error {
			return c.download(ctx, s, name)
		})
		if err != nil {
			return false, err
		}
	}
	raw, err := compact(s.Receipt)
	if err != nil {
		return false, err
	}
	if err := safefile.Write(filepath.Join(c.Dir, bundle.ReceiptName(s.ID)), raw, 0o644); err != nil {
		return false, err
	}
	b.Add(bundle.NewEntry(s.ID, s.Size, s.SHA256))
	if err := b.Write(c.Dir); err != nil {
		return false, err
	}
	err = c.Retry.Do(ctx, c.Sleep, retryable, func(ctx context.Context) error {
		return c.Server.MarkCollected(ctx, s.ID)
	})
	if err != nil {
		// The submission is safely in the bundle; the next run finds it
		// present and tries to mark it again.
		return false, err
	}
	return !present, nil
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

func (c *Collector) download(ctx context.Context, s api.Submission, name string) error {
	body, size, header, err := c.Server.Download(ctx, s.ID)
	if err != nil {
		return err
	}
	defer body.Close()
	if header != s.SHA256 {
		return retry.Permanent(fmt.Errorf("%w: %s: Ciphertext-SHA256 header %q, listed %s", ErrMismatch, s.ID, api.Sanitize(header, 64), s.SHA256))
	}
	if size >= 0 && size != s.Size {
		return retry.Permanent(fmt.Errorf("%w: %s: server sends %d bytes, listed %d", ErrMismatch, s.ID, size, s.Size))
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
		w = &progressWriter{w: w, id: s.ID, total: s.Size, fn: c.Progress}
	}
	// Read one byte more than listed, to notice a server that sends more.
	n, err := io.Copy(w, io.LimitReader(body, s.Size+1))
	if err != nil {
		return fmt.Errorf("failed to download %s: %w", s.ID, err)
	}
	if n != s.Size {
		return retry.Permanent(fmt.Errorf("%w: %s: received %d bytes, listed %d", ErrMismatch, s.ID, n, s.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return retry.Permanent(fmt.Errorf("%w: %s: received data has sha256 %s, listed %s", ErrMismatch, s.ID, got, s.SHA256))
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

func compact(raw []byte) ([]byte, error) {
	buf, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return nil, fmt.Errorf("failed to encode receipt: %w", err)
	}
	return append(buf, '\n'), nil
}
