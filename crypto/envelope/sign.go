package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// The caseworker's device signs manifest.json, which holds the metadata and
// every file's SHA-256, so the signature covers the whole testimony. It is
// inside the ciphertext: the server never sees who signed. The signature is
// the tar's second entry, manifest.sig:
//
//	{"version":1,"key":"tdk1…","signature":"<base64>"}
//
// over "testimony manifest v1\n" followed by the exact bytes of
// manifest.json. The key in manifest.sig only says which key to check; the
// reviewer decides whether that key belongs to a known caseworker.

// SignatureName is the name of the signature entry, second in the tar.
const SignatureName = "manifest.sig"

// SignatureVersion is the manifest.sig format version this package writes
// and reads.
const SignatureVersion = 1

// MaxSignatureSize bounds manifest.sig. A well-formed one is about 150 bytes.
const MaxSignatureSize = 1 << 10

// DeviceKeyPrefix starts every device public key string.
const DeviceKeyPrefix = "tdk1"

// signaturePrefix binds signatures to this format, so a device key's
// signature over a manifest can never be replayed as anything else.
const signaturePrefix = "testimony manifest v1\n"

// ErrBadSignature means manifest.sig does not verify over manifest.json:
// the envelope was altered after it was signed. It matches ErrInvalid too.
var ErrBadSignature error = signatureError("the caseworker's signature over manifest.json does not verify (the envelope was altered after it was signed)")

type signatureError string

func (e signatureError) Error() string        { return string(e) }
func (e signatureError) Is(target error) bool { return target == ErrInvalid }

// Signature is the content of manifest.sig.
type Signature struct {
	Version int `json:"version"`
	// Key is the signing device's public key, as DeviceKeyString makes it.
	Key string `json:"key"`
	// Signature is the Ed25519 signature in standard base64.
	Signature string `json:"signature"`
}

// SignatureStatus says whether an extracted envelope was signed. A bad
// signature is not a status: Extract refuses the envelope.
type SignatureStatus int

const (
	// SigNone means the envelope has no manifest.sig (or no manifest).
	SigNone SignatureStatus = iota
	// SigValid means manifest.sig verifies with Result.Signature.Key.
	SigValid
)

func (s SignatureStatus) String() string {
	switch s {
	case SigNone:
		return "unsigned"
	case SigValid:
		return "signed"
	}
	return fmt.Sprintf("SignatureStatus(%d)", int(s))
}

// DeviceKeyString encodes a device public key as "tdk1" followed by the
// key in unpadded base64url: one short line that survives copy and paste.
func DeviceKeyString(pub ed25519.PublicKey) string {
	return DeviceKeyPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParseDeviceKey decodes a key made by DeviceKeyString. Only the canonical
// encoding of a 32-byte key is accepted.
func ParseDeviceKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, DeviceKeyPrefix)
	enc := base64.RawURLEncoding.Strict()
	if !ok || len(b64) != enc.EncodedLen(ed25519.PublicKeySize) {
		return nil, fmt.Errorf("malformed device key: want %s followed by 43 base64url characters", DeviceKeyPrefix)
	}
	b, err := enc.DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("malformed device key: want %s followed by 43 base64url characters", DeviceKeyPrefix)
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is a short name for a device key, for a reviewer to compare
// by eye: the first 16 hex characters of the SHA-256 of the key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// signManifest returns the manifest.sig content for manifestJSON.
func signManifest(priv ed25519.PrivateKey, manifestJSON []byte) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	s := Signature{
		Version:   SignatureVersion,
		Key:       DeviceKeyString(priv.Public().(ed25519.PublicKey)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, signedMessage(manifestJSON))),
	}
	out, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func signedMessage(manifestJSON []byte) []byte {
	return append([]byte(signaturePrefix), manifestJSON...)
}

// verifyManifest parses manifest.sig content and checks it over
// manifestJSON. A malformed manifest.sig is ErrInvalid; a well-formed one
// that does not verify is ErrBadSignature.
func verifyManifest(data, manifestJSON []byte) (*Signature, error) {
	if len(data) > MaxSignatureSize {
		return nil, invalidf("%s is larger than %d bytes", SignatureName, MaxSignatureSize)
	}
	s := new(Signature)
	if err := strictjson.Unmarshal(data, s); err != nil {
		return nil, invalidf("%s: %v", SignatureName, err)
	}
	if s.Version != SignatureVersion {
		return nil, invalidf("%s has version %d; this program reads version %d", SignatureName, s.Version, SignatureVersion)
	}
	pub, err := ParseDeviceKey(s.Key)
	if err != nil {
		return nil, invalidf("%s: %v", SignatureName, err)
	}
	enc := base64.StdEncoding.Strict()
	sig, err := enc.DecodeString(s.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || enc.EncodeToString(sig) != s.Signature {
		return nil, invalidf("%s: signature must be base64 of %d bytes", SignatureName, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, signedMessage(manifestJSON), sig) {
		return nil, fmt.Errorf("%s (key %s, fingerprint %s): %w", SignatureName, s.Key, Fingerprint(pub), ErrBadSignature)
	}
	return s, nil
}

// signature reads and verifies manifest.sig (the entry after manifest.json)
// and writes it beside manifest.json, before any file is written.
func (x *extractor) signature(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Size > MaxSignatureSize {
		return entryError(hdr.Name, invalidf("%d bytes, more than the limit of %d", hdr.Size, MaxSignatureSize))
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return x.readError(SignatureName, err)
	}
	s, err := verifyManifest(data, x.res.ManifestJSON)
	if err != nil {
		return err
	}
	x.nodes[foldKey(SignatureName)] = &node{name: SignatureName}
	if err := x.write(SignatureName, bytes.NewReader(data), nil); err != nil {
		return err
	}
	x.res.Signature = s
	x.res.SignatureStatus = SigValid
	return nil
}
