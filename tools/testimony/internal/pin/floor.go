package pin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/internal/filelock"
)

// FloorsVersion is the schema version of the floors file.
const FloorsVersion = 1

// Floor is the highest version of an organisation's signed recipients list
// verified on this device, at any server. A pin records the version per
// server address, but an organisation's list is the same everywhere: after
// a rotation away from a seized reviewer key, a compromised server or an
// old backup could otherwise serve the still validly signed older list at
// an address this device has not used (an onion address, a new host name
// or port) and have testimony encrypted to the seized key.
type Floor struct {
	Version    uint64   `json:"version"`
	Type       string   `json:"type"`
	Recipients []string `json:"recipients"`
	// Server is where the version was first verified, for messages.
	Server string `json:"server"`
	// Verified is the UTC date it was first verified.
	Verified string `json:"verified"`
}

// Floors is the content of the floors file: per organisation verifier
// key, the highest version verified.
type Floors struct {
	Version int              `json:"version"`
	OrgKeys map[string]Floor `json:"org_keys"`
}

// LoadFloors reads the floors file name and raises each floor to the
// highest version in the pin files of s, and raised reports whether that
// (or a missing floors file) changed anything; the caller saves them.
// Every pin counts, not only when the floors file is missing (the pins
// held the versions per server before it existed): a pin file restored
// from a later backup, or saved by a command that lost a race for the
// floors file, must still raise the floor. A pin file that cannot be
// read is an error: skipping it could lower a floor.
func (s Store) LoadFloors(name string) (f *Floors, raised bool, err error) {
	f = &Floors{Version: FloorsVersion, OrgKeys: map[string]Floor{}}
	err = readJSON(name, f)
	switch {
	case err == nil:
		if err := f.check(); err != nil {
			return nil, false, fmt.Errorf("floors file %s: %v", name, err)
		}
	case errors.Is(err, os.ErrNotExist):
		raised = true
	default:
		return nil, false, err
	}
	des, err := os.ReadDir(s.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("failed to read pins: %w", err)
	}
	for _, de := range des {
		hp, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || safefile.IsTemp(de.Name()) || !de.Type().IsRegular() {
			continue
		}
		p, err := s.Load(hp)
		if err != nil {
			return nil, false, err
		}
		if p.OrgKey != "" && f.Raise(p.OrgKey, Floor{Version: p.RecipientsVersion, Type: p.Type, Recipients: p.Recipients, Server: p.Server, Verified: p.Pinned}) {
			raised = true
		}
	}
	return f, raised, nil
}

// UpdateFloors loads the floors file name (as LoadFloors), calls fn, and
// saves the floors if fn reports a change or the pins raised them. An
// exclusive lock on name+".lock" is held from reading to writing: without
// it, two commands verifying at once (a submit at one address, an init
// at another that a server stalled) could each save what they read plus
// their own version, and the floor would end at the lower one, allowing a
// rollback to a superseded list. An error from fn is returned as it is,
// and nothing is saved.
func (s Store) UpdateFloors(name string, fn func(f *Floors) (changed bool, err error)) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", filepath.Dir(name), err)
	}
	unlock, err := filelock.Lock(name + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	f, dirty, err := s.LoadFloors(name)
	if err != nil {
		return err
	}
	changed, err := fn(f)
	if err != nil {
		return err
	}
	if changed || dirty {
		return SaveFloors(name, f)
	}
	return nil
}

// SaveFloors writes the floors file name.
func SaveFloors(name string, f *Floors) error {
	f.Version = FloorsVersion
	return writeJSON(name, f)
}

// Get returns the floor for orgKey; a zero Floor if none was verified.
func (f *Floors) Get(orgKey string) Floor { return f.OrgKeys[orgKey] }

// Raise records fl for orgKey if its version is higher than the one
// recorded, and reports whether it did. Version 0 (no signed list) is
// never recorded.
func (f *Floors) Raise(orgKey string, fl Floor) bool {
	if fl.Version == 0 {
		return false
	}
	if old, ok := f.OrgKeys[orgKey]; ok && old.Version >= fl.Version {
		return false
	}
	if f.OrgKeys == nil {
		f.OrgKeys = map[string]Floor{}
	}
	fl.Recipients = slices.Clone(fl.Recipients)
	f.OrgKeys[orgKey] = fl
	return true
}

func (f *Floors) check() error {
	if f.Version != FloorsVersion {
		return errors.New("unknown version")
	}
	for k, fl := range f.OrgKeys {
		if err := checkVerifier(k); err != nil {
			return fmt.Errorf("organisation key: %v", err)
		}
		if fl.Version == 0 || fl.Type == "" || len(fl.Recipients) == 0 {
			return fmt.Errorf("the entry for %s is incomplete", truncate(k, 40))
		}
	}
	return nil
}
