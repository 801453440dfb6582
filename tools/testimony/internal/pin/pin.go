// Package pin remembers what the CLI trusts: per server, the recipients
// it encrypts to and the intake log key it verifies receipts with
// (pins/<host_port>.json), and the trust anchors given out of band by the
// organisation (trust.json): its recipients-signing key and, optionally,
// the log key.
//
// A server that is seized or hacked could hand out its own age recipient;
// every testimony encrypted afterwards would be readable by the attacker.
// With an organisation key pinned, the client encrypts only to recipients
// the organisation signed, and the floors file records the highest version
// seen per organisation key, at any server address, so an old list cannot
// be replayed at this address or another. Without one, pinning on first use turns
// a silent key swap into a loud refusal: keys that differ from the pin are
// never used until a person confirms the change out of band.
package pin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// Version is the pin file schema version.
const Version = 2

// TrustVersion is the trust.json schema version.
const TrustVersion = 1

// maxPinFile caps a pin or trust file; 32 hybrid recipients are about 64 KiB.
const maxPinFile = 1 << 20

// ErrChanged is returned (inside a *ChangedError) when a server's keys
// differ from the pinned ones.
var ErrChanged = errors.New("server keys differ from the pinned keys")

// Keys are what a server publishes at GET /v1/recipients and the client
// pins.
type Keys struct {
	// Type and Recipients are empty in a pin written by a command that
	// needs only the log key (collect, receipts verify).
	Type       string   `json:"type,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	LogKey     string   `json:"log_key"`
}

// Pin is the content of pins/<host_port>.json.
type Pin struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	Keys
	// RecipientsVersion is the version of the organisation-signed
	// recipients note the recipients were taken from; 0 if they were
	// pinned on first use, without a note.
	RecipientsVersion uint64 `json:"recipients_version,omitempty"`
	// OrgKey is the organisation key that signed RecipientsVersion. A
	// version signed by another key says nothing about this one's.
	OrgKey string `json:"org_key,omitempty"`
	// Pinned is the UTC date the keys were first seen or last changed.
	Pinned string `json:"pinned"`
}

// ChangedError says which of the pinned keys changed.
type ChangedError struct {
	HostPort string
	Fields   []string // "recipient type", "recipients", "log key"
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the %s of %s changed since they were pinned", strings.Join(e.Fields, " and "), e.HostPort)
}

func (e *ChangedError) Is(target error) bool { return target == ErrChanged }

// Result says what Check did.
type Result int

const (
	Same     Result = iota // the keys match the pin
	FirstUse               // no pin (or no recipients in it) existed; one was written
	Replaced               // the keys differed and were accepted
)

// Store is a directory of pin files.
type Store struct {
	Dir string
}

// Path is the file that holds the pin for hostPort.
func (s Store) Path(hostPort string) string {
	return filepath.Join(s.Dir, hostPort+".json")
}

// Load reads the pin for hostPort. A missing pin wraps fs.ErrNotExist.
func (s Store) Load(hostPort string) (*Pin, error) {
	var p Pin
	if err := readJSON(s.Path(hostPort), &p); err != nil {
		return nil, err
	}
	if p.Version != Version || p.LogKey == "" || (p.Type == "") != (len(p.Recipients) == 0) ||
		(p.RecipientsVersion != 0) != (p.OrgKey != "") || (p.RecipientsVersion != 0 && len(p.Recipients) == 0) {
		return nil, fmt.Errorf("pin file %s is incomplete or of an unknown version", s.Path(hostPort))
	}
	if err := checkVerifier(p.LogKey); err != nil {
		return nil, fmt.Errorf("pin file %s: log key: %v", s.Path(hostPort), err)
	}
	return &p, nil
}

// Save writes the pin for hostPort.
func (s Store) Save(hostPort string, p *Pin) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("failed to save pin: %w", err)
	}
	p.Version = Version
	return writeJSON(s.Path(hostPort), p)
}

// CheckOptions modify Check.
type CheckOptions struct {
	// Accept replaces a differing pin instead of failing.
	Accept bool
	// LogKeyOnly compares and pins only the log key: for when the caller
	// encrypts to recipients from elsewhere (a local file, or a note
	// signed by the organisation) or encrypts nothing.
	LogKeyOnly bool
	// Server is recorded in a new pin, for people reading the file.
	Server string
	// Now dates a new pin.
	Now time.Time
}

// Check compares got with the pin for hostPort. With no pin, it pins got.
// If they differ it returns a *ChangedError, or with opt.Accept re-pins.
// It returns the pin as it now is.
func (s Store) Check(hostPort string, got Keys, opt CheckOptions) (*Pin, Result, error) {
	old, err := s.Load(hostPort)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	p := &Pin{Server: opt.Server, Keys: got, Pinned: opt.Now.UTC().Format(time.DateOnly)}
	if old != nil {
		changed := diff(old.Keys, got, opt.LogKeyOnly)
		if len(changed) == 0 {
			if opt.LogKeyOnly || len(old.Recipients) > 0 {
				return old, Same, nil
			}
			// The pin held only the log key; the recipients are new.
			p = old
			p.Type, p.Recipients = got.Type, slices.Clone(got.Recipients)
			return p, FirstUse, s.Save(hostPort, p)
		}
		if !opt.Accept {
			return nil, 0, &ChangedError{HostPort: hostPort, Fields: changed}
		}
		if opt.LogKeyOnly {
			// Keep the recipients; only the log key was confirmed.
			p = old
			p.LogKey = got.LogKey
			p.Pinned = opt.Now.UTC().Format(time.DateOnly)
		}
	} else if opt.LogKeyOnly {
		p.Type, p.Recipients = "", nil
	}
	p.Recipients = slices.Clone(p.Recipients)
	if err := s.Save(hostPort, p); err != nil {
		return nil, 0, err
	}
	if old != nil {
		return p, Replaced, nil
	}
	return p, FirstUse, nil
}

// diff lists the fields that differ. Recipients compare as a set: a server
// reordering its list is not a key change. A pin without recipients
// differs from none.
func diff(a, b Keys, logKeyOnly bool) []string {
	var changed []string
	if !logKeyOnly && len(a.Recipients) > 0 {
		if a.Type != b.Type {
			changed = append(changed, "recipient type")
		}
		if !SameRecipients(a.Recipients, b.Recipients) {
			changed = append(changed, "recipients")
		}
	}
	if a.LogKey != b.LogKey {
		changed = append(changed, "log key")
	}
	return changed
}

// SameRecipients reports whether a and b hold the same recipients, in any
// order.
func SameRecipients(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// Trust is the content of trust.json: the keys the organisation gave out
// of band. Either may be empty.
type Trust struct {
	Version int `json:"version"`
	// OrgKey is the note verifier key that signs the recipients.
	OrgKey string `json:"org_key,omitempty"`
	// LogKey is the note verifier key of the intake log.
	LogKey string `json:"log_key,omitempty"`
}

// LoadTrust reads a trust file. A missing file is an empty Trust.
func LoadTrust(name string) (*Trust, error) {
	var t Trust
	err := readJSON(name, &t)
	if errors.Is(err, os.ErrNotExist) {
		return &Trust{Version: TrustVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	if t.Version != TrustVersion {
		return nil, fmt.Errorf("trust file %s is of an unknown version", name)
	}
	for what, k := range map[string]string{"org_key": t.OrgKey, "log_key": t.LogKey} {
		if k != "" {
			if err := checkVerifier(k); err != nil {
				return nil, fmt.Errorf("trust file %s: %s: %v", name, what, err)
			}
		}
	}
	return &t, nil
}

// SaveTrust writes a trust file.
func SaveTrust(name string, t *Trust) error {
	t.Version = TrustVersion
	return writeJSON(name, t)
}

// CheckKey reports whether s is a note verifier key (name+hash+key), and
// says what is wrong if it is not. A signer key is refused by name, so a
// user who pastes the secret half gets told.
func CheckKey(s string) error { return checkVerifier(s) }

func checkVerifier(s string) error {
	if strings.HasPrefix(s, "PRIVATE+KEY+") {
		return errors.New("this is a private signing key, not a verifier key; never copy it off the machine it was made on")
	}
	if _, err := note.NewVerifier(s); err != nil {
		return fmt.Errorf("%q is not a verifier key like name+1234abcd+AbCd…", truncate(s, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func readJSON(name string, v any) error {
	data, err := bounded.ReadFile(name, maxPinFile)
	if errors.Is(err, bounded.ErrTooLarge) {
		return fmt.Errorf("%s is too large", name)
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", name, err)
	}
	if err := strictjson.Decode(data, v); err != nil {
		return fmt.Errorf("failed to parse %s: %v", name, err)
	}
	return nil
}

func writeJSON(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to save %s: %w", name, err)
	}
	return safefile.Write(name, append(data, '\n'), 0o600)
}
