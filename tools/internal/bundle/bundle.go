// Package bundle reads and writes the manifest of a collection bundle: the
// directory a collector fills with ciphertexts and carries to the air-gapped
// reviewer.
//
// A bundle directory holds bundle.json (this package's format) and, for every
// submission it delivers, <id>.age (the age ciphertext). bundle.json carries
// a slice [FromSize, N) of the server's intake log: the signed checkpoint of
// size N, the signed checkpoint of size FromSize the slice continues from (the
// reviewer's last verified one), the consistency proof between the two, every
// leaf in the slice with its inclusion proof at size N, and the submissions
// whose ciphertexts are in the directory.
//
// The reviewer reads bundle.json from a USB stick that anyone could have
// written to, so Parse is strict and bounded: unknown or duplicate keys, wrong
// case, oversized documents, malformed ids, hashes, proofs or file names are
// all refused rather than guessed at.
//
// Validate checks the form of every field, not what the fields prove: it
// verifies no signature or proof, and does not check that leaves and
// submissions agree or that the leaves cover the slice. Those are the
// reviewer's checks (testimony-review log verify), which name each
// discrepancy — a dropped submission, a swapped ciphertext, a rewritten
// history — instead of calling the bundle malformed.
//
// The package imports no networking code: the reviewer's binary links it and
// must link no networking package.
package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/safefile"
)

const (
	// Version is the only bundle.json schema version this package reads and writes.
	Version = 2
	// FileName is the name of the manifest inside a bundle directory.
	FileName = "bundle.json"
	// MaxSize caps bundle.json, so a hostile file cannot exhaust memory. Every
	// leaf carries an inclusion proof of about log2(N) hashes, roughly 1 KiB
	// per leaf for a log of a million entries.
	MaxSize = 64 << 20
	// MaxEntries caps the number of leaves, and of submissions, in one bundle.
	MaxEntries = 100000
	// MaxProof caps the number of hashes in one inclusion or consistency
	// proof; 64 hashes cover any log this system will ever hold.
	MaxProof = 64
	// MaxNoteSize caps a signed checkpoint and the log key.
	MaxNoteSize = 8 << 10

	hashSize   = 32
	dateLayout = "2006-01-02"
)

// ErrInvalid is returned (wrapped, with detail) when bundle.json or a Bundle
// value does not conform to the format.
var ErrInvalid = errors.New("invalid bundle")

// DuplicateIDError is the ErrInvalid of a bundle whose log leaves name one
// submission id twice. Ids are chosen by the server and a reviewer opens a
// submission into a folder named by its id, so a second leaf under a used
// id would pass for the first: the reviewer names it as an attack, which is
// why it has its own type.
type DuplicateIDError struct {
	ID            string
	First, Second int64 // the leaves' log indexes
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("%v: leaves %d and %d both have id %s", ErrInvalid, e.First, e.Second, e.ID)
}

// Is makes a DuplicateIDError match ErrInvalid.
func (e *DuplicateIDError) Is(target error) bool { return target == ErrInvalid }

// Bundle is the content of bundle.json.
type Bundle struct {
	Version int `json:"version"`
	// Created is when the bundle was written, RFC 3339 in UTC
	// (for example "2026-11-27T10:00:00Z").
	Created string `json:"created"`
	// LogKey is the log's note verifier key the collector verified the
	// checkpoints with. The reviewer uses its own pinned key, never this one.
	LogKey string `json:"log_key"`
	// FromSize is the log size the bundle continues from: 0 for a bundle
	// that starts at the beginning of the log.
	FromSize int64 `json:"from_size"`
	// FromCheckpoint is the signed checkpoint of size FromSize, empty if and
	// only if FromSize is 0.
	FromCheckpoint string `json:"from_checkpoint"`
	// Checkpoint is the signed checkpoint the bundle ends at; its size N is
	// the end of the slice.
	Checkpoint string `json:"checkpoint"`
	// Consistency is the proof (base64 hashes) that the tree of size N
	// extends the tree of size FromSize; empty when FromSize is 0 or N.
	Consistency []string `json:"consistency"`
	// Leaves are the log entries FromSize … N-1.
	Leaves []Leaf `json:"leaves"`
	// Submissions are the ciphertexts in the bundle directory.
	Submissions []Entry `json:"submissions"`
}

// Leaf is one log entry with its inclusion proof at the bundle's checkpoint.
type Leaf struct {
	Index  int64    `json:"index"`
	ID     string   `json:"id"`     // 32 lowercase hex characters
	SHA256 string   `json:"sha256"` // ciphertext SHA-256, lowercase hex
	Size   int64    `json:"size"`   // ciphertext size in bytes
	Date   string   `json:"date"`   // UTC date received, YYYY-MM-DD
	Proof  []string `json:"proof"`  // inclusion proof, base64 hashes
}

// Entry describes one submission whose ciphertext is in the bundle.
type Entry struct {
	ID     string `json:"id"`     // 32 lowercase hex characters
	Size   int64  `json:"size"`   // ciphertext size in bytes
	SHA256 string `json:"sha256"` // ciphertext SHA-256, lowercase hex
	File   string `json:"file"`   // always ID + ".age"
	Index  int64  `json:"index"`  // the submission's log leaf
}

// NewEntry returns the entry for a submission, with the file name the
// format requires.
func NewEntry(id string, size int64, sha256Hex string, index int64) Entry {
	return Entry{ID: id, Size: size, SHA256: sha256Hex, File: CiphertextName(id), Index: index}
}

// CiphertextName is the name of a submission's ciphertext inside a bundle.
func CiphertextName(id string) string { return id + ".age" }

// CreatedAt formats t as a Created value.
func CreatedAt(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// Lookup returns the submission entry with the given id.
func (b *Bundle) Lookup(id string) (Entry, bool) {
	for _, e := range b.Submissions {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Validate checks the form of every field of b (see the package comment for
// what it does not check).
func (b *Bundle) Validate() error {
	if b.Version != Version {
		return fmt.Errorf("%w: unsupported version %d (want %d)", ErrInvalid, b.Version, Version)
	}
	t, err := time.Parse(time.RFC3339, b.Created)
	if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != b.Created {
		return fmt.Errorf("%w: created %q is not an RFC 3339 UTC time like 2026-11-27T10:00:00Z", ErrInvalid, b.Created)
	}
	if len(b.LogKey) > MaxNoteSize || strings.ContainsAny(b.LogKey, "\r\n") {
		return fmt.Errorf("%w: log_key is not a note verifier key", ErrInvalid)
	}
	if _, err := note.NewVerifier(b.LogKey); err != nil {
		return fmt.Errorf("%w: log_key is not a note verifier key", ErrInvalid)
	}
	if b.FromSize < 0 {
		return fmt.Errorf("%w: from_size %d is negative", ErrInvalid, b.FromSize)
	}
	if b.FromSize == 0 && b.FromCheckpoint != "" {
		return fmt.Errorf("%w: from_checkpoint must be empty when from_size is 0", ErrInvalid)
	}
	if b.FromSize > 0 {
		if err := checkNote("from_checkpoint", b.FromCheckpoint); err != nil {
			return err
		}
	}
	if err := checkNote("checkpoint", b.Checkpoint); err != nil {
		return err
	}
	if b.Consistency == nil {
		return fmt.Errorf("%w: missing consistency", ErrInvalid)
	}
	if err := checkProof(b.Consistency); err != nil {
		return fmt.Errorf("%w: consistency: %v", ErrInvalid, err)
	}
	if b.Leaves == nil {
		return fmt.Errorf("%w: missing leaves", ErrInvalid)
	}
	if b.Submissions == nil {
		return fmt.Errorf("%w: missing submissions", ErrInvalid)
	}
	if len(b.Leaves) > MaxEntries {
		return fmt.Errorf("%w: %d leaves, more than the limit of %d", ErrInvalid, len(b.Leaves), MaxEntries)
	}
	if len(b.Submissions) > MaxEntries {
		return fmt.Errorf("%w: %d submissions, more than the limit of %d", ErrInvalid, len(b.Submissions), MaxEntries)
	}
	leafIDs := make(map[string]int64, len(b.Leaves))
	for i, l := range b.Leaves {
		if err := l.validate(); err != nil {
			return fmt.Errorf("%w: leaf %d: %v", ErrInvalid, i, err)
		}
		if prev, ok := leafIDs[l.ID]; ok {
			return &DuplicateIDError{ID: l.ID, First: prev, Second: l.Index}
		}
		leafIDs[l.ID] = l.Index
	}
	seen := make(map[string]bool, len(b.Submissions))
	for i, e := range b.Submissions {
		if err := e.validate(); err != nil {
			return fmt.Errorf("%w: submission %d: %v", ErrInvalid, i, err)
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: submission %s listed twice", ErrInvalid, e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

// checkNote checks that s could be a signed note: not empty, bounded,
// UTF-8 text ending in a newline. Its signatures are the reviewer's concern.
func checkNote(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	case len(s) > MaxNoteSize:
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, field, MaxNoteSize)
	case !utf8.ValidString(s) || !strings.HasSuffix(s, "\n"):
		return fmt.Errorf("%w: %s is not a signed note", ErrInvalid, field)
	}
	return nil
}

func checkProof(p []string) error {
	if len(p) > MaxProof {
		return fmt.Errorf("%d hashes, more than the limit of %d", len(p), MaxProof)
	}
	for i, h := range p {
		raw, err := base64.StdEncoding.Strict().DecodeString(h)
		if err != nil || len(raw) != hashSize || base64.StdEncoding.EncodeToString(raw) != h {
			return fmt.Errorf("hash %d is not a base64 SHA-256 hash", i)
		}
	}
	return nil
}

func checkHash(sum string) error {
	if !ids.ValidSHA256(sum) {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex characters", sum)
	}
	return nil
}

func (l *Leaf) validate() error {
	if l.Index < 0 {
		return fmt.Errorf("index %d is negative", l.Index)
	}
	if !ids.ValidSubmission(l.ID) {
		return fmt.Errorf("id %q is not 32 lowercase hex characters", l.ID)
	}
	if err := checkHash(l.SHA256); err != nil {
		return err
	}
	if l.Size <= 0 {
		return fmt.Errorf("size %d is not positive", l.Size)
	}
	if d, err := time.Parse(dateLayout, l.Date); err != nil || d.Format(dateLayout) != l.Date {
		return fmt.Errorf("date %q is not a date like 2026-11-27", l.Date)
	}
	if l.Proof == nil {
		return errors.New("missing proof")
	}
	if err := checkProof(l.Proof); err != nil {
		return fmt.Errorf("proof: %v", err)
	}
	return nil
}

func (e *Entry) validate() error {
	if !ids.ValidSubmission(e.ID) {
		return fmt.Errorf("id %q is not 32 lowercase hex characters", e.ID)
	}
	if e.Size <= 0 {
		return fmt.Errorf("size %d is not positive", e.Size)
	}
	if err := checkHash(e.SHA256); err != nil {
		return err
	}
	if e.File != CiphertextName(e.ID) {
		return fmt.Errorf("file %q must be %q", e.File, CiphertextName(e.ID))
	}
	if e.Index < 0 {
		return fmt.Errorf("index %d is negative", e.Index)
	}
	return nil
}

// Read reads and parses dir/bundle.json. If the file does not exist the
// error wraps fs.ErrNotExist.
func Read(dir string) (*Bundle, error) {
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("failed to read bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read bundle: %w", err)
	}
	return Parse(data)
}

// Parse parses and validates the content of a bundle.json.
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, FileName, MaxSize)
	}
	if err := checkKeys(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Marshal returns the canonical encoding of b, after validating it. Nil
// slices are encoded as empty lists.
func (b *Bundle) Marshal() ([]byte, error) {
	c := *b
	if c.Consistency == nil {
		c.Consistency = []string{}
	}
	if c.Leaves == nil {
		c.Leaves = []Leaf{}
	}
	if c.Submissions == nil {
		c.Submissions = []Entry{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(&c, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("failed to encode bundle: %w", err)
	}
	data = append(data, '\n')
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: encoded bundle is larger than %d bytes", ErrInvalid, MaxSize)
	}
	return data, nil
}

// Write validates b and atomically replaces dir/bundle.json with it: the
// new content goes to a temporary file in dir, which is synced and renamed
// over bundle.json, and then dir itself is synced. A crash at any moment
// leaves either the old or the new bundle.json, never a torn one.
func (b *Bundle) Write(dir string) error {
	data, err := b.Marshal()
	if err != nil {
		return err
	}
	// The bundle holds no secrets, and other local accounts (the reviewer's
	// copy tool) may need to read it.
	if err := safefile.Write(filepath.Join(dir, FileName), data, 0o644); err != nil {
		return fmt.Errorf("failed to write bundle: %w", err)
	}
	return nil
}
