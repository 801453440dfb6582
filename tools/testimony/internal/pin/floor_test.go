package pin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFloorsMigrates: without a floors file, the floors are the
// highest version per organisation key found in any pin file.
func TestLoadFloorsMigrates(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "pins")}
	org2 := newKey("other-org")
	for hp, p := range map[string]*Pin{
		"a_443":     {Server: "https://a", Keys: Keys{Type: "X25519", Recipients: []string{"age1new"}, LogKey: logKey1}, RecipientsVersion: 7, OrgKey: orgKey, Pinned: "2026-11-01"},
		"b.onion_1": {Server: "https://b.onion:1", Keys: Keys{Type: "X25519", Recipients: []string{"age1old"}, LogKey: logKey1}, RecipientsVersion: 3, OrgKey: orgKey, Pinned: "2026-10-01"},
		"c_443":     {Server: "https://c", Keys: Keys{Type: "X25519", Recipients: []string{"age1c"}, LogKey: logKey1}, RecipientsVersion: 2, OrgKey: org2, Pinned: "2026-10-01"},
		"d_443":     {Server: "https://d", Keys: Keys{LogKey: logKey1}, Pinned: "2026-10-01"},
	} {
		if err := s.Save(hp, p); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Join(dir, "recipients-versions.json")
	f, migrated, err := s.LoadFloors(name)
	if err != nil || !migrated {
		t.Fatalf("LoadFloors = %v, %v", migrated, err)
	}
	if fl := f.Get(orgKey); fl.Version != 7 || fl.Server != "https://a" || strings.Join(fl.Recipients, ",") != "age1new" {
		t.Errorf("floor of the organisation key = %+v", fl)
	}
	if fl := f.Get(org2); fl.Version != 2 {
		t.Errorf("floor of the other organisation key = %+v", fl)
	}
	if len(f.OrgKeys) != 2 {
		t.Errorf("floors = %+v", f.OrgKeys)
	}
	if f.Raise(orgKey, Floor{Version: 6, Type: "X25519", Recipients: []string{"x"}}) || f.Raise(orgKey, Floor{Version: 7, Type: "X25519", Recipients: []string{"x"}}) {
		t.Error("Raise lowered or replaced a floor")
	}
	if err := SaveFloors(name, f); err != nil {
		t.Fatal(err)
	}
	again, migrated, err := s.LoadFloors(name)
	if err != nil || migrated || again.Get(orgKey).Version != 7 {
		t.Fatalf("reloaded floors: %+v, %v, %v", again, migrated, err)
	}

	// A damaged floors file is an error, never a fresh start.
	os.WriteFile(name, []byte(`{"version":1,"org_keys":{"`+orgKey+`":{"version":0}}}`), 0o600)
	if _, _, err := s.LoadFloors(name); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("damaged floors file: %v", err)
	}
	// A damaged pin stops the migration: skipping it could lower a floor.
	os.Remove(name)
	os.WriteFile(s.Path("e_443"), []byte("{"), 0o600)
	if _, _, err := s.LoadFloors(name); err == nil || !strings.Contains(err.Error(), "e_443.json") {
		t.Errorf("damaged pin during migration: %v", err)
	}
}

// TestLoadFloorsRaisedByPins: a pin above the floors file raises the
// floor on every load, not only when the floors file is missing, so a
// lower version saved over a higher one (a lost race, an old backup of
// the floors file) does not lower the floor while a pin holds the higher.
func TestLoadFloorsRaisedByPins(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "pins")}
	name := filepath.Join(dir, "recipients-versions.json")
	f := &Floors{}
	f.Raise(orgKey, Floor{Version: 4, Type: "X25519", Recipients: []string{"age1v4"}, Server: "https://y"})
	if err := SaveFloors(name, f); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("x_443", &Pin{Server: "https://x", Keys: Keys{Type: "X25519", Recipients: []string{"age1v5"}, LogKey: logKey1}, RecipientsVersion: 5, OrgKey: orgKey, Pinned: "2026-12-01"}); err != nil {
		t.Fatal(err)
	}
	got, raised, err := s.LoadFloors(name)
	if err != nil || !raised {
		t.Fatalf("LoadFloors = %v, %v", raised, err)
	}
	if fl := got.Get(orgKey); fl.Version != 5 || fl.Server != "https://x" {
		t.Errorf("floor = %+v, want version 5 from the pin at https://x", fl)
	}
}

// TestUpdateFloors: fn sees the floors raised by the pins, a change is
// saved, and an error from fn saves nothing.
func TestUpdateFloors(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "pins")}
	name := filepath.Join(dir, "recipients-versions.json")
	if err := s.Save("x_443", &Pin{Server: "https://x", Keys: Keys{Type: "X25519", Recipients: []string{"age1v5"}, LogKey: logKey1}, RecipientsVersion: 5, OrgKey: orgKey, Pinned: "2026-12-01"}); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateFloors(name, func(f *Floors) (bool, error) {
		if v := f.Get(orgKey).Version; v != 5 {
			t.Errorf("fn saw version %d, want 5", v)
		}
		return f.Raise(orgKey, Floor{Version: 6, Type: "X25519", Recipients: []string{"age1v6"}}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	if err := s.UpdateFloors(name, func(f *Floors) (bool, error) {
		f.Raise(orgKey, Floor{Version: 9, Type: "X25519", Recipients: []string{"age1v9"}})
		return true, errStop
	}); err != errStop {
		t.Fatalf("UpdateFloors with a failing fn = %v", err)
	}
	got, _, err := s.LoadFloors(name)
	if err != nil || got.Get(orgKey).Version != 6 {
		t.Fatalf("saved floors: %+v, %v; want version 6", got, err)
	}
}
