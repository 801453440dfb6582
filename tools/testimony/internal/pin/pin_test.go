package pin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var (
	keysA = Keys{Type: "X25519", Recipients: []string{"age1a", "age1b"}, ReceiptKey: "key1"}
	now   = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
)

func TestCheckFirstUseThenSame(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "pins")}
	p, res, err := s.Check("h_443", keysA, CheckOptions{Server: "https://h", Now: now})
	if err != nil || res != FirstUse {
		t.Fatalf("first Check = %v, %v; want FirstUse", res, err)
	}
	if p.Pinned != "2026-11-27" || p.Server != "https://h" {
		t.Errorf("pin = %+v", p)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "h_443.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode %v, want 0600", fi.Mode().Perm())
	}
	reordered := Keys{Type: "X25519", Recipients: []string{"age1b", "age1a"}, ReceiptKey: "key1"}
	if _, res, err := s.Check("h_443", reordered, CheckOptions{Now: now}); err != nil || res != Same {
		t.Fatalf("Check with reordered recipients = %v, %v; want Same", res, err)
	}
}

func TestCheckChanged(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, _, err := s.Check("h_443", keysA, CheckOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		keys   Keys
		fields []string
	}{
		{"extra recipient", Keys{Type: "X25519", Recipients: []string{"age1a", "age1b", "age1evil"}, ReceiptKey: "key1"}, []string{"recipients"}},
		{"swapped recipient", Keys{Type: "X25519", Recipients: []string{"age1a", "age1evil"}, ReceiptKey: "key1"}, []string{"recipients"}},
		{"receipt key", Keys{Type: "X25519", Recipients: []string{"age1a", "age1b"}, ReceiptKey: "key2"}, []string{"receipt key"}},
		{"type", Keys{Type: "mlkem768x25519", Recipients: []string{"age1pq1a"}, ReceiptKey: "key1"}, []string{"recipient type", "recipients"}},
	} {
		_, _, err := s.Check("h_443", tt.keys, CheckOptions{Now: now})
		var ce *ChangedError
		if !errors.As(err, &ce) || !errors.Is(err, ErrChanged) {
			t.Errorf("%s: err = %v, want a ChangedError", tt.name, err)
			continue
		}
		if len(ce.Fields) != len(tt.fields) || ce.Fields[0] != tt.fields[0] {
			t.Errorf("%s: changed fields %v, want %v", tt.name, ce.Fields, tt.fields)
		}
	}
	// The refused keys must not have replaced the pin.
	p, err := s.Load("h_443")
	if err != nil || p.ReceiptKey != "key1" || len(p.Recipients) != 2 {
		t.Fatalf("pin after refusals = %+v, %v", p, err)
	}
}

func TestCheckAccept(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, _, err := s.Check("h_443", keysA, CheckOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	newKeys := Keys{Type: "X25519", Recipients: []string{"age1c"}, ReceiptKey: "key2"}
	p, res, err := s.Check("h_443", newKeys, CheckOptions{Accept: true, Now: now})
	if err != nil || res != Replaced || p.ReceiptKey != "key2" {
		t.Fatalf("Check with Accept = %+v, %v, %v", p, res, err)
	}
	if _, res, err := s.Check("h_443", newKeys, CheckOptions{Now: now}); err != nil || res != Same {
		t.Fatalf("Check after accepting = %v, %v; want Same", res, err)
	}
}

func TestCheckReceiptKeyOnly(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, _, err := s.Check("h_443", keysA, CheckOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	other := Keys{Type: "X25519", Recipients: []string{"age1z"}, ReceiptKey: "key1"}
	if _, res, err := s.Check("h_443", other, CheckOptions{ReceiptKeyOnly: true, Now: now}); err != nil || res != Same {
		t.Errorf("ReceiptKeyOnly with other recipients = %v, %v; want Same", res, err)
	}
	other.ReceiptKey = "key2"
	if _, _, err := s.Check("h_443", other, CheckOptions{ReceiptKeyOnly: true, Now: now}); !errors.Is(err, ErrChanged) {
		t.Errorf("ReceiptKeyOnly with another receipt key: %v, want ErrChanged", err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for name, content := range map[string]string{
		"garbage": "not json",
		"unknown": `{"version":1,"server":"","type":"X25519","recipients":["a"],"receipt_key":"k","pinned":"","extra":1}`,
		"version": `{"version":2,"server":"","type":"X25519","recipients":["a"],"receipt_key":"k","pinned":""}`,
		"empty":   `{"version":1,"server":"","type":"X25519","recipients":[],"receipt_key":"k","pinned":""}`,
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name+".json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(name); err == nil {
			t.Errorf("%s: Load accepted a bad pin file", name)
		}
		// A damaged pin must never be silently replaced by whatever the
		// server says now.
		if _, _, err := s.Check(name, keysA, CheckOptions{Now: now}); err == nil {
			t.Errorf("%s: Check replaced a damaged pin", name)
		}
	}
}
