// Package bundle reads and writes the manifest of a collection bundle: the
// directory a collector fills with ciphertexts and carries to the air-gapped
// reviewer.
//
// A bundle directory holds bundle.json (this package's format), and for every
// submission <id>.age (the age ciphertext) and <id>.receipt.json (the server's
// signed receipt). The reviewer reads bundle.json from a USB stick that anyone
// could have written to, so Parse is strict and bounded: unknown or duplicate
// keys, wrong case, oversized documents, bad ids, hashes or file names are all
// refused rather than guessed at.
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
	"time"

	"github.com/testimony-ngo/testimony/tools/internal/safefile"
)

const (
	// Version is the only bundle.json schema version this package reads and writes.
	Version = 1
	// FileName is the name of the manifest inside a bundle directory.
	FileName = "bundle.json"
	// MaxSize caps bundle.json, so a hostile file cannot exhaust memory.
	MaxSize = 16 << 20
	// MaxEntries caps the number of submissions in one bundle.
	MaxEntries = 100000
	// maxDepth caps JSON nesting; the format needs three levels.
	maxDepth = 3

	idLen        = 32 // 128 random bits as lowercase hex
	sha256HexLen = 64
	ed25519Size  = 32
)

// ErrInvalid is returned (wrapped, with detail) when bundle.json or a Bundle
// value does not conform to the format.
var ErrInvalid = errors.New("invalid bundle")

// Bundle is the content of bundle.json.
type Bundle struct {
	Version int `json:"version"`
	// Created is when the bundle was first written, RFC 3339 in UTC
	// (for example "2026-11-27T10:00:00Z").
	Created string `json:"created"`
	// ReceiptKey is the server's receipt signing key (base64 of a 32-byte
	// Ed25519 public key) that every receipt in the bundle was verified with
	// when it was collected.
	ReceiptKey  string  `json:"receipt_key"`
	Submissions []Entry `json:"submissions"`
}

// Entry describes one submission in a bundle.
type Entry struct {
	ID     string `json:"id"`     // 32 lowercase hex characters
	Size   int64  `json:"size"`   // ciphertext size in bytes
	SHA256 string `json:"sha256"` // ciphertext SHA-256, lowercase hex
	File   string `json:"file"`   // always ID + ".age"
	// Receipt is always ID + ".receipt.json".
	Receipt string `json:"receipt"`
}

// New returns an empty bundle for submissions whose receipts verify with
// receiptKey, created at now.
func New(receiptKey string, now time.Time) *Bundle {
	return &Bundle{
		Version:     Version,
		Created:     now.UTC().Truncate(time.Second).Format(time.RFC3339),
		ReceiptKey:  receiptKey,
		Submissions: []Entry{},
	}
}

// NewEntry returns the entry for a submission, with the file names the
// format requires.
func NewEntry(id string, size int64, sha256Hex string) Entry {
	return Entry{ID: id, Size: size, SHA256: sha256Hex, File: CiphertextName(id), Receipt: ReceiptName(id)}
}

// CiphertextName is the name of a submission's ciphertext inside a bundle.
func CiphertextName(id string) string { return id + ".age" }

// ReceiptName is the name of a submission's receipt inside a bundle.
func ReceiptName(id string) string { return id + ".receipt.json" }

// Lookup returns the entry with the given id.
func (b *Bundle) Lookup(id string) (Entry, bool) {
	for _, e := range b.Submissions {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Add appends e, or replaces the entry with the same id, so that collecting
// the same submission twice never produces a duplicate entry.
func (b *Bundle) Add(e Entry) {
	for i := range b.Submissions {
		if b.Submissions[i].ID == e.ID {
			b.Submissions[i] = e
			return
		}
	}
	b.Submissions = append(b.Submissions, e)
}

// ValidID reports whether s is a well-formed submission id: 32 lowercase hex
// characters. A valid id is also a safe file name component.
func ValidID(s string) bool {
	return len(s) == idLen && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks every field of b against the format.
func (b *Bundle) Validate() error {
	if b.Version != Version {
		return fmt.Errorf("%w: unsupported version %d (want %d)", ErrInvalid, b.Version, Version)
	}
	t, err := time.Parse(time.RFC3339, b.Created)
	if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != b.Created {
		return fmt.Errorf("%w: created %q is not an RFC 3339 UTC time like 2026-11-27T10:00:00Z", ErrInvalid, b.Created)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b.ReceiptKey)
	if err != nil || len(key) != ed25519Size || base64.StdEncoding.EncodeToString(key) != b.ReceiptKey {
		return fmt.Errorf("%w: receipt_key is not a base64 Ed25519 public key", ErrInvalid)
	}
	if len(b.Submissions) > MaxEntries {
		return fmt.Errorf("%w: %d submissions, more than the limit of %d", ErrInvalid, len(b.Submissions), MaxEntries)
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

func (e *Entry) validate() error {
	if !ValidID(e.ID) {
		return fmt.Errorf("id %q is not 32 lowercase hex characters", e.ID)
	}
	if e.Size <= 0 {
		return fmt.Errorf("size %d is not positive", e.Size)
	}
	if len(e.SHA256) != sha256HexLen || !isLowerHex(e.SHA256) {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex characters", e.SHA256)
	}
	if e.File != CiphertextName(e.ID) {
		return fmt.Errorf("file %q must be %q", e.File, CiphertextName(e.ID))
	}
	if e.Receipt != ReceiptName(e.ID) {
		return fmt.Errorf("receipt %q must be %q", e.Receipt, ReceiptName(e.ID))
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
	if b.Submissions == nil {
		return nil, fmt.Errorf("%w: missing submissions", ErrInvalid)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Marshal returns the canonical encoding of b, after validating it.
func (b *Bundle) Marshal() ([]byte, error) {
	if b.Submissions == nil {
		b.Submissions = []Entry{}
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(b, "", "\t")
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
