// Package envelope builds and opens the plaintext that testimony encrypts
// with age: a tar archive holding manifest.json and the submitted files,
// padded with zero bytes to a Padmé length.
//
// The format is plain tar on purpose, so a reviewer can always fall back to
// "age -d file.age | tar t" with standard tools. manifest.json comes first
// and records the testimony metadata and, per file, its size, SHA-256 and
// media type; Extract checks every file against it. A tar made by plain
// "tar c … | age" without a manifest is also accepted by Extract, with
// directories allowed, so a caseworker without the testimony tool can still
// submit.
//
// The padding hides most of the plaintext size from anyone who sees the
// ciphertext (a server operator, a network observer): Padmé rounds lengths
// so that at most O(log log n) bits of the length leak, for at most about
// 12% overhead.
//
// # Caveats
//
// Extract writes into a directory that the caller should treat as
// untrusted until Extract returns without error: on error it may hold some
// files, and the caller should delete it. The usual pattern is to extract
// into a fresh temporary directory and rename it into place on success.
//
// Names that differ only in case or Unicode normalisation (NFC/NFD) are
// refused as duplicates, because macOS and Windows file systems would merge
// them and a reviewer could see a different file than the manifest
// describes.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// ManifestName is the name of the first tar entry of an envelope.
const ManifestName = "manifest.json"

// ManifestVersion is the manifest schema version this package writes and reads.
const ManifestVersion = 1

// DateFormat is the layout of Manifest.Created and Manifest.InterviewDate.
const DateFormat = "2006-01-02"

// Bounds on manifest fields, so that what a reviewer is shown stays sane.
const (
	// MaxMetaLength bounds each of Case, Language and Consent, in bytes.
	MaxMetaLength = 4096
	// MaxMediaTypeLength bounds File.MediaType, in bytes.
	MaxMediaTypeLength = 255
)

// ErrInvalid is wrapped by every error about the content of an envelope or
// manifest (as opposed to a failure to read or write), so callers can tell
// a hostile or broken submission from a full disk.
var ErrInvalid = errors.New("invalid envelope")

// Manifest is the content of manifest.json.
type Manifest struct {
	Version       int    `json:"version"`
	Case          string `json:"case,omitempty"`
	InterviewDate string `json:"interview_date,omitempty"`
	Language      string `json:"language,omitempty"`
	Consent       string `json:"consent,omitempty"`
	// Created is the UTC date the envelope was built (no time of day).
	Created string `json:"created"`
	Files   []File `json:"files"`
}

// File describes one file of an envelope.
type File struct {
	// Name is the file's base name (for a plain tarball without a
	// manifest, its slash-separated relative path).
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // lowercase hex
	MediaType string `json:"media_type"`
}

// Meta is the testimony metadata a caseworker supplies to Build. Every field
// is optional; InterviewDate, if set, is a date like 2026-11-27.
type Meta struct {
	Case, InterviewDate, Language, Consent string
}

// ParseManifest decodes and validates manifest.json content with
// DefaultLimits: exact field names, no duplicates or nulls, the supported
// version, well-formed dates, names, sizes and hashes, and no two files
// whose names differ only in case or Unicode normalisation.
func ParseManifest(data []byte) (*Manifest, error) {
	return parseManifest(data, DefaultLimits)
}

func parseManifest(data []byte, lim Limits) (*Manifest, error) {
	if int64(len(data)) > lim.MaxManifestSize {
		return nil, invalidf("manifest.json is larger than %d bytes", lim.MaxManifestSize)
	}
	// Look at the version first, so a newer manifest gets a clear message
	// rather than an "unknown field" one.
	var v struct {
		Version int `json:"version"`
	}
	if json.Unmarshal(data, &v) == nil && v.Version > ManifestVersion {
		return nil, invalidf("manifest.json has version %d; this program reads version %d (update it)", v.Version, ManifestVersion)
	}
	m := new(Manifest)
	if err := strictjson.Unmarshal(data, m); err != nil {
		return nil, invalidf("manifest.json: %v", err)
	}
	if err := m.validate(lim); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks everything about m that Extract relies on. Build runs it
// too, so that every envelope Build writes is one Extract accepts.
func (m *Manifest) validate(lim Limits) error {
	if m.Version != ManifestVersion {
		return invalidf("manifest.json has version %d; this program reads version %d", m.Version, ManifestVersion)
	}
	if !isDate(m.Created) {
		return invalidf("manifest.json: created must be a date like 2026-11-27")
	}
	if m.InterviewDate != "" && !isDate(m.InterviewDate) {
		return invalidf("manifest.json: interview_date must be a date like 2026-11-27")
	}
	for _, f := range []struct{ name, value string }{
		{"case", m.Case}, {"language", m.Language}, {"consent", m.Consent},
	} {
		if err := checkText(f.value); err != nil {
			return invalidf("manifest.json: %s %v", f.name, err)
		}
	}
	if m.Files == nil {
		return invalidf("manifest.json: files is missing")
	}
	if len(m.Files) > lim.MaxEntries-1 {
		return invalidf("manifest.json lists %d files, more than the limit of %d", len(m.Files), lim.MaxEntries-1)
	}
	seen := map[string]string{foldKey(ManifestName): ManifestName, foldKey(SignatureName): SignatureName}
	var total int64
	for _, f := range m.Files {
		q := quoteName(f.Name)
		if err := checkComponent(f.Name); err != nil {
			return fmt.Errorf("manifest.json: file %s: %w", q, err)
		}
		k := foldKey(f.Name)
		if prev, ok := seen[k]; ok {
			return fmt.Errorf("manifest.json: file %s: %w", q, duplicateError(f.Name, prev))
		}
		seen[k] = f.Name
		if f.Size < 0 {
			return invalidf("manifest.json: file %s: negative size", q)
		}
		if f.Size > lim.MaxFileSize {
			return invalidf("manifest.json: file %s: %d bytes, more than the limit of %d", q, f.Size, lim.MaxFileSize)
		}
		total += f.Size
		if total > lim.MaxTotalSize {
			return invalidf("manifest.json: files total more than the limit of %d bytes", lim.MaxTotalSize)
		}
		if !ids.ValidSHA256(f.SHA256) {
			return invalidf("manifest.json: file %s: sha256 must be 64 lowercase hex characters", q)
		}
		if len(f.MediaType) > MaxMediaTypeLength {
			return invalidf("manifest.json: file %s: media_type is longer than %d bytes", q, MaxMediaTypeLength)
		}
		if _, _, err := mime.ParseMediaType(f.MediaType); err != nil {
			return invalidf("manifest.json: file %s: media_type is not a valid media type", q)
		}
	}
	return nil
}

// checkText allows free text, including line breaks, but no other control
// characters: a terminal escape sequence in a case reference would run on
// the reviewer's terminal.
func checkText(s string) error {
	if len(s) > MaxMetaLength {
		return fmt.Errorf("is longer than %d bytes", MaxMetaLength)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || isBidiControl(r)) {
			return fmt.Errorf("contains the control character %U", r)
		}
	}
	return nil
}

func isDate(s string) bool {
	t, err := time.Parse(DateFormat, s)
	return err == nil && t.Format(DateFormat) == s
}

// invalidError is an error about envelope content; it matches ErrInvalid.
type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return invalidError(fmt.Sprintf(format, args...))
}
