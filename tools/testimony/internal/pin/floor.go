package pin

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/testimony-ngo/testimony/tools/internal/safefile"
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

// LoadFloors reads the floors file name. If it does not exist yet, the
// floors are taken from the highest version in the pin files of s (which
// held the versions per server before), and migrated reports it; the
// caller saves them. A pin file that cannot be read stops the migration:
// skipping it could lower a floor.
func (s Store) LoadFloors(name string) (f *Floors, migrated bool, err error) {
	f = &Floors{Version: FloorsVersion, OrgKeys: map[string]Floor{}}
	err = readJSON(name, f)
	if err == nil {
		if err := f.check(); err != nil {
			return nil, false, fmt.Errorf("floors file %s: %v", name, err)
		}
		return f, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
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
		if p.OrgKey != "" {
			f.Raise(p.OrgKey, Floor{Version: p.RecipientsVersion, Type: p.Type, Recipients: p.Recipients, Server: p.Server, Verified: p.Pinned})
		}
	}
	return f, true, nil
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
