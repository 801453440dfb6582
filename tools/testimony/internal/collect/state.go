package collect

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/internal/strictjson"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
)

// StateVersion is the collector state file schema version.
const StateVersion = 1

// MaxStateCheckpoints caps how many bundled checkpoints the state keeps;
// older ones can no longer be named with -since.
const MaxStateCheckpoints = 1000

// MaxSeenIDs caps how many collected submission ids the state remembers,
// newest kept. Beyond it the oldest ids are forgotten and a reuse of one
// of them is left to the reviewer, whose check is complete.
const MaxSeenIDs = 1 << 19

// seenRecordSize is the size of one remembered id: its log index (8 bytes,
// big-endian) and the first 8 bytes of the SHA-256 of the id. A shortened
// hash can only make two ids look equal, never two equal ids look
// different, so it may refuse an honest log (by chance about 2^-64 per pair
// of ids) but never misses a reuse. MaxSeenIDs records are 8 MiB, about
// 11 MiB in base64.
const seenRecordSize = 16

// maxStateFile bounds the state file: MaxStateCheckpoints notes of at most
// intakelog.MaxCheckpointSize (real ones are about 200 bytes) and
// MaxSeenIDs ids.
const maxStateFile = 32 << 20

// State is what a collector remembers about one server's log
// (collect/<host_port>.json): the signed checkpoints at which its bundles
// ended, oldest first, and the ids of the submissions it collected with
// their log indexes. The last checkpoint is where the next bundle starts;
// the others let -since name an earlier one the reviewer stopped at.
type State struct {
	Version     int      `json:"version"`
	LogKey      string   `json:"log_key"`
	Checkpoints []string `json:"checkpoints"`
	// Seen is the collected ids, base64 of seenRecordSize-byte records in
	// the order collected: compact, since it grows with every submission.
	// Ids are chosen by the server, and a second leaf under a collected id
	// is refused (ErrReusedID).
	Seen string `json:"seen,omitempty"`

	seen map[[8]byte]int64 // decoded Seen, built on first use
}

// LoadState reads a state file. A missing file is an empty state for
// logKey. A state for another log key is an error: its checkpoints prove
// nothing about this log.
func LoadState(name, logKey string) (*State, error) {
	s, err := readState(name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return &State{Version: StateVersion, LogKey: logKey, Checkpoints: []string{}}, nil
	}
	if s.LogKey != logKey {
		return nil, fmt.Errorf("collector state %s is for the log key %s, not the pinned %s", name, s.LogKey, logKey)
	}
	return s, nil
}

// readState reads and checks a state file of any log key; nil if there is
// none.
func readState(name string) (*State, error) {
	data, err := bounded.ReadFile(name, maxStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("collector state %s is too large", name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read collector state: %w", err)
	}
	var s State
	if err := strictjson.Decode(data, &s); err != nil || s.Version != StateVersion || s.Checkpoints == nil {
		return nil, fmt.Errorf("collector state %s is damaged or of an unknown version", name)
	}
	if _, err := decodeSeen(s.Seen); err != nil {
		return nil, fmt.Errorf("collector state %s is damaged: %v", name, err)
	}
	return &s, nil
}

// LastCheckpoint returns the last bundled checkpoint in a state file,
// whatever its log key, or nil if there is no file or no checkpoint. The
// newest checkpoint this device verified used to be this one; it now has
// a file of its own, made from this one by the caller.
func LastCheckpoint(name string) ([]byte, error) {
	s, err := readState(name)
	if err != nil || s == nil || len(s.Checkpoints) == 0 {
		return nil, err
	}
	return []byte(s.Checkpoints[len(s.Checkpoints)-1]), nil
}

// Save writes the state atomically.
func (s *State) Save(name string) error {
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to save collector state: %w", err)
	}
	return safefile.Write(name, append(data, '\n'), 0o600)
}

// Last returns the newest bundled checkpoint and its size, or nil and 0.
func (s *State) Last() ([]byte, int64, error) {
	if len(s.Checkpoints) == 0 {
		return nil, 0, nil
	}
	raw := []byte(s.Checkpoints[len(s.Checkpoints)-1])
	cp, err := intakelog.OpenCheckpoint(raw, s.LogKey)
	if err != nil {
		return nil, 0, fmt.Errorf("the last bundled checkpoint in the collector state: %w", err)
	}
	return raw, cp.Size, nil
}

// Find returns the bundled checkpoint of the given size, or nil.
func (s *State) Find(size int64) []byte {
	for i := len(s.Checkpoints) - 1; i >= 0; i-- {
		raw := []byte(s.Checkpoints[i])
		if cp, err := intakelog.OpenCheckpoint(raw, s.LogKey); err == nil && cp.Size == size {
			return raw
		}
	}
	return nil
}

// Sizes lists the sizes of the bundled checkpoints, for a message.
func (s *State) Sizes() []string {
	var out []string
	for _, c := range s.Checkpoints {
		if cp, err := intakelog.OpenCheckpoint([]byte(c), s.LogKey); err == nil {
			out = append(out, strconv.FormatInt(cp.Size, 10))
		}
	}
	return out
}

// Record appends a bundled checkpoint, unless it is the last one already.
func (s *State) Record(raw []byte) {
	if n := len(s.Checkpoints); n > 0 && s.Checkpoints[n-1] == string(raw) {
		return
	}
	s.Checkpoints = append(s.Checkpoints, string(raw))
	if n := len(s.Checkpoints); n > MaxStateCheckpoints {
		s.Checkpoints = append([]string{}, s.Checkpoints[n-MaxStateCheckpoints:]...)
	}
}

// decodeSeen decodes and checks State.Seen.
func decodeSeen(enc string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(enc)
	switch {
	case err != nil:
		return nil, fmt.Errorf("seen ids: %v", err)
	case len(raw)%seenRecordSize != 0:
		return nil, fmt.Errorf("seen ids: %d bytes is not a whole number of records", len(raw))
	case len(raw)/seenRecordSize > MaxSeenIDs:
		return nil, fmt.Errorf("seen ids: more than %d", MaxSeenIDs)
	}
	for r := raw; len(r) > 0; r = r[seenRecordSize:] {
		if int64(binary.BigEndian.Uint64(r)) < 0 {
			return nil, fmt.Errorf("seen ids: negative log index")
		}
	}
	return raw, nil
}

func idKey(id string) [8]byte {
	sum := sha256.Sum256([]byte(id))
	return [8]byte(sum[:8])
}

// SeenAt returns the log index at which this device collected a submission
// with this id before, if it did.
func (s *State) SeenAt(id string) (int64, bool) {
	if s.seen == nil {
		raw, _ := decodeSeen(s.Seen) // checked by LoadState
		s.seen = make(map[[8]byte]int64, len(raw)/seenRecordSize)
		for r := raw; len(r) > 0; r = r[seenRecordSize:] {
			s.seen[[8]byte(r[8:16])] = int64(binary.BigEndian.Uint64(r))
		}
	}
	index, ok := s.seen[idKey(id)]
	return index, ok
}

// AddSeen remembers the ids of collected leaves, dropping the oldest beyond
// MaxSeenIDs. Leaves remembered already (collected again with -since) are
// not added twice.
func (s *State) AddSeen(leaves []bundle.Leaf) {
	raw, _ := decodeSeen(s.Seen)
	for _, l := range leaves {
		if at, ok := s.SeenAt(l.ID); ok && at == l.Index {
			continue
		}
		var r [seenRecordSize]byte
		binary.BigEndian.PutUint64(r[:8], uint64(l.Index))
		k := idKey(l.ID)
		copy(r[8:], k[:])
		raw = append(raw, r[:]...)
		s.seen[k] = l.Index
	}
	if n := len(raw) / seenRecordSize; n > MaxSeenIDs {
		raw = raw[(n-MaxSeenIDs)*seenRecordSize:]
		s.seen = nil
	}
	s.Seen = base64.StdEncoding.EncodeToString(raw)
}
