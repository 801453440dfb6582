package pin

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// TLSVersion is the schema version of a remembered certificate check.
const TLSVersion = 1

// TLS is how the certificate of one server (one https://host:port
// origin) is checked, remembered after the first successful connection
// with -pin or -ca, so that later commands need neither and a replaced
// certificate is refused like a changed key.
type TLS struct {
	Version int `json:"version"`
	// Server is the origin, https://host:port, for people reading the file.
	Server string `json:"server"`
	// Pin is the lowercase hex SHA-256 of the server's certificate (DER).
	Pin string `json:"pin,omitempty"`
	// CA is the PEM CA or self-signed certificate to trust.
	CA string `json:"ca,omitempty"`
	// Remembered is the UTC date the check was remembered or replaced.
	Remembered string `json:"remembered"`
}

// TLSStore is a directory of remembered certificate checks, one file per
// origin.
type TLSStore struct {
	Dir string
}

// Path is the file that holds the check for hostPort.
func (s TLSStore) Path(hostPort string) string {
	return filepath.Join(s.Dir, hostPort+".json")
}

// Load reads the check for hostPort. A missing one wraps fs.ErrNotExist.
func (s TLSStore) Load(hostPort string) (*TLS, error) {
	var t TLS
	if err := readJSON(s.Path(hostPort), &t); err != nil {
		return nil, err
	}
	if t.Version != TLSVersion || (t.Pin == "") == (t.CA == "") {
		return nil, fmt.Errorf("certificate file %s is incomplete or of an unknown version", s.Path(hostPort))
	}
	if t.Pin != "" {
		if !ids.ValidSHA256(t.Pin) {
			return nil, fmt.Errorf("certificate file %s: malformed pin", s.Path(hostPort))
		}
	}
	if t.CA != "" {
		if b, _ := pem.Decode([]byte(t.CA)); b == nil {
			return nil, fmt.Errorf("certificate file %s: malformed CA", s.Path(hostPort))
		}
	}
	return &t, nil
}

// Save writes the check for hostPort.
func (s TLSStore) Save(hostPort string, t *TLS) error {
	if (t.Pin == "") == (t.CA == "") {
		return errors.New("failed to save certificate check: want exactly one of a pin and a CA")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("failed to save certificate check: %w", err)
	}
	t.Version = TLSVersion
	return writeJSON(s.Path(hostPort), t)
}
