// Package receipt signs and verifies the receipts that the server hands to a
// caseworker when a submission is complete.
//
// A receipt is the caseworker's proof that the server accepted a specific
// ciphertext (by size and SHA-256) on a specific day. It is signed with the
// server's Ed25519 receipt key so that a server which later drops or swaps
// the submission can be caught by anyone holding the receipt and the key.
//
// The signed message is a fixed, line-based text rather than the JSON
// document itself, so that JSON formatting never affects verification:
//
//	testimony receipt v1\n
//	<id>\n
//	<size in decimal>\n
//	<sha256 hex>\n
//	<received date YYYY-MM-DD>\n
//
// The date has no time of day on purpose: a precise timestamp would help an
// observer correlate an upload with a caseworker's movements.
package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/testimony-ngo/testimony/crypto/internal/strictjson"
)

// Version is the only receipt format version this package produces and accepts.
const Version = 1

// MaxSize bounds the receipt JSON that Parse accepts. A well-formed receipt
// is about 300 bytes.
const MaxSize = 4 << 10

// DateFormat is the layout of Receipt.Received (a UTC calendar date).
const DateFormat = "2006-01-02"

// messagePrefix starts the signed message and binds the signature to this
// format and version.
const messagePrefix = "testimony receipt v1\n"

var (
	// ErrBadSignature means the signature does not verify for the receipt's
	// fields: the receipt was altered or was not made with this key.
	ErrBadSignature = errors.New("receipt signature is invalid")
	// ErrWrongKey means the receipt names a different signing key than the
	// one the caller trusts.
	ErrWrongKey = errors.New("receipt is signed by a different key")
	// ErrMalformed means a receipt or key is not well-formed.
	ErrMalformed = errors.New("malformed receipt")
)

// Receipt is the JSON document described in docs/formats.md.
type Receipt struct {
	Version   int    `json:"version"`
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Received  string `json:"received"`
	Key       string `json:"key"`
	Signature string `json:"signature"`
}

// Sign returns a receipt for the submission id of size bytes whose
// ciphertext hashes to sum, received at the given instant (only its UTC date
// is kept).
func Sign(priv ed25519.PrivateKey, id string, size int64, sum [32]byte, received time.Time) (*Receipt, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("failed to sign receipt: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	r := &Receipt{
		Version:  Version,
		ID:       id,
		Size:     size,
		SHA256:   hex.EncodeToString(sum[:]),
		Received: received.UTC().Format(DateFormat),
		Key:      KeyString(priv.Public().(ed25519.PublicKey)),
	}
	if err := r.checkFields(); err != nil {
		return nil, fmt.Errorf("failed to sign receipt: %w", err)
	}
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, r.Message()))
	return r, nil
}

// Message returns the exact bytes the signature covers.
func (r *Receipt) Message() []byte {
	var b bytes.Buffer
	b.WriteString(messagePrefix)
	b.WriteString(r.ID + "\n")
	b.WriteString(strconv.FormatInt(r.Size, 10) + "\n")
	b.WriteString(r.SHA256 + "\n")
	b.WriteString(r.Received + "\n")
	return b.Bytes()
}

// Verify checks that r is well-formed, names pub as its key and carries a
// valid signature by pub. It returns an error wrapping ErrWrongKey,
// ErrBadSignature or ErrMalformed.
func (r *Receipt) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("failed to verify receipt: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("failed to verify receipt: %w", err)
	}
	key, _ := ParseKey(r.Key) // well-formed: checked above
	if !key.Equal(pub) {
		return fmt.Errorf("failed to verify receipt %s: %w (receipt has %s, expected %s)", r.ID, ErrWrongKey, r.Key, KeyString(pub))
	}
	sig, _ := decodeBase64(r.Signature, ed25519.SignatureSize) // checked above
	if !ed25519.Verify(pub, r.Message(), sig) {
		return fmt.Errorf("failed to verify receipt %s: %w", r.ID, ErrBadSignature)
	}
	return nil
}

// Parse decodes a receipt strictly: at most MaxSize bytes, exactly the seven
// fields with their exact names, each once, no null, nothing after the
// document, and every field well-formed. It does not check the signature;
// call Verify for that.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("failed to parse receipt: %w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	// Look at the version first, so a newer receipt gets a clear message
	// rather than an "unknown field" one.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err == nil && v.Version != nil && *v.Version != Version {
		return nil, fmt.Errorf("failed to parse receipt: %w: unsupported version %d (this program reads version %d)", ErrMalformed, *v.Version, Version)
	}
	r := new(Receipt)
	if err := strictjson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("failed to parse receipt: %w: %v", ErrMalformed, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("failed to parse receipt: %w", err)
	}
	return r, nil
}

// check reports whether every field of r is well-formed, including the
// presence of a key and a signature.
func (r *Receipt) check() error {
	if r.Version != Version {
		return fmt.Errorf("%w: unsupported version %d (want %d)", ErrMalformed, r.Version, Version)
	}
	if err := r.checkFields(); err != nil {
		return err
	}
	if _, err := ParseKey(r.Key); err != nil {
		return err
	}
	if _, err := decodeBase64(r.Signature, ed25519.SignatureSize); err != nil {
		return fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return nil
}

// checkFields checks the signed fields.
func (r *Receipt) checkFields() error {
	if !isLowerHex(r.ID, 32) {
		return fmt.Errorf("%w: id must be 32 lowercase hex characters", ErrMalformed)
	}
	if r.Size < 0 {
		return fmt.Errorf("%w: size must not be negative", ErrMalformed)
	}
	if !isLowerHex(r.SHA256, 64) {
		return fmt.Errorf("%w: sha256 must be 64 lowercase hex characters", ErrMalformed)
	}
	if t, err := time.Parse(DateFormat, r.Received); err != nil || t.Format(DateFormat) != r.Received {
		return fmt.Errorf("%w: received must be a date like 2026-11-27", ErrMalformed)
	}
	return nil
}

// KeyString encodes a receipt public key as standard base64 with padding, as
// it appears in receipts and in GET /v1/recipients.
func KeyString(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParseKey decodes a key produced by KeyString. Only the canonical encoding
// of a 32-byte key is accepted.
func ParseKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeBase64(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %v", ErrMalformed, err)
	}
	return ed25519.PublicKey(b), nil
}

// decodeBase64 decodes canonical standard base64 (with padding, no
// newlines) of exactly n bytes.
func decodeBase64(s string, n int) ([]byte, error) {
	enc := base64.StdEncoding.Strict()
	if len(s) != enc.EncodedLen(n) {
		return nil, fmt.Errorf("must be base64 of %d bytes", n)
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("must be base64 of %d bytes", n)
	}
	return b, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
