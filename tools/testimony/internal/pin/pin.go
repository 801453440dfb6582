// Package pin remembers, per server, the recipients and receipt key the
// CLI saw the first time it talked to that server (trust on first use).
//
// A server that is seized or hacked could hand out its own age recipient;
// every testimony encrypted afterwards would be readable by the attacker.
// Pinning turns that silent attack into a loud refusal: keys that differ
// from the pin are never used until a person confirms the change out of
// band.
package pin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/tools/internal/safefile"
)

// Version is the pin file schema version.
const Version = 1

// maxPinFile caps a pin file; 32 hybrid recipients are about 64 KiB.
const maxPinFile = 1 << 20

// ErrChanged is returned (inside a *ChangedError) when a server's keys
// differ from the pinned ones.
var ErrChanged = errors.New("server keys differ from the pinned keys")

// Keys are what a server publishes at GET /v1/recipients.
type Keys struct {
	Type       string   `json:"type"`
	Recipients []string `json:"recipients"`
	ReceiptKey string   `json:"receipt_key"`
}

// Pin is the content of pins/<host_port>.json.
type Pin struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	Keys
	// Pinned is the UTC date the keys were first seen or last accepted.
	Pinned string `json:"pinned"`
}

// ChangedError says which of the pinned keys changed.
type ChangedError struct {
	HostPort string
	Fields   []string // "recipient type", "recipients", "receipt key"
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the %s of %s changed since they were pinned", strings.Join(e.Fields, " and "), e.HostPort)
}

func (e *ChangedError) Is(target error) bool { return target == ErrChanged }

// Result says what Check did.
type Result int

const (
	Same     Result = iota // the keys match the pin
	FirstUse               // no pin existed; one was written
	Replaced               // the keys differed and were accepted
)

// Store is a directory of pin files.
type Store struct {
	Dir string
}

func (s Store) path(hostPort string) string {
	return filepath.Join(s.Dir, hostPort+".json")
}

// Load reads the pin for hostPort. A missing pin wraps fs.ErrNotExist.
func (s Store) Load(hostPort string) (*Pin, error) {
	f, err := os.Open(s.path(hostPort))
	if err != nil {
		return nil, fmt.Errorf("failed to read pin: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPinFile+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read pin: %w", err)
	}
	if len(data) > maxPinFile {
		return nil, fmt.Errorf("pin file %s is too large", s.path(hostPort))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Pin
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("failed to parse pin file %s: %v", s.path(hostPort), err)
	}
	if p.Version != Version || p.Type == "" || len(p.Recipients) == 0 || p.ReceiptKey == "" {
		return nil, fmt.Errorf("pin file %s is incomplete or of an unknown version", s.path(hostPort))
	}
	return &p, nil
}

// Save writes the pin for hostPort.
func (s Store) Save(hostPort string, p *Pin) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("failed to save pin: %w", err)
	}
	data, err := json.MarshalIndent(p, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to save pin: %w", err)
	}
	return safefile.Write(s.path(hostPort), append(data, '\n'), 0o600)
}

// CheckOptions modify Check.
type CheckOptions struct {
	// Accept replaces a differing pin instead of failing.
	Accept bool
	// ReceiptKeyOnly compares only the receipt key, for when the caller
	// encrypts to recipients from a local file and ignores the server's.
	ReceiptKeyOnly bool
	// Server is recorded in a new pin, for people reading the file.
	Server string
	// Now dates a new pin.
	Now time.Time
}

// Check compares got with the pin for hostPort. With no pin, it pins got.
// If they differ it returns a *ChangedError, or with opt.Accept re-pins.
// It returns the keys to use: the pinned ones.
func (s Store) Check(hostPort string, got Keys, opt CheckOptions) (*Pin, Result, error) {
	old, err := s.Load(hostPort)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	if old != nil {
		changed := diff(old.Keys, got, opt.ReceiptKeyOnly)
		if len(changed) == 0 {
			return old, Same, nil
		}
		if !opt.Accept {
			return nil, 0, &ChangedError{HostPort: hostPort, Fields: changed}
		}
	}
	p := &Pin{Version: Version, Server: opt.Server, Keys: got, Pinned: opt.Now.UTC().Format(time.DateOnly)}
	p.Recipients = slices.Clone(got.Recipients)
	if err := s.Save(hostPort, p); err != nil {
		return nil, 0, err
	}
	if old != nil {
		return p, Replaced, nil
	}
	return p, FirstUse, nil
}

// diff lists the fields that differ. Recipients compare as a set: a server
// reordering its list is not a key change.
func diff(a, b Keys, receiptKeyOnly bool) []string {
	var changed []string
	if !receiptKeyOnly {
		if a.Type != b.Type {
			changed = append(changed, "recipient type")
		}
		x, y := slices.Clone(a.Recipients), slices.Clone(b.Recipients)
		slices.Sort(x)
		slices.Sort(y)
		if !slices.Equal(slices.Compact(x), slices.Compact(y)) {
			changed = append(changed, "recipients")
		}
	}
	if a.ReceiptKey != b.ReceiptKey {
		changed = append(changed, "receipt key")
	}
	return changed
}
