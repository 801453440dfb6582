// Package enrol reads and writes enrolment files: the one file an operator
// gives a caseworker instead of five values to type. testimony-server
// writes it (token create -enrol) and testimony reads it (init -enrol).
//
// An enrolment file holds the server's URL, how to check its certificate
// (a SHA-256 pin or a PEM CA certificate, or neither for a certificate
// from a public CA), the intake log's verifier key, an access token with
// its role and name, and the name of the organisation key
// ("testimony-org+1a2b3c4d"). It holds the name only: the organisation key
// itself always comes from the organisation, out of band, and the name
// lets the client refuse a file made for another organisation. It holds
// no private key.
//
// The file is JSON (docs/formats.md), read strictly: one object, every key
// known, spelled exactly and present at most once, no null, nothing after
// the object, at most MaxSize bytes, and every value checked for its form,
// so a file has exactly one reading.
//
// # Caveats
//
// The file is not signed: whoever can change it on its way can change the
// server, the pin and the log key in it. Only the organisation key, which
// never travels in it, protects what caseworkers encrypt to; hand the file
// over the way a token is handed over (in person, on a USB stick).
package enrol

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// Format is the value of the "format" field, so that another JSON file
// (trust.json, a receipt) passed by mistake is named as such.
const Format = "testimony-enrolment"

// Version is the version of the format this package reads and writes.
const Version = 1

// Limits of an enrolment file. A CA certificate chain is the largest
// field; a token is 36 bytes.
const (
	MaxSize      = 64 << 10
	maxCA        = 48 << 10
	maxToken     = 256
	maxTokenName = 64
	maxKey       = 1 << 10
	maxURL       = 2 << 10
)

// Roles of the token in an enrolment file, as the server names them.
const (
	RoleSubmit  = "submit"
	RoleCollect = "collect"
)

// Errors of Parse and Read. Each error Parse returns wraps one of them.
var (
	// ErrTooLarge means the file is larger than MaxSize.
	ErrTooLarge = errors.New("enrolment file is too large")
	// ErrNotEnrolment means the file is not an enrolment file at all.
	ErrNotEnrolment = errors.New("not a testimony enrolment file")
	// ErrVersion means the file is of a version this program does not
	// know, most likely written by a newer testimony-server.
	ErrVersion = errors.New("unknown enrolment file version")
	// ErrMalformed means a field is missing or not of the right form:
	// the file was damaged or edited.
	ErrMalformed = errors.New("malformed enrolment file")
)

// Enrolment is the content of an enrolment file.
type Enrolment struct {
	// Server is the server's https URL.
	Server string
	// Pin is the lowercase hex SHA-256 of the server's certificate (DER),
	// and CA a PEM CA (or self-signed) certificate to trust; at most one is
	// set, and with neither the system's CAs check the certificate.
	Pin string
	CA  string
	// LogKey is the intake log's note verifier key.
	LogKey string
	// OrgKeyName is the name of the organisation's verifier key, as
	// KeyName returns it.
	OrgKeyName string
	// Token is the access token, Role its role (RoleSubmit or
	// RoleCollect) and Name the name the operator gave it.
	Token string
	Role  string
	Name  string
}

// file is the JSON form; the field order is the order on disk.
type file struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Server     string `json:"server"`
	Pin        string `json:"pin,omitempty"`
	CA         string `json:"ca,omitempty"`
	LogKey     string `json:"log_key"`
	OrgKeyName string `json:"org_key_name"`
	Role       string `json:"role"`
	Name       string `json:"name"`
	Token      string `json:"token"`
}

// KeyName returns the name of a note verifier key, its name and key hash
// ("testimony-org+1a2b3c4d"): enough to tell two keys apart, not enough to
// stand in for the key.
func KeyName(vkey string) (string, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", fmt.Errorf("failed to read verifier key: %w", err)
	}
	return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()), nil
}

// ParseServer checks a server URL the way the client does: https, a host,
// no user name, query or fragment. It returns the URL without a trailing
// slash.
func ParseServer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || len(s) > maxURL {
		return "", fmt.Errorf("server %q is not a URL like https://intake.example.org", s)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("server %q must start with https:// (the server speaks only TLS)", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("server %q must not contain a user name, query or fragment", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// Pin returns the pin of a DER certificate: its SHA-256 in lowercase hex.
func Pin(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// CanonicalCA returns the certificates of a PEM file in canonical PEM,
// the form an enrolment file holds: comments, other line endings and
// anything between the blocks are dropped. A file with no certificate, or
// with any block that is not a certificate (a private key given by
// mistake), is refused.
func CanonicalCA(pemData []byte) ([]byte, error) {
	var out bytes.Buffer
	rest, n := pemData, 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			return nil, fmt.Errorf("the CA file holds a %q block; want only CERTIFICATE blocks", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("CA certificate %d does not parse: %v", n+1, err)
		}
		pem.Encode(&out, &pem.Block{Type: b.Type, Bytes: b.Bytes})
		n++
	}
	if n == 0 {
		return nil, errors.New("the CA file holds no PEM certificate")
	}
	if out.Len() > maxCA {
		return nil, fmt.Errorf("the CA certificates take more than %d bytes", maxCA)
	}
	return out.Bytes(), nil
}

// check validates every field of e.
func (e *Enrolment) check() error {
	if _, err := ParseServer(e.Server); err != nil {
		return err
	}
	switch {
	case e.Pin != "" && e.CA != "":
		return errors.New("pin and ca are mutually exclusive")
	case e.Pin != "":
		if !ids.ValidSHA256(e.Pin) {
			return errors.New("pin is not 64 lowercase hex digits")
		}
	case e.CA != "":
		canon, err := CanonicalCA([]byte(e.CA))
		if err != nil {
			return fmt.Errorf("ca: %v", err)
		}
		if string(canon) != e.CA {
			return errors.New("ca is not in canonical PEM form")
		}
	}
	if len(e.LogKey) > maxKey {
		return errors.New("log_key is too long")
	}
	if strings.HasPrefix(e.LogKey, "PRIVATE+KEY+") {
		return errors.New("log_key is a private signing key")
	}
	if _, err := KeyName(e.LogKey); err != nil {
		return errors.New("log_key is not a note verifier key")
	}
	if !validKeyName(e.OrgKeyName) {
		return errors.New(`org_key_name is not a key name like "testimony-org+1a2b3c4d"`)
	}
	if e.Role != RoleSubmit && e.Role != RoleCollect {
		return fmt.Errorf("role must be %q or %q", RoleSubmit, RoleCollect)
	}
	if e.Name == "" || len(e.Name) > maxTokenName || !printable(e.Name) {
		return fmt.Errorf("name must be 1 to %d printable characters", maxTokenName)
	}
	if e.Token == "" || len(e.Token) > maxToken || !printable(e.Token) {
		return fmt.Errorf("token must be 1 to %d printable characters without spaces", maxToken)
	}
	return nil
}

// validKeyName reports whether s is NAME+8 lowercase hex digits, with a
// NAME a note key may have.
func validKeyName(s string) bool {
	name, hash, ok := strings.Cut(s, "+")
	return ok && name != "" && len(s) <= maxKey && printable(name) && ids.LowerHex(hash, 8)
}

// printable reports whether s is printable ASCII without spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Marshal returns the file form of e, after checking every field.
func (e *Enrolment) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("failed to write enrolment file: %w", err)
	}
	f := file{
		Format: Format, Version: Version,
		Server: e.Server, Pin: e.Pin, CA: e.CA,
		LogKey: e.LogKey, OrgKeyName: e.OrgKeyName,
		Role: e.Role, Name: e.Name, Token: e.Token,
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to write enrolment file: %w", err)
	}
	data = append(data, '\n')
	if len(data) > MaxSize {
		return nil, fmt.Errorf("failed to write enrolment file: %w", ErrTooLarge)
	}
	return data, nil
}

// Parse reads an enrolment file.
func Parse(data []byte) (*Enrolment, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxSize)
	}
	// The format and version come first, on their own, so that a file of
	// a newer version is named as such rather than as malformed.
	var head struct {
		Format  json.RawMessage `json:"format"`
		Version json.RawMessage `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotEnrolment, err)
	}
	if string(head.Format) != `"`+Format+`"` {
		return nil, ErrNotEnrolment
	}
	if head.Version == nil {
		return nil, fmt.Errorf("%w: no version", ErrMalformed)
	}
	if string(head.Version) != fmt.Sprint(Version) {
		return nil, fmt.Errorf("%w %s (this program reads version %d)", ErrVersion, head.Version, Version)
	}
	var f file
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if f.Format != Format || f.Version != Version {
		return nil, fmt.Errorf("%w: format or version given twice", ErrMalformed)
	}
	e := &Enrolment{
		Server: f.Server, Pin: f.Pin, CA: f.CA,
		LogKey: f.LogKey, OrgKeyName: f.OrgKeyName,
		Role: f.Role, Name: f.Name, Token: f.Token,
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

// Read reads the enrolment file at path, reading at most MaxSize+1 bytes.
func Read(path string) (*Enrolment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read enrolment file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read enrolment file: %w", err)
	}
	return Parse(data)
}

// WriteFile writes e to a new file at path, mode 0600, and syncs it (and
// its directory) to disk. An existing file is never replaced: the error
// then wraps fs.ErrExist. A file left half written is removed.
func WriteFile(path string, e *Enrolment) (err error) {
	data, err := e.Marshal()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create enrolment file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("failed to write enrolment file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to write enrolment file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write enrolment file: %w", err)
	}
	// The directory entry matters too: a token the server has issued
	// should not vanish with a crash.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
