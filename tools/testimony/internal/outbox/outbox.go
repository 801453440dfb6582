// Package outbox keeps encrypted submissions on the caseworker's disk until
// the server has acknowledged them with a signed receipt.
//
// Every submission is encrypted into the outbox, and only what was written
// there goes on the network, so a killed client, a dropped link or a
// seized server never loses testimony that the caseworker believes was
// sent. The outbox holds ciphertext only.
//
// An upload may begin while the ciphertext is still being written (see
// Pending), but it can be finished only once the entry is complete: the
// finish needs the SHA-256 of the whole file, known only then. After a
// crash, what was written of an incomplete entry is discarded, never
// resumed, so the server never receives the finish of a truncated file.
//
// For a local name N the files are:
//
//	N.age.part  ciphertext being written; its chunks may be uploaded as
//	            they are written, but it is discarded on resume
//	N.json      metadata: server, size, SHA-256, upload id once created;
//	            next to N.age.part, only the server and the upload begun
//	N.age       complete ciphertext, renamed from N.age.part after N.json
//	            was written, so an N.age always has its N.json
package outbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// MetaVersion is the version of the N.json schema.
const MetaVersion = 1

const (
	partSuffix = ".age.part"
	ageSuffix  = ".age"
	metaSuffix = ".json"
	nameLen    = 16 // hex characters of a local name
	maxMeta    = 256 << 10
)

// ErrCorrupt means an outbox file does not match its metadata.
var ErrCorrupt = errors.New("outbox entry is corrupt")

// Meta is the content of N.json.
type Meta struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	// UploadID is set once the server has created an upload for this entry.
	UploadID string `json:"upload_id,omitempty"`
	// Created is the UTC date the entry was encrypted.
	Created string `json:"created"`
	// TLS settings the entry was submitted with, so that resume can reach
	// the same server the same way without the flags being repeated.
	CAPEM  string `json:"ca_pem,omitempty"`
	TLSPin string `json:"tls_pin,omitempty"`
	// OrgKey and RecipientsVersion name the organisation-signed list of
	// recipients the entry was encrypted to, so that resume can tell
	// ciphertext encrypted before a rotation (perhaps away from a seized
	// reviewer key). Both are empty for entries encrypted to pinned or
	// local recipients, and for entries written before they existed.
	OrgKey            string `json:"org_key,omitempty"`
	RecipientsVersion uint64 `json:"recipients_version,omitempty"`
}

// Entry is one complete ciphertext waiting for its receipt.
type Entry struct {
	Name    string // local name: 16 hex characters
	Meta    Meta
	ModTime time.Time
}

// Outbox is the outbox directory.
type Outbox struct {
	Dir string
}

// errAborted is what readers of an aborted Pending are told when the
// writer gave no reason.
var errAborted = errors.New("the outbox entry was abandoned before it was complete")

// Pending is an entry being written (N.age.part). It may be read while it
// is written, so an upload can start before the ciphertext is complete:
// WaitFor blocks until the bytes are on the file. A Pending's upload is
// safe to begin early because nothing can finish it before Commit: the
// ciphertext's SHA-256, which the server's finish needs, exists only
// once the whole file was written and synced, and after a crash an
// N.age.part is discarded (List, Discard), never resumed.
//
// For the same reason a chunk may be read and sent as soon as it was
// written, before it is durable: if the machine loses power, the bytes the
// disk lost belong to an N.age.part, which is discarded with its upload;
// an entry exists only after Commit synced every byte. A sync per chunk
// would cost time and buy nothing.
type Pending struct {
	o    Outbox
	name string
	f    *os.File // the writer's
	hw   hashWriter

	// mu guards the state below, which readers wait on with cond.
	mu      sync.Mutex
	cond    *sync.Cond
	written int64
	err     error  // set once by Abort or a failed Commit
	entry   *Entry // set by Commit
	meta    Meta   // before Commit: what it will write

	// rmu guards r, the readers' handle, which Commit reopens under the
	// complete name (a rename of an open file fails on Windows).
	rmu sync.Mutex
	r   *os.File
}

// Begin starts a new entry; its Write appends ciphertext to N.age.part.
// The caller must end it with Commit or Abort.
func (o Outbox) Begin(meta Meta) (*Pending, error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create outbox: %w", err)
	}
	var r [nameLen / 2]byte
	rand.Read(r[:])
	name := hex.EncodeToString(r[:])
	part := o.path(name, partSuffix)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create outbox file: %w", err)
	}
	rf, err := os.Open(part)
	if err != nil {
		f.Close()
		os.Remove(part)
		return nil, fmt.Errorf("failed to open outbox file: %w", err)
	}
	meta.Version = MetaVersion
	p := &Pending{o: o, name: name, f: f, r: rf, meta: meta}
	p.hw = hashWriter{w: f, h: sha256.New()}
	p.cond = sync.NewCond(&p.mu)
	return p, nil
}

// Name is the entry's local name.
func (p *Pending) Name() string { return p.name }

// Write appends ciphertext. It must not be called concurrently with
// itself, Commit or Abort.
func (p *Pending) Write(b []byte) (int, error) {
	n, err := p.hw.Write(b)
	if n > 0 {
		p.mu.Lock()
		p.written = p.hw.n
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	return n, err
}

// WaitFor blocks until the first n bytes were written, and returns an
// error if the entry was abandoned first, if it was committed shorter
// than n, or if ctx ends.
func (p *Pending) WaitFor(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.written < n && p.err == nil && p.entry == nil && ctx.Err() == nil {
		p.cond.Wait()
	}
	switch {
	case p.written >= n:
		return nil
	case p.err != nil:
		return p.err
	case p.entry != nil:
		return fmt.Errorf("%w: %s is %d bytes, %d were expected", ErrCorrupt, p.name, p.written, n)
	}
	return ctx.Err()
}

// Committed blocks until the entry was committed and returns it, or
// returns the error it was abandoned with, or ctx's.
func (p *Pending) Committed(ctx context.Context) (*Entry, error) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.err == nil && p.entry == nil && ctx.Err() == nil {
		p.cond.Wait()
	}
	switch {
	case p.entry != nil:
		e := *p.entry
		return &e, nil
	case p.err != nil:
		return nil, p.err
	}
	return nil, ctx.Err()
}

// ReadAt reads the ciphertext written so far; use WaitFor first.
func (p *Pending) ReadAt(b []byte, off int64) (int, error) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.r == nil {
		return 0, fmt.Errorf("failed to read outbox entry %s: %w", p.name, os.ErrClosed)
	}
	return p.r.ReadAt(b, off)
}

// SetUploadID records the server's upload id in N.json. Before Commit,
// that N.json is incomplete (no size or hash): it only lets a resume after
// a crash delete the upload of the discarded ciphertext (Listing.Abandoned).
func (p *Pending) SetUploadID(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entry != nil {
		return p.o.SetUploadID(p.entry, id)
	}
	if p.err != nil {
		return p.err
	}
	p.meta.UploadID = id
	return p.o.writeMeta(&Entry{Name: p.name, Meta: p.meta})
}

// Commit completes the entry: it syncs the ciphertext, writes N.json and
// renames N.age.part to N.age. Readers may go on reading. On failure the
// entry is abandoned.
func (p *Pending) Commit(now time.Time) (*Entry, error) {
	e, err := p.commit(now)
	if err != nil {
		p.Abort(err)
		return nil, err
	}
	return e, nil
}

func (p *Pending) commit(now time.Time) (*Entry, error) {
	if err := p.f.Sync(); err != nil {
		return nil, fmt.Errorf("failed to sync outbox file: %w", err)
	}
	if err := p.f.Close(); err != nil {
		return nil, fmt.Errorf("failed to write outbox file: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	meta := p.meta
	meta.Version = MetaVersion
	meta.Size = p.hw.n
	meta.SHA256 = hex.EncodeToString(p.hw.h.Sum(nil))
	meta.Created = now.UTC().Format(time.DateOnly)
	e := &Entry{Name: p.name, Meta: meta}
	if err := p.o.writeMeta(e); err != nil {
		return nil, err
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.r.Close()
	p.r = nil
	if err := os.Rename(p.o.path(p.name, partSuffix), p.o.path(p.name, ageSuffix)); err != nil {
		return nil, fmt.Errorf("failed to complete outbox file: %w", err)
	}
	if err := safefile.SyncDir(p.o.Dir); err != nil {
		return nil, err
	}
	// The entry is complete; if it cannot be reopened, readers fail
	// and the entry waits for resume.
	if r, err := os.Open(p.o.path(p.name, ageSuffix)); err == nil {
		p.r = r
	}
	e.ModTime = now
	p.entry = e
	p.cond.Broadcast()
	ec := *e
	return &ec, nil
}

// Abort abandons an entry that was not committed: its files are removed
// and readers are told err. It does nothing after a successful Commit.
func (p *Pending) Abort(err error) {
	if err == nil {
		err = errAborted
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entry != nil || p.err != nil {
		return
	}
	p.err = err
	p.cond.Broadcast()
	p.f.Close()
	p.rmu.Lock()
	if p.r != nil {
		p.r.Close()
		p.r = nil
	}
	p.rmu.Unlock()
	os.Remove(p.o.path(p.name, partSuffix))
	os.Remove(p.o.path(p.name, ageSuffix)) // a Commit that failed after its rename
	os.Remove(p.o.path(p.name, metaSuffix))
}

// Close releases the readers' handle; call it once reading is done.
func (p *Pending) Close() error {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.r == nil {
		return nil
	}
	err := p.r.Close()
	p.r = nil
	return err
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (o Outbox) path(name, suffix string) string {
	return filepath.Join(o.Dir, name+suffix)
}

func (o Outbox) writeMeta(e *Entry) error {
	data, err := json.Marshal(e.Meta)
	if err != nil {
		return fmt.Errorf("failed to encode outbox metadata: %w", err)
	}
	return safefile.Write(o.path(e.Name, metaSuffix), append(data, '\n'), 0o600)
}

// SetUploadID records the server's upload id for e, so an interrupted
// upload resumes instead of starting over.
func (o Outbox) SetUploadID(e *Entry, id string) error {
	e.Meta.UploadID = id
	return o.writeMeta(e)
}

// Open opens e's ciphertext and checks its size against the metadata.
func (o Outbox) Open(e *Entry) (*os.File, error) {
	f, err := os.Open(o.path(e.Name, ageSuffix))
	if err != nil {
		return nil, fmt.Errorf("failed to open outbox entry %s: %w", e.Name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to open outbox entry %s: %w", e.Name, err)
	}
	if fi.Size() != e.Meta.Size {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %d bytes, its metadata says %d", ErrCorrupt, e.Name, fi.Size(), e.Meta.Size)
	}
	return f, nil
}

// Remove deletes e after its receipt was saved. The ciphertext goes first:
// metadata without ciphertext is cleaned up by Discard, while ciphertext
// without metadata could not be resumed.
func (o Outbox) Remove(e *Entry) error {
	if err := os.Remove(o.path(e.Name, ageSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove outbox entry %s: %w", e.Name, err)
	}
	if err := os.Remove(o.path(e.Name, metaSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove outbox entry %s: %w", e.Name, err)
	}
	return safefile.SyncDir(o.Dir)
}

// Listing is the content of the outbox.
type Listing struct {
	Entries []Entry // complete, oldest first
	// Partial are local names of ciphertexts whose writing was interrupted
	// (N.age.part, or N.json without N.age). Some of their chunks may
	// have been sent, but no upload of them was finished or can be:
	// Discard removes them.
	Partial []string
	// Abandoned are the partial entries whose upload had begun, with the
	// server and upload id of their metadata (Meta.Size and SHA256 are
	// unset): that upload can never be finished and should be deleted.
	Abandoned []Entry
	// Broken are entries whose metadata cannot be read, with the reason.
	Broken map[string]error
}

// List reads the outbox. A missing directory is an empty outbox.
func (o Outbox) List() (*Listing, error) {
	l := &Listing{Broken: map[string]error{}}
	des, err := os.ReadDir(o.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read outbox: %w", err)
	}
	files := map[string]bool{}
	for _, de := range des {
		files[de.Name()] = true
	}
	partial := map[string]bool{}
	for _, de := range des {
		n := de.Name()
		switch {
		case safefile.IsTemp(n):
		case strings.HasSuffix(n, partSuffix):
			partial[strings.TrimSuffix(n, partSuffix)] = true
		case strings.HasSuffix(n, metaSuffix):
			name := strings.TrimSuffix(n, metaSuffix)
			if !files[name+ageSuffix] {
				partial[name] = true
				continue
			}
			e, err := o.load(name)
			if err != nil {
				l.Broken[name] = err
				continue
			}
			l.Entries = append(l.Entries, *e)
		case strings.HasSuffix(n, ageSuffix):
			name := strings.TrimSuffix(n, ageSuffix)
			if !files[name+metaSuffix] {
				l.Broken[name] = fmt.Errorf("%w: %s has no metadata file", ErrCorrupt, n)
			}
		}
	}
	for name := range partial {
		l.Partial = append(l.Partial, name)
	}
	slices.Sort(l.Partial)
	for _, name := range l.Partial {
		if m, err := o.loadPartial(name); err == nil {
			l.Abandoned = append(l.Abandoned, Entry{Name: name, Meta: *m})
		}
	}
	slices.SortFunc(l.Entries, func(a, b Entry) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return l, nil
}

func (o Outbox) load(name string) (*Entry, error) {
	data, err := bounded.ReadFile(o.path(name, metaSuffix), maxMeta)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("%w: metadata of %s is too large", ErrCorrupt, name)
	}
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := strictjson.Decode(data, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata of %s: %v", ErrCorrupt, name, err)
	}
	if m.Version != MetaVersion || m.Server == "" || m.Size <= 0 || !ids.ValidSHA256(m.SHA256) ||
		(m.UploadID != "" && !ids.ValidSubmission(m.UploadID)) || (m.OrgKey == "") != (m.RecipientsVersion == 0) {
		return nil, fmt.Errorf("%w: metadata of %s is incomplete or of an unknown version", ErrCorrupt, name)
	}
	fi, err := os.Stat(o.path(name, ageSuffix))
	if err != nil {
		return nil, err
	}
	return &Entry{Name: name, Meta: m, ModTime: fi.ModTime()}, nil
}

// loadPartial reads the metadata of a partial entry, if it names an
// upload.
func (o Outbox) loadPartial(name string) (*Meta, error) {
	data, err := bounded.ReadFile(o.path(name, metaSuffix), maxMeta)
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := strictjson.Decode(data, &m); err != nil {
		return nil, err
	}
	if m.Version != MetaVersion || m.Server == "" || !ids.ValidSubmission(m.UploadID) {
		return nil, fmt.Errorf("%w: metadata of %s names no upload", ErrCorrupt, name)
	}
	return &m, nil
}

// Discard removes the partial entries of l. Their ciphertext was never
// complete, so no upload of it can have been finished; an upload begun
// from it stays open on the server until it expires.
func (o Outbox) Discard(l *Listing) error {
	if len(l.Partial) == 0 {
		return nil
	}
	for _, name := range l.Partial {
		for _, suffix := range []string{partSuffix, metaSuffix} {
			if err := os.Remove(o.path(name, suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("failed to discard %s: %w", name+suffix, err)
			}
		}
	}
	l.Partial, l.Abandoned = nil, nil
	return safefile.SyncDir(o.Dir)
}
