package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sync"

	"github.com/testimony-ngo/testimony/internal/safefile"
)

// stateName is the app's own file in the state directory. It holds no
// testimony content: the language, the server address, and per outbox
// entry or receipt the number of files and the label the caseworker typed
// (which the outbox page says stays readable on this laptop), and per
// receipt the dates of the last check and of a review it proved.
const stateName = "app.json"

type appState struct {
	Version int    `json:"version"`
	Lang    string `json:"lang,omitempty"`
	Server  string `json:"server,omitempty"`
	// Entries are keyed by outbox name, then by submission id once sent.
	Entries map[string]entryInfo `json:"entries"`
	// Confirmed are submission ids the log proved at the last check.
	Confirmed map[string]string `json:"confirmed"` // id -> date checked
	// Reviewed are submission ids a reviewer's witness acknowledged, as
	// the last check proved, and the date the witness signed.
	Reviewed map[string]string `json:"reviewed,omitempty"` // id -> date reviewed
}

type entryInfo struct {
	Label string `json:"label,omitempty"`
	Files int    `json:"files,omitempty"`
}

type stateFile struct {
	name string
	mu   sync.Mutex
	s    appState
	// dead: the state directory was wiped; nothing is written any more.
	dead bool
}

// kill stops all writes, before a wipe.
func (sf *stateFile) kill() {
	sf.mu.Lock()
	sf.dead = true
	sf.mu.Unlock()
}

func loadState(name string) (*stateFile, error) {
	sf := &stateFile{name: name, s: appState{Version: 1}}
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		err, data = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the app's settings: %w", err)
	}
	if data != nil {
		if err := json.Unmarshal(data, &sf.s); err != nil {
			return nil, fmt.Errorf("failed to read the app's settings %s: %w", name, err)
		}
	}
	if sf.s.Entries == nil {
		sf.s.Entries = map[string]entryInfo{}
	}
	if sf.s.Confirmed == nil {
		sf.s.Confirmed = map[string]string{}
	}
	if sf.s.Reviewed == nil {
		sf.s.Reviewed = map[string]string{}
	}
	return sf, nil
}

func (sf *stateFile) get() appState {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	s := sf.s
	s.Entries = make(map[string]entryInfo, len(sf.s.Entries))
	for k, v := range sf.s.Entries {
		s.Entries[k] = v
	}
	s.Confirmed = maps.Clone(sf.s.Confirmed)
	s.Reviewed = maps.Clone(sf.s.Reviewed)
	return s
}

// update changes the state and saves it; a failure to save is returned
// but the change stays in memory.
func (sf *stateFile) update(fn func(*appState)) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	fn(&sf.s)
	data, err := json.MarshalIndent(&sf.s, "", "\t")
	if err != nil {
		return err
	}
	if sf.dead {
		return nil
	}
	return safefile.Write(sf.name, append(data, '\n'), 0o600)
}
