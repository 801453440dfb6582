package pin

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const logKey1 = "testimony-log-0a1b2c3d+5055fc05+AWsok8LKTTjOAzYDPNBLH+v8Co3g3WSKJIAq+/NugsD9"

var (
	logKey2 = newKey("testimony-log-0a1b2c3d")
	orgKey  = newKey("testimony-org")
)

func newKey(name string) string {
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		panic(err)
	}
	return vkey
}

var (
	keysA = Keys{Type: "X25519", Recipients: []string{"age1a", "age1b"}, LogKey: logKey1}
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
	fi, err := os.Stat(s.Path("h_443"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode %v, want 0600", fi.Mode().Perm())
	}
	reordered := Keys{Type: "X25519", Recipients: []string{"age1b", "age1a"}, LogKey: logKey1}
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
		{"extra recipient", Keys{Type: "X25519", Recipients: []string{"age1a", "age1b", "age1evil"}, LogKey: logKey1}, []string{"recipients"}},
		{"swapped recipient", Keys{Type: "X25519", Recipients: []string{"age1a", "age1evil"}, LogKey: logKey1}, []string{"recipients"}},
		{"log key", Keys{Type: "X25519", Recipients: []string{"age1a", "age1b"}, LogKey: logKey2}, []string{"log key"}},
		{"type", Keys{Type: "mlkem768x25519", Recipients: []string{"age1pq1a"}, LogKey: logKey1}, []string{"recipient type", "recipients"}},
	} {
		_, _, err := s.Check("h_443", tt.keys, CheckOptions{Now: now})
		var ce *ChangedError
		if !errors.As(err, &ce) || !errors.Is(err, ErrChanged) {
			t.Errorf("%s: err = %v, want a ChangedError", tt.name, err)
			continue
		}
		if strings.Join(ce.Fields, ",") != strings.Join(tt.fields, ",") {
			t.Errorf("%s: changed fields %v, want %v", tt.name, ce.Fields, tt.fields)
		}
	}
	// The refused keys must not have replaced the pin.
	p, err := s.Load("h_443")
	if err != nil || p.LogKey != logKey1 || len(p.Recipients) != 2 {
		t.Fatalf("pin after refusals = %+v, %v", p, err)
	}
}

func TestCheckAccept(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, _, err := s.Check("h_443", keysA, CheckOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	newKeys := Keys{Type: "X25519", Recipients: []string{"age1c"}, LogKey: logKey2}
	p, res, err := s.Check("h_443", newKeys, CheckOptions{Accept: true, Now: now})
	if err != nil || res != Replaced || p.LogKey != logKey2 {
		t.Fatalf("Check with Accept = %+v, %v, %v", p, res, err)
	}
	if _, res, err := s.Check("h_443", newKeys, CheckOptions{Now: now}); err != nil || res != Same {
		t.Fatalf("Check after accepting = %v, %v; want Same", res, err)
	}
}

func TestCheckLogKeyOnly(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	// A collector pins only the log key.
	p, res, err := s.Check("h_443", Keys{LogKey: logKey1}, CheckOptions{LogKeyOnly: true, Now: now})
	if err != nil || res != FirstUse || len(p.Recipients) != 0 {
		t.Fatalf("LogKeyOnly first use = %+v, %v, %v", p, res, err)
	}
	if _, err := s.Load("h_443"); err != nil {
		t.Fatalf("a pin with only the log key does not load: %v", err)
	}
	// A later submit from the same state directory pins the recipients
	// without calling it a change.
	p, res, err = s.Check("h_443", keysA, CheckOptions{Now: now})
	if err != nil || res != FirstUse || len(p.Recipients) != 2 {
		t.Fatalf("recipients after a log-key-only pin = %+v, %v, %v", p, res, err)
	}
	other := Keys{Type: "X25519", Recipients: []string{"age1z"}, LogKey: logKey1}
	if _, res, err := s.Check("h_443", other, CheckOptions{LogKeyOnly: true, Now: now}); err != nil || res != Same {
		t.Errorf("LogKeyOnly with other recipients = %v, %v; want Same", res, err)
	}
	other.LogKey = logKey2
	if _, _, err := s.Check("h_443", other, CheckOptions{LogKeyOnly: true, Now: now}); !errors.Is(err, ErrChanged) {
		t.Errorf("LogKeyOnly with another log key: %v, want ErrChanged", err)
	}
	// Accepting a new log key keeps the pinned recipients.
	p, res, err = s.Check("h_443", other, CheckOptions{LogKeyOnly: true, Accept: true, Now: now})
	if err != nil || res != Replaced || p.LogKey != logKey2 || len(p.Recipients) != 2 {
		t.Errorf("LogKeyOnly accept = %+v, %v, %v", p, res, err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for name, content := range map[string]string{
		"garbage":         "not json",
		"unknown":         `{"version":2,"server":"","type":"X25519","recipients":["a"],"log_key":"` + logKey1 + `","pinned":"","extra":1}`,
		"version":         `{"version":1,"server":"","type":"X25519","recipients":["a"],"log_key":"` + logKey1 + `","pinned":""}`,
		"type only":       `{"version":2,"server":"","type":"X25519","recipients":[],"log_key":"` + logKey1 + `","pinned":""}`,
		"no log key":      `{"version":2,"server":"","type":"X25519","recipients":["a"],"log_key":"","pinned":""}`,
		"bad log key":     `{"version":2,"server":"","type":"X25519","recipients":["a"],"log_key":"abc","pinned":""}`,
		"version no org":  `{"version":2,"server":"","type":"X25519","recipients":["a"],"recipients_version":3,"log_key":"` + logKey1 + `","pinned":""}`,
		"org no version":  `{"version":2,"server":"","type":"X25519","recipients":["a"],"org_key":"` + orgKey + `","log_key":"` + logKey1 + `","pinned":""}`,
		"trailing":        `{"version":2,"server":"","log_key":"` + logKey1 + `","pinned":""} {}`,
		"version no recs": `{"version":2,"server":"","recipients_version":3,"org_key":"` + orgKey + `","log_key":"` + logKey1 + `","pinned":""}`,
	} {
		if err := os.WriteFile(s.Path(name), []byte(content), 0o600); err != nil {
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

func TestTrust(t *testing.T) {
	name := filepath.Join(t.TempDir(), "trust.json")
	tr, err := LoadTrust(name)
	if err != nil || tr.OrgKey != "" || tr.LogKey != "" {
		t.Fatalf("LoadTrust of a missing file = %+v, %v", tr, err)
	}
	tr.OrgKey, tr.LogKey = orgKey, logKey1
	if err := SaveTrust(name, tr); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTrust(name)
	if err != nil || *got != *tr {
		t.Fatalf("LoadTrust = %+v, %v; want %+v", got, err, tr)
	}
	for label, content := range map[string]string{
		"unknown field": `{"version":1,"org_key":"` + orgKey + `","extra":1}`,
		"bad org key":   `{"version":1,"org_key":"AAAA"}`,
		"private key":   `{"version":1,"log_key":"PRIVATE+KEY+testimony-log-0a1b2c3d+5055fc05+AUXFrl7KddTXFVlKoYMR/TsRF7hWMFeIyhG9+lmArx63"}`,
		"version":       `{"version":2}`,
	} {
		os.WriteFile(name, []byte(content), 0o600)
		if _, err := LoadTrust(name); err == nil {
			t.Errorf("%s: LoadTrust accepted %s", label, content)
		}
	}
}

func TestCheckKey(t *testing.T) {
	if err := CheckKey(logKey1); err != nil {
		t.Errorf("CheckKey(good) = %v", err)
	}
	err := CheckKey("PRIVATE+KEY+testimony-log-0a1b2c3d+5055fc05+AUXFrl7KddTXFVlKoYMR/TsRF7hWMFeIyhG9+lmArx63")
	if err == nil || !strings.Contains(err.Error(), "private signing key") {
		t.Errorf("CheckKey(private) = %v", err)
	}
	if err := CheckKey("age1xyz"); err == nil || !strings.Contains(err.Error(), "not a verifier key") {
		t.Errorf("CheckKey(age recipient) = %v", err)
	}
}

func TestSameRecipients(t *testing.T) {
	if !SameRecipients([]string{"a", "b"}, []string{"b", "a", "a"}) {
		t.Error("order or duplicates made a difference")
	}
	if SameRecipients([]string{"a"}, []string{"a", "b"}) {
		t.Error("an extra recipient made no difference")
	}
}
