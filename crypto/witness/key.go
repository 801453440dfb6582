package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// DefaultName is the key name of a witness key made without a name.
const DefaultName = "testimony-witness"

// maxNameSize bounds a witness key name.
const maxNameSize = 128

// Signature algorithm bytes of C2SP signed notes: 0x01 is a plain Ed25519
// note signature (used for the acknowledgement statement), 0x04 an
// Ed25519 tlog-cosignature/v1 (used for the checkpoint).
const (
	algEd25519     = 0x01
	algCosignature = 0x04
)

// cosignatureHeader is the domain-separation line of a cosignature/v1
// signed message.
const cosignatureHeader = "cosignature/v1\n"

// Key is a witness's private key: one Ed25519 key that makes both the
// checkpoint cosignatures and the acknowledgement statements. The two
// signed messages are told apart by their first line ("cosignature/v1"
// and "testimony-ack/v1"), and their key ids by the algorithm byte, so a
// signature of one kind never passes for the other.
type Key struct {
	name string
	priv ed25519.PrivateKey
}

// NewKey generates a witness key named name and returns it in its text form
// (a signed-note private key, "PRIVATE+KEY+…"), to be kept secret.
func NewKey(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("failed to generate witness key: %w: name must be 1 to %d printable characters without spaces or '+'", ErrMalformed, maxNameSize)
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", fmt.Errorf("failed to generate witness key: %w", err)
	}
	return skey, nil
}

// ParseKey parses the text form of a witness key made by NewKey.
func ParseKey(skey string) (*Key, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("%w: not a witness key: %v", ErrMalformed, err)
	}
	// NewSigner has checked the form PRIVATE+KEY+name+hash+base64(0x01||seed).
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 || !validName(parts[2]) {
		return nil, fmt.Errorf("%w: not an Ed25519 witness key", ErrMalformed)
	}
	return &Key{name: parts[2], priv: ed25519.NewKeyFromSeed(raw[1:])}, nil
}

// Name returns the key's name, which names the witness in its signatures.
func (k *Key) Name() string { return k.name }

// VerifierKey returns the witness verifier key the operator registers: a
// C2SP vkey of type 0x04 (Ed25519 cosignature), "NAME+HASH+BASE64".
func (k *Key) VerifierKey() string {
	pub := k.priv.Public().(ed25519.PublicKey)
	material := append([]byte{algCosignature}, pub...)
	return fmt.Sprintf("%s+%08x+%s", k.name, keyHash(k.name, algCosignature, pub), base64.StdEncoding.EncodeToString(material))
}

// cosigner returns a note.Signer that adds a tlog-cosignature/v1 line
// dated t (whole seconds) to a checkpoint.
func (k *Key) cosigner(t time.Time) note.Signer {
	return &cosigner{k: k, ts: uint64(t.Unix())}
}

// statementSigner returns a plain Ed25519 note signer of the same key.
func (k *Key) statementSigner() note.Signer {
	return &statementSigner{k: k}
}

type cosigner struct {
	k  *Key
	ts uint64
}

func (s *cosigner) Name() string { return s.k.name }
func (s *cosigner) KeyHash() uint32 {
	return keyHash(s.k.name, algCosignature, s.k.priv.Public().(ed25519.PublicKey))
}
func (s *cosigner) Sign(msg []byte) ([]byte, error) {
	sig := ed25519.Sign(s.k.priv, cosignedMessage(s.ts, msg))
	return append(binary.BigEndian.AppendUint64(nil, s.ts), sig...), nil
}

type statementSigner struct{ k *Key }

func (s *statementSigner) Name() string { return s.k.name }
func (s *statementSigner) KeyHash() uint32 {
	return keyHash(s.k.name, algEd25519, s.k.priv.Public().(ed25519.PublicKey))
}
func (s *statementSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.k.priv, msg), nil
}

// cosignedMessage is what a tlog-cosignature/v1 Ed25519 signature signs:
// the header line, the time line and the checkpoint's note body.
func cosignedMessage(ts uint64, body []byte) []byte {
	m := []byte(cosignatureHeader + "time " + strconv.FormatUint(ts, 10) + "\n")
	return append(m, body...)
}

// keyHash is the C2SP signed-note key id: the first four bytes of
// SHA-256(name || "\n" || alg || public key), big-endian.
func keyHash(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Verifier checks a witness's cosignatures and acknowledgements.
type Verifier struct {
	name string
	pub  ed25519.PublicKey
}

// NewVerifier parses a witness verifier key made by Key.VerifierKey.
func NewVerifier(vkey string) (*Verifier, error) {
	name, rest, ok := strings.Cut(vkey, "+")
	if !ok || !validName(name) {
		return nil, fmt.Errorf("%w: witness key must be NAME+HASH+KEY with a valid name", ErrMalformed)
	}
	hashHex, b64, ok := strings.Cut(rest, "+")
	if !ok || len(hashHex) != 8 || strings.ToLower(hashHex) != hashHex {
		return nil, fmt.Errorf("%w: witness key must be NAME+HASH+KEY with an 8-digit hex hash", ErrMalformed)
	}
	hash, err := strconv.ParseUint(hashHex, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: witness key hash is not hex", ErrMalformed)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	// The decoder skips line breaks; a key has one spelling only, so that
	// two strings never name the same key.
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || base64.StdEncoding.EncodeToString(raw) != b64 {
		return nil, fmt.Errorf("%w: witness key material must be base64 of 33 bytes", ErrMalformed)
	}
	if raw[0] != algCosignature {
		return nil, fmt.Errorf("%w: witness key has type 0x%02x, not 0x04 (Ed25519 cosignature); was a log or organisation key given instead?", ErrMalformed, raw[0])
	}
	pub := ed25519.PublicKey(raw[1:])
	if keyHash(name, algCosignature, pub) != uint32(hash) {
		return nil, fmt.Errorf("%w: witness key hash does not match the key", ErrMalformed)
	}
	return &Verifier{name: name, pub: pub}, nil
}

// Name returns the witness key's name.
func (v *Verifier) Name() string { return v.name }

// String returns the verifier key in its text form.
func (v *Verifier) String() string {
	material := append([]byte{algCosignature}, v.pub...)
	return fmt.Sprintf("%s+%08x+%s", v.name, keyHash(v.name, algCosignature, v.pub), base64.StdEncoding.EncodeToString(material))
}

// Cosignature returns a note.Verifier of the witness's tlog-cosignature/v1
// lines. Verify also records the time of the last valid cosignature.
func (v *Verifier) Cosignature() *CosignatureVerifier {
	return &CosignatureVerifier{v: v}
}

// statement returns a note.Verifier of the witness's plain Ed25519 note
// signatures (acknowledgement statements).
func (v *Verifier) statement() note.Verifier { return statementVerifier{v} }

// CosignatureVerifier is a note.Verifier of one witness's cosignatures.
type CosignatureVerifier struct {
	v *Verifier
	// Time is the time of the last cosignature Verify accepted.
	Time time.Time
}

func (c *CosignatureVerifier) Name() string { return c.v.name }
func (c *CosignatureVerifier) KeyHash() uint32 {
	return keyHash(c.v.name, algCosignature, c.v.pub)
}
func (c *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > 1<<63-1 {
		return false
	}
	if !ed25519.Verify(c.v.pub, cosignedMessage(ts, msg), sig[8:]) {
		return false
	}
	c.Time = time.Unix(int64(ts), 0).UTC()
	return true
}

type statementVerifier struct{ v *Verifier }

func (s statementVerifier) Name() string { return s.v.name }
func (s statementVerifier) KeyHash() uint32 {
	return keyHash(s.v.name, algEd25519, s.v.pub)
}
func (s statementVerifier) Verify(msg, sig []byte) bool {
	return ed25519.Verify(s.v.pub, msg, sig)
}

// validName applies the signed-note key name rules.
func validName(s string) bool {
	if s == "" || len(s) > maxNameSize || !utf8.ValidString(s) || strings.Contains(s, "+") {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}
