package intakelog

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxCheckpointSize bounds a signed checkpoint. One signature makes about
// 200 bytes; the rest leaves room for witness cosignatures.
const MaxCheckpointSize = 8 << 10

// MaxOriginSize bounds a log origin (which is also its key name).
const MaxOriginSize = 256

// Checkpoint is a C2SP tlog-checkpoint: the log's origin, its size and its
// root hash. Its note body is "<origin>\n<size>\n<base64 root>\n", without
// extension lines.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Body returns the note text that the log key signs.
func (c Checkpoint) Body() []byte {
	return []byte(c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" +
		base64.StdEncoding.EncodeToString(c.Root[:]) + "\n")
}

// check reports whether c can be encoded unambiguously.
func (c Checkpoint) check() error {
	if !validOrigin(c.Origin) {
		return fmt.Errorf("%w: origin must be 1 to %d printable characters without spaces or '+'", ErrMalformed, MaxOriginSize)
	}
	if c.Size < 0 {
		return fmt.Errorf("%w: size must not be negative", ErrMalformed)
	}
	return nil
}

// validOrigin applies the signed-note key name rules (non-empty UTF-8, no
// white space, no '+'), and refuses control characters, which note.Open
// would refuse anyway.
func validOrigin(s string) bool {
	if s == "" || len(s) > MaxOriginSize || !utf8.ValidString(s) || strings.Contains(s, "+") {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// SignCheckpoint returns the signed note text of c. The signer's key name
// must be c.Origin, as C2SP tlog-checkpoint requires.
func SignCheckpoint(c Checkpoint, logSigner note.Signer) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("failed to sign checkpoint: %w", err)
	}
	if logSigner.Name() != c.Origin {
		return nil, fmt.Errorf("failed to sign checkpoint: key name %q is not the log origin %q", logSigner.Name(), c.Origin)
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Body())}, logSigner)
	if err != nil {
		return nil, fmt.Errorf("failed to sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint with the log verifier key (a
// note verifier key string) and parses it. The checkpoint's origin must be
// the key's name.
//
// A note that carries no signature by the key, only signatures by other keys,
// is refused with ErrUnknownKey; one whose signature has the key's name and
// key hash but does not verify, with ErrBadSignature. Anything else wrong is
// ErrMalformed. Cosignatures by other keys (witnesses) next to a valid one
// are ignored.
func OpenCheckpoint(msg []byte, logVerifier string) (Checkpoint, error) {
	v, err := note.NewVerifier(logVerifier)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w: log key: %v", ErrMalformed, err)
	}
	if len(msg) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w: larger than %d bytes", ErrMalformed, MaxCheckpointSize)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w %q (it is signed only by %s)", ErrUnknownKey, v.Name(), signerNames(unverified.Note.UnverifiedSigs))
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w (key %q)", ErrBadSignature, v.Name())
		}
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w: %v", ErrMalformed, err)
	}
	c, err := parseBody(n.Text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w", err)
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w: origin %q is not the log key's name %q", ErrMalformed, c.Origin, v.Name())
	}
	return c, nil
}

// signerNames describes the keys that signed a note, for an error message.
// The names are attacker-controlled but note.Open has already limited them
// to printable text without spaces; %q escapes the rest.
func signerNames(sigs []note.Signature) string {
	const maxNames = 3
	var names []string
	for i, s := range sigs {
		if i == maxNames {
			names = append(names, fmt.Sprintf("and %d more", len(sigs)-maxNames))
			break
		}
		names = append(names, fmt.Sprintf("%q (key hash %08x)", s.Name, s.Hash))
	}
	if len(names) == 0 {
		return "no key"
	}
	return strings.Join(names, ", ")
}

// parseBody parses a checkpoint note text strictly: exactly three lines,
// canonical decimal size, canonical standard base64 of a 32-byte root.
func parseBody(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint must have exactly 3 lines (origin, size, root hash)", ErrMalformed)
	}
	size, ok := parseDecimal(lines[1])
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint size must be a decimal number without leading zeros", ErrMalformed)
	}
	root, err := decodeHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root: %v", ErrMalformed, err)
	}
	c := Checkpoint{Origin: lines[0], Size: size, Root: root}
	if err := c.check(); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// decodeHash decodes canonical standard base64 (padded) of a 32-byte hash.
func decodeHash(s string) (tlog.Hash, error) {
	enc := base64.StdEncoding.Strict()
	var h tlog.Hash
	if len(s) != enc.EncodedLen(tlog.HashSize) {
		return h, fmt.Errorf("must be base64 of %d bytes", tlog.HashSize)
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return h, fmt.Errorf("must be base64 of %d bytes", tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// NewLogKey generates a log signing key named origin, returning the note
// signer key ("PRIVATE+KEY+…", to keep secret) and verifier key (to publish
// and pin).
func NewLogKey(origin string) (signer string, verifier string, err error) {
	if !validOrigin(origin) {
		return "", "", fmt.Errorf("failed to generate log key: %w: origin must be 1 to %d printable characters without spaces or '+'", ErrMalformed, MaxOriginSize)
	}
	signer, verifier, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("failed to generate log key: %w", err)
	}
	return signer, verifier, nil
}
