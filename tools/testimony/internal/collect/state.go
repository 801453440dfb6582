package collect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/safefile"
)

// StateVersion is the collector state file schema version.
const StateVersion = 1

// MaxStateCheckpoints caps how many bundled checkpoints the state keeps;
// older ones can no longer be named with -since.
const MaxStateCheckpoints = 1000

// maxStateFile bounds the state file: MaxStateCheckpoints notes of at most
// intakelog.MaxCheckpointSize, though real ones are about 200 bytes.
const maxStateFile = 16 << 20

// State is what a collector remembers about one server's log
// (collect/<host_port>.json): the signed checkpoints at which its bundles
// ended, oldest first. The last one is where the next bundle starts; the
// others let -since name an earlier one the reviewer stopped at.
type State struct {
	Version     int      `json:"version"`
	LogKey      string   `json:"log_key"`
	Checkpoints []string `json:"checkpoints"`
}

// LoadState reads a state file. A missing file is an empty state for
// logKey. A state for another log key is an error: its checkpoints prove
// nothing about this log.
func LoadState(name, logKey string) (*State, error) {
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		return &State{Version: StateVersion, LogKey: logKey, Checkpoints: []string{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read collector state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read collector state: %w", err)
	}
	if len(data) > maxStateFile {
		return nil, fmt.Errorf("collector state %s is too large", name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil || s.Version != StateVersion || s.Checkpoints == nil {
		return nil, fmt.Errorf("collector state %s is damaged or of an unknown version", name)
	}
	if s.LogKey != logKey {
		return nil, fmt.Errorf("collector state %s is for the log key %s, not the pinned %s", name, s.LogKey, logKey)
	}
	return &s, nil
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
