package recipients

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"filippo.io/age"
)

// Sizes of the age v1 payload and of the stanzas this package accepts.
const (
	nonceSize      = 16       // payload nonce after the header
	tagSize        = 16       // ChaCha20-Poly1305 tag per STREAM chunk
	chunkSize      = 64 << 10 // STREAM plaintext chunk
	encChunkSize   = chunkSize + tagSize
	minPayloadSize = nonceSize + tagSize // nonce and one empty final chunk
	wrappedKeySize = 16 + tagSize        // the encrypted file key in a stanza body
	x25519Size     = 32
	mlkemCTSize    = 1088 // ML-KEM-768 ciphertext; enc = ciphertext || X25519 share
)

// HeaderLength reads an age v1 header from r, checks it against the
// deployment's recipient type wantType (TypeHybrid or TypeX25519): every
// stanza is of wantType and well-formed for it (argument count, canonical
// base64, sizes, no low-order X25519 share), there are at most MaxRecipients
// of them, and the header is followed by at least a nonce and one tag, the
// smallest possible payload. It cannot check the header MAC, which needs
// the file key. It returns the length of the header in bytes, up to and
// including the newline after its MAC; the payload (nonce and STREAM
// chunks) starts there.
//
// At most MaxHeaderSize bytes are read from r, so r may be an unbounded
// upload; the reader is left at an unspecified position. Errors wrap
// ErrNotAge (not age, armored, malformed or truncated) or
// ErrWrongRecipientType (a policy violation; the message names the type).
func HeaderLength(r io.Reader, wantType string) (int64, error) {
	if !isKnownType(wantType) {
		return 0, fmt.Errorf("failed to check age header: %w: %q", ErrUnsupportedType, wantType)
	}
	// Everything read is kept, both to find where the header ends and to
	// check that it was encoded canonically (see below).
	var raw bytes.Buffer
	er := &errReader{r: r}
	lr := &io.LimitedReader{R: er, N: MaxHeaderSize}
	hdr, err := age.ExtractHeader(io.TeeReader(lr, &raw))
	if er.err != nil {
		// Distinguish a failing source (a dropped connection) from a bad file.
		return 0, fmt.Errorf("failed to read age header: %w", er.err)
	}
	if err != nil {
		return 0, describeParseError(raw.Bytes(), lr.N == 0, err)
	}
	// age's parser is strict, so re-encoding a header it accepted gives
	// back the same bytes. Checking that anyway makes the returned length
	// trustworthy even if a future parser became lenient.
	if !bytes.HasPrefix(raw.Bytes(), hdr) {
		return 0, fmt.Errorf("failed to check age header: %w: header is not canonically encoded", ErrNotAge)
	}
	if err := checkStanzas(hdr, wantType); err != nil {
		return 0, fmt.Errorf("failed to check age header: %w", err)
	}
	// The parser reads ahead, so part of the payload may already be in raw.
	if need := len(hdr) + minPayloadSize - raw.Len(); need > 0 {
		if _, err := io.CopyN(&raw, lr, int64(need)); err != nil {
			switch {
			case er.err != nil:
				return 0, fmt.Errorf("failed to read age payload: %w", er.err)
			case lr.N == 0:
				return 0, fmt.Errorf("failed to check age header: %w: header and payload start are larger than %d bytes", ErrNotAge, MaxHeaderSize)
			}
			return 0, fmt.Errorf("failed to check age header: %w: file ends after the header, without a payload (truncated upload?)", ErrNotAge)
		}
	}
	return int64(len(hdr)), nil
}

// PlaintextSize returns the plaintext size of an age payload of payload
// bytes (everything after the header, nonce included), or an error if no
// age file has a payload of that size.
func PlaintextSize(payload int64) (int64, error) {
	s := payload - nonceSize
	if payload < minPayloadSize {
		return 0, fmt.Errorf("payload of %d bytes is shorter than a nonce and one tag (%d bytes)", max(payload, 0), minPayloadSize)
	}
	full, last := s/encChunkSize, s%encChunkSize
	switch {
	case last == 0:
		// The final chunk is a full one.
		return full * chunkSize, nil
	case last < tagSize:
		return 0, fmt.Errorf("payload of %d bytes ends with a %d-byte fragment, shorter than a tag", payload, last)
	case last == tagSize && full > 0:
		return 0, fmt.Errorf("payload of %d bytes ends with an empty chunk after full ones", payload)
	}
	return full*chunkSize + last - tagSize, nil
}

// PayloadSize returns the size of the age payload (nonce and STREAM
// chunks) that encrypts a plaintext of n ≥ 0 bytes: the inverse of
// PlaintextSize. With the header's length it gives the ciphertext's size
// before a byte of it is written, which a chunked upload has to declare
// when it is created.
func PayloadSize(n int64) int64 {
	chunks := max(1, (n+chunkSize-1)/chunkSize)
	return nonceSize + n + chunks*tagSize
}

// CiphertextSize returns the size of the age file that encrypts n bytes
// of plaintext, where start is the number of bytes age.Encrypt wrote
// before it returned: the header and the payload's nonce.
func CiphertextSize(start, n int64) int64 {
	return start - nonceSize + PayloadSize(n)
}

// errReader remembers the first error other than io.EOF from r.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// describeParseError turns an age header parse failure into ErrNotAge with a
// hint at the usual causes. raw is what was read; limited is whether the read
// stopped at MaxHeaderSize.
func describeParseError(raw []byte, limited bool, err error) error {
	switch {
	case len(raw) == 0:
		return fmt.Errorf("failed to check age header: %w: the file is empty", ErrNotAge)
	case bytes.HasPrefix(raw, []byte("-----BEGIN AGE ENCRYPTED FILE-----")):
		return fmt.Errorf("failed to check age header: %w: the file is ASCII-armored; encrypt without -a/--armor", ErrNotAge)
	case !bytes.HasPrefix(raw, []byte("age-encryption.org/")):
		return fmt.Errorf("failed to check age header: %w: the file does not start with \"age-encryption.org/v1\"", ErrNotAge)
	case !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")):
		return fmt.Errorf("failed to check age header: %w: unsupported age format version (only v1 is accepted)", ErrNotAge)
	case limited:
		return fmt.Errorf("failed to check age header: %w: header is larger than %d bytes", ErrNotAge, MaxHeaderSize)
	}
	// age's own messages quote at most a line of header text, which is
	// public (it is what the server stores), and never key material.
	return fmt.Errorf("failed to check age header: %w: %v", ErrNotAge, err)
}

// stanzaRecorder is an age.Identity that decrypts nothing: it keeps the
// parsed stanzas it is shown, so the header is parsed by age's own parser
// instead of a second one here.
type stanzaRecorder struct {
	stanzas []*age.Stanza
	called  bool
}

func (c *stanzaRecorder) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	c.called = true
	c.stanzas = stanzas
	return nil, age.ErrIncorrectIdentity
}

func checkStanzas(hdr []byte, wantType string) error {
	rec := &stanzaRecorder{}
	_, err := age.DecryptHeader(hdr, rec)
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) || !rec.called {
		return fmt.Errorf("%w: %v", ErrNotAge, err)
	}
	if len(rec.stanzas) > MaxRecipients {
		return fmt.Errorf("%w: header has %d recipient stanzas, more than the %d allowed", ErrWrongRecipientType, len(rec.stanzas), MaxRecipients)
	}
	for i, s := range rec.stanzas {
		if s.Type != wantType {
			return fmt.Errorf("%w: stanza %d: stanza type %q is not allowed: this deployment accepts only %s%s",
				ErrWrongRecipientType, i+1, printable(s.Type), wantType, typeHint(s.Type, wantType))
		}
		if err := checkStanza(s); err != nil {
			return fmt.Errorf("%w: malformed %s stanza %d: %v", ErrNotAge, s.Type, i+1, err)
		}
	}
	return nil
}

// checkStanza does the structural checks age's identities do before they
// decrypt, so that a header the server accepts is not refused by every
// reviewer for a reason visible without a key.
func checkStanza(s *age.Stanza) error {
	if len(s.Args) != 1 {
		return fmt.Errorf("%d arguments, want 1", len(s.Args))
	}
	arg, err := base64.RawStdEncoding.Strict().DecodeString(s.Args[0])
	if err != nil {
		return errors.New("argument is not canonical base64")
	}
	var share []byte
	switch s.Type {
	case TypeX25519:
		if len(arg) != x25519Size {
			return fmt.Errorf("share is %d bytes, want %d", len(arg), x25519Size)
		}
		share = arg
	case TypeHybrid:
		if len(arg) != mlkemCTSize+x25519Size {
			return fmt.Errorf("encapsulated key is %d bytes, want %d", len(arg), mlkemCTSize+x25519Size)
		}
		share = arg[mlkemCTSize:]
	}
	if len(s.Body) != wrappedKeySize {
		return fmt.Errorf("body is %d bytes, want %d", len(s.Body), wrappedKeySize)
	}
	if lowOrder(share) {
		return errors.New("X25519 share is a low-order point")
	}
	return nil
}

// probeKey is a fixed X25519 key used only to detect low-order shares. Any
// clamped scalar is a multiple of the cofactor, so it maps exactly the
// low-order points to the all-zero output that every real identity refuses.
var probeKey = sync.OnceValue(func() *ecdh.PrivateKey {
	seed := sha256.Sum256([]byte("testimony: X25519 low-order probe"))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		panic("recipients: internal error: " + err.Error())
	}
	return k
})

func lowOrder(share []byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(share)
	if err != nil {
		return true
	}
	_, err = probeKey().ECDH(pub)
	return err != nil
}

// typeHint explains the most likely way a caseworker produced the wrong type.
func typeHint(got, want string) string {
	switch {
	case got == "scrypt":
		return " (the file was encrypted with a passphrase; encrypt to the deployment's recipients with -R)"
	case got == TypeX25519 && want == TypeHybrid:
		return " (the file was encrypted to a classic age1… key; fetch the current recipients and encrypt again)"
	case got == TypeHybrid && want == TypeX25519:
		return " (the file was encrypted to a post-quantum age1pq1… key; fetch the current recipients and encrypt again)"
	}
	return ""
}

// printable bounds a stanza type for an error message. age only allows
// printable ASCII there, but the length is up to the sender.
func printable(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
