// Package state keeps what the reviewer's air-gapped machine remembers
// between runs: the pinned intake-log key and the last checkpoint it
// verified (log.json), the submissions it opened with their log leaves
// and the log they are of (opened.json), the submissions that verified but
// failed to open, and who waived the ones that will never be opened
// (failed.json), and the caseworker keys it knows (caseworkers.json).
//
// The machine acts as a witness of the server's intake log: the checkpoint
// in log.json is the history it has checked, and every new bundle must
// extend it. Whoever can rewrite these files can make the reviewer accept a
// forked log, so the directory is created 0700 and the files 0600.
//
// Every file is written atomically (temporary file, fsync, rename), so a
// crash leaves the old or the new content, never a torn file. Reads are
// strict and bounded: unknown fields, trailing data and oversized files are
// refused, because a state file that silently lost a field would weaken the
// checks that depend on it.
//
// # Caveats
//
// Two reviewers' runs on one state directory at the same moment can lose
// one run's update. The last writer wins; nothing is locked.
package state

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// EnvHome names the environment variable that overrides the state directory.
const EnvHome = "TESTIMONY_REVIEW_HOME"

// Names of the state files inside the directory.
const (
	LogFile         = "log.json"
	OpenedFile      = "opened.json"
	FailedFile      = "failed.json"
	CaseworkersFile = "caseworkers.json"
)

// Version is the schema version of log.json and caseworkers.json.
const Version = 1

// OpenedVersion and FailedVersion are the schema versions of opened.json
// and failed.json. Version 2 ties each entry to its log leaf (leaf hash)
// and to its log (log key), so that a record cannot be taken for another
// leaf under the same id and index: a new log's, or a fork's. Version 1
// files are still read; see Opened and Failed for what they lack.
const (
	OpenedVersion = 2
	FailedVersion = 2
)

// Size limits of the state files. opened.json grows by about 110 bytes per
// opened submission, so its limit allows about half a million of them.
const (
	maxLogFile         = 64 << 10
	maxOpenedFile      = 64 << 20
	maxFailedFile      = 64 << 20
	maxCaseworkersFile = 4 << 20
)

// ErrCorrupt means a state file exists but cannot be parsed; it is never
// replaced silently, since it may hold the only record of what the machine
// verified.
var ErrCorrupt = errors.New("state file is corrupt")

// Dir returns the state directory: $TESTIMONY_REVIEW_HOME if set, otherwise
// testimony-review inside the user's configuration directory.
func Dir() (string, error) {
	if d := os.Getenv(EnvHome); d != "" {
		return d, nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("failed to find the state directory (set %s): %w", EnvHome, err)
	}
	return filepath.Join(cfg, "testimony-review"), nil
}

// Store reads and writes the state files in one directory.
type Store struct {
	dir string
}

// New returns a Store for dir. Nothing is created until something is saved.
func New(dir string) *Store { return &Store{dir: dir} }

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of a state file.
func (s *Store) Path(name string) string { return filepath.Join(s.dir, name) }

// Log is the content of log.json.
type Log struct {
	Version int `json:"version"`
	// LogKey is the pinned note verifier key of the intake log.
	LogKey string `json:"log_key"`
	// Checkpoint is the signed checkpoint (note text) of the last bundle
	// opened on this machine, empty before the first one.
	Checkpoint string `json:"checkpoint"`
}

// Log returns the content of log.json, or an empty Log if there is none.
func (s *Store) Log() (*Log, error) {
	var l Log
	ok, err := s.read(LogFile, maxLogFile, &l)
	if err != nil || !ok {
		return &Log{Version: Version}, err
	}
	if l.Checkpoint != "" && l.LogKey == "" {
		return nil, fmt.Errorf("%w: %s has a checkpoint but no log key", ErrCorrupt, s.Path(LogFile))
	}
	return &l, nil
}

// SaveLog replaces log.json.
func (s *Store) SaveLog(l *Log) error {
	c := *l
	c.Version = Version
	return s.write(LogFile, &c)
}

// Opened is the content of opened.json: the submissions opened on this
// machine, all from one log.
//
// A bundle may leave out a leaf that was opened here before, so this
// record decides whether a missing leaf is accounted for or withheld. It
// can only say so for the very leaf it recorded: the same id at the same
// index of the same log, with the same leaf hash.
type Opened struct {
	// LogKey is the key of the log the submissions were opened from. It
	// is empty only in a version 1 file, which did not record it.
	LogKey string `json:"log_key"`
	// Entries maps the id of each submission opened to its leaf.
	Entries map[string]OpenedLeaf `json:"opened"`
}

// OpenedLeaf is the log leaf a submission was opened from.
type OpenedLeaf struct {
	Index int64 `json:"index"`
	// LeafHash is the leaf's RFC 6962 record hash, base64, as in
	// custody.json. It is empty for a submission recorded by a version 1
	// file, which kept only the index; the next time its leaf is in a
	// bundle and its folder is recognised as already open, it is filled
	// in.
	LeafHash string `json:"leaf_hash"`
}

// openedV1 is opened.json of version 1: id -> log index, no log key.
type openedV1 struct {
	Version int              `json:"version"`
	Opened  map[string]int64 `json:"opened"`
}

type openedV2 struct {
	Version int `json:"version"`
	Opened
}

// Opened returns the submissions opened on this machine; an empty record
// if there is no opened.json. A version 1 file is read with an empty
// LogKey and empty leaf hashes.
func (s *Store) Opened() (*Opened, error) {
	data, version, err := s.load(OpenedFile, maxOpenedFile, 1, OpenedVersion)
	if err != nil || data == nil {
		return &Opened{Entries: map[string]OpenedLeaf{}}, err
	}
	path := s.Path(OpenedFile)
	o := &Opened{Entries: map[string]OpenedLeaf{}}
	if version == 1 {
		var v1 openedV1
		if err := decode(path, data, &v1); err != nil {
			return nil, err
		}
		for id, i := range v1.Opened {
			o.Entries[id] = OpenedLeaf{Index: i}
		}
	} else {
		var v2 openedV2
		if err := decode(path, data, &v2); err != nil {
			return nil, err
		}
		if v2.Entries != nil {
			o.Entries = v2.Entries
		}
		o.LogKey = v2.LogKey
		if len(o.Entries) > 0 && o.LogKey == "" {
			return nil, fmt.Errorf("%w: %s lists opened submissions but no log key", ErrCorrupt, path)
		}
	}
	for id, e := range o.Entries {
		if !ids.ValidSubmission(id) || e.Index < 0 || (version > 1 && e.LeafHash != "" && !validLeafHash(e.LeafHash)) {
			return nil, fmt.Errorf("%w: %s: bad entry %q: %d", ErrCorrupt, path, id, e.Index)
		}
	}
	return o, nil
}

// SaveOpened replaces opened.json, as version 2.
func (s *Store) SaveOpened(o *Opened) error {
	c := *o
	if c.Entries == nil {
		c.Entries = map[string]OpenedLeaf{}
	}
	if len(c.Entries) > 0 && c.LogKey == "" {
		return errors.New("failed to save opened submissions: no log key")
	}
	return s.write(OpenedFile, &openedV2{Version: OpenedVersion, Opened: c})
}

// validLeafHash reports whether h is a base64 SHA-256 hash.
func validLeafHash(h string) bool {
	b, err := base64.StdEncoding.Strict().DecodeString(h)
	return err == nil && len(b) == sha256.Size
}

// Failed is a submission whose bundle verified but which failed to open
// (no matching identity, a damaged ciphertext, a bad signature…). The
// witness state moves past its leaf with the bundle, so this record is
// what keeps it from being forgotten: open lists it, and fails, until it
// is opened or waived.
type Failed struct {
	ID    string `json:"id"`
	Index int64  `json:"index"`
	// LeafHash is the leaf's RFC 6962 record hash, base64, as in
	// custody.json: a later bundle retries the submission, or resolves
	// it by opening it, only if its leaf has this hash. Another leaf
	// under the same id is refused, even at the same index of another
	// log.
	LeafHash string `json:"leaf_hash"`
	// LogKey is the key of the log it was logged in; empty for a
	// submission recorded by a version 1 file, which did not record it.
	LogKey string `json:"log_key"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// BundleSize is the log size at which the bundle that carried it
	// ended, to find that bundle again.
	BundleSize int64 `json:"bundle_size"`
	// Failed is when it first failed to open, RFC 3339 UTC; Reason is
	// the last failure.
	Failed string `json:"failed"`
	Reason string `json:"reason"`
	// Waiver, if set, resolves it without opening it.
	Waiver *Waiver `json:"waiver,omitempty"`
}

// Waiver is the record of a reviewer's decision not to open a failed
// submission.
type Waiver struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
	// At is when it was waived, RFC 3339 UTC.
	At   string `json:"at"`
	Tool string `json:"tool"`
}

type failed struct {
	Version int      `json:"version"`
	Failed  []Failed `json:"failed"`
}

// Failed returns the failed submissions in the order they first failed;
// none if there is no failed.json. Entries of a version 1 file have an
// empty LogKey.
func (s *Store) Failed() ([]Failed, error) {
	data, version, err := s.load(FailedFile, maxFailedFile, 1, FailedVersion)
	if err != nil || data == nil {
		return nil, err
	}
	var f failed
	if err := decode(s.Path(FailedFile), data, &f); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(f.Failed))
	for _, e := range f.Failed {
		if !ids.ValidSubmission(e.ID) || e.Index < 0 || e.LeafHash == "" || seen[e.ID] || (version == 1 && e.LogKey != "") {
			return nil, fmt.Errorf("%w: %s: bad entry %q at %d", ErrCorrupt, s.Path(FailedFile), e.ID, e.Index)
		}
		seen[e.ID] = true
	}
	return f.Failed, nil
}

// SaveFailed replaces failed.json.
func (s *Store) SaveFailed(list []Failed) error {
	if list == nil {
		list = []Failed{}
	}
	return s.write(FailedFile, &failed{Version: FailedVersion, Failed: list})
}

// Caseworker is a caseworker device key the reviewers know.
type Caseworker struct {
	Name string `json:"name"`
	// Key is the device public key, "tdk1…".
	Key string `json:"key"`
	// Added is the UTC date the key was added.
	Added string `json:"added"`
}

type caseworkers struct {
	Version     int          `json:"version"`
	Caseworkers []Caseworker `json:"caseworkers"`
}

// Caseworkers returns the known caseworker keys in the order they were
// added; none if there is no caseworkers.json.
func (s *Store) Caseworkers() ([]Caseworker, error) {
	var c caseworkers
	_, err := s.read(CaseworkersFile, maxCaseworkersFile, &c)
	return c.Caseworkers, err
}

// SaveCaseworkers replaces caseworkers.json.
func (s *Store) SaveCaseworkers(list []Caseworker) error {
	if list == nil {
		list = []Caseworker{}
	}
	return s.write(CaseworkersFile, &caseworkers{Version: Version, Caseworkers: list})
}

// read decodes a state file of version Version into v; ok is false if the
// file does not exist.
func (s *Store) read(name string, max int64, v any) (ok bool, err error) {
	data, _, err := s.load(name, max, Version)
	if err != nil || data == nil {
		return false, err
	}
	return true, decode(s.Path(name), data, v)
}

// load reads a state file whose version is one of versions; data is nil
// if the file does not exist.
func (s *Store) load(name string, max int64, versions ...int) (data []byte, version int, err error) {
	path := s.Path(name)
	data, err = bounded.ReadFile(path, max)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, 0, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, max)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var ver struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &ver); err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if !slices.Contains(versions, ver.Version) {
		return nil, 0, fmt.Errorf("%w: %s: version %d, want %d", ErrCorrupt, path, ver.Version, versions[len(versions)-1])
	}
	return data, ver.Version, nil
}

// decode decodes a state file strictly: no unknown fields, no trailing
// data.
func decode(path string, data []byte, v any) error {
	if err := strictjson.Decode(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return nil
}

func (s *Store) write(name string, v any) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("failed to create state directory: %w", err)
	}
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", name, err)
	}
	return safefile.Write(s.Path(name), append(data, '\n'), 0o600)
}
