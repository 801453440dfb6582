// Package recipients holds a deployment's recipient policy: which age public
// keys submissions are encrypted to, and the check that an uploaded age file
// obeys that policy.
//
// A deployment uses exactly one recipient type: hybrid post-quantum
// (mlkem768x25519, "age1pq1…" keys, the default) or X25519 ("age1…"). Mixing
// them would let a classic stanza undo the post-quantum protection, and a
// passphrase (scrypt) stanza would let anyone who guesses the passphrase read
// the testimony, so both are refused.
//
// Nothing in this package parses an age identity. The server must never hold
// a private key, so a recipients file line that looks like one is refused
// without being decoded, and errors never repeat such a line.
package recipients

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/internal/bounded"
)

// Recipient (stanza) types a deployment can use.
const (
	TypeHybrid = "mlkem768x25519"
	TypeX25519 = "X25519"
)

// MaxRecipients bounds both the recipients file and the number of stanzas
// HeaderLength accepts in an age header.
const MaxRecipients = 32

// MaxHeaderSize is the most HeaderLength reads from its input. 32 hybrid
// stanzas take about 50 KiB.
const MaxHeaderSize = 64 << 10

// MaxFileSize bounds a recipients file: 32 hybrid recipients with generous
// comments fit easily.
const MaxFileSize = 256 << 10

var (
	// ErrPrivateKey means a recipients file contains what looks like a
	// private key. The line is neither parsed nor repeated.
	ErrPrivateKey = errors.New("line looks like a private key, which must never be given to the server")
	// ErrMixedTypes means a recipients file mixes recipient types.
	ErrMixedTypes = errors.New("recipients of different types are mixed")
	// ErrNoRecipients means a recipients file holds no recipient.
	ErrNoRecipients = errors.New("no recipients found")
	// ErrUnsupportedType means a recipient is of a type this program does
	// not use (SSH keys, plugins, tagged recipients, anything unknown).
	ErrUnsupportedType = errors.New("unsupported recipient type")
	// ErrTooManyRecipients means a recipients file lists more than
	// MaxRecipients recipients.
	ErrTooManyRecipients = fmt.Errorf("more than %d recipients", MaxRecipients)

	// ErrNotAge means the input is not a binary age v1 file, or its header is
	// malformed.
	ErrNotAge = errors.New("not a valid age file")
	// ErrWrongRecipientType means an age header violates the deployment's
	// recipient policy: a stanza of another type (scrypt, X25519 where
	// hybrid is required, unknown types), or more than MaxRecipients stanzas.
	ErrWrongRecipientType = errors.New("age file is not encrypted to this deployment's recipient type")
)

// Set is a parsed, validated, single-type list of recipients.
type Set struct {
	// Type is the age stanza type of every recipient: TypeHybrid or TypeX25519.
	Type string
	// Strings are the canonical (lowercase Bech32) recipient strings, in file order.
	Strings []string
}

// Parse reads an age recipients file: one recipient per line, blank lines
// and lines starting with '#' ignored, surrounding spaces and a CR before the
// LF tolerated.
//
// It refuses a line containing "AGE-SECRET-KEY" (in any case), a plugin
// identity or an SSH private key with ErrPrivateKey, without decoding it,
// even in a comment;
// SSH and plugin recipients with ErrUnsupportedType; a second type with
// ErrMixedTypes; a file without a recipient (empty, or only comments) with
// ErrNoRecipients, so no reader ever acts on an empty policy; more than
// MaxRecipients with ErrTooManyRecipients; and duplicates. Errors name the
// line number.
func Parse(r io.Reader) (*Set, error) {
	data, err := bounded.ReadAll(r, MaxFileSize)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("failed to parse recipients file: larger than %d bytes", MaxFileSize)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read recipients file: %w", err)
	}
	s := &Set{}
	firstLine := make(map[string]int)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		// Check for secrets before anything else, comments included (a
		// file with a commented-out key must not be stored on a server),
		// so no code path ever looks further at a secret.
		if looksSecret(line) {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: %w", n, ErrPrivateKey)
		}
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: not valid UTF-8", n)
		}
		typ, canonical, err := parseRecipient(line)
		if err != nil {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: %w", n, err)
		}
		if s.Type == "" {
			s.Type = typ
		} else if typ != s.Type {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: %w: a %s recipient after %s recipients; a deployment uses one type", n, ErrMixedTypes, typ, s.Type)
		}
		if prev, ok := firstLine[canonical]; ok {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: duplicate of the recipient on line %d", n, prev)
		}
		firstLine[canonical] = n
		if len(s.Strings) == MaxRecipients {
			return nil, fmt.Errorf("failed to parse recipients file: line %d: %w", n, ErrTooManyRecipients)
		}
		s.Strings = append(s.Strings, canonical)
	}
	if len(s.Strings) == 0 {
		// An empty file is what "keygen > recipients.txt" leaves when keygen
		// fails; no reader may take it for a deliberate, empty policy.
		what := "the file is empty"
		if len(strings.TrimSpace(string(data))) > 0 {
			what = "the file holds only comments and blank lines"
		}
		return nil, fmt.Errorf("failed to parse recipients file: %w: %s; it needs one age1pq1… or age1… line per reviewer, as printed by \"testimony-review keygen\"", ErrNoRecipients, what)
	}
	return s, nil
}

// looksSecret reports whether line may hold private key material: an age
// secret key (in either case, since Bech32 allows both), a plugin identity,
// or an SSH private key block.
func looksSecret(line string) bool {
	upper := strings.ToUpper(line)
	return strings.Contains(upper, "AGE-SECRET-KEY") ||
		strings.Contains(upper, "AGE-PLUGIN-") ||
		strings.Contains(upper, "PRIVATE KEY")
}

// parseRecipient classifies and decodes one public recipient line. Errors do
// not repeat the line: it might be a mangled secret after all.
func parseRecipient(line string) (typ, canonical string, err error) {
	lower := strings.ToLower(line)
	switch {
	case strings.HasPrefix(lower, "ssh-") || strings.HasPrefix(lower, "ecdsa-") || strings.HasPrefix(lower, "sk-"):
		return "", "", fmt.Errorf("%w: SSH keys are not supported; use an age1pq1… recipient from age-keygen -pq", ErrUnsupportedType)
	case strings.HasPrefix(lower, "age1pq1"):
		r, err := age.ParseHybridRecipient(line)
		if err != nil {
			return "", "", errors.New("malformed age1pq1… recipient (wrong length or checksum; check for a copy-paste error)")
		}
		return TypeHybrid, r.String(), nil
	case strings.HasPrefix(lower, "age1tag1") || strings.HasPrefix(lower, "age1tagpq1"):
		return "", "", fmt.Errorf("%w: tagged (hardware) recipients are not supported", ErrUnsupportedType)
	case strings.HasPrefix(lower, "age1") && strings.LastIndexByte(lower, '1') > len("age"):
		// Bech32 puts the separator at the last '1', and the data part
		// never contains one, so a later '1' means a longer prefix:
		// "age1<plugin>1…".
		return "", "", fmt.Errorf("%w: plugin recipients are not supported", ErrUnsupportedType)
	case strings.HasPrefix(lower, "age1"):
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			return "", "", errors.New("malformed age1… recipient (wrong length or checksum; check for a copy-paste error)")
		}
		return TypeX25519, r.String(), nil
	}
	return "", "", fmt.Errorf("%w: expected an age1pq1… or age1… public key", ErrUnsupportedType)
}

// AgeRecipients returns the recipients as age.Recipient values for age.Encrypt.
func (s *Set) AgeRecipients() ([]age.Recipient, error) {
	if len(s.Strings) == 0 {
		return nil, ErrNoRecipients
	}
	out := make([]age.Recipient, 0, len(s.Strings))
	for i, str := range s.Strings {
		var r age.Recipient
		var err error
		switch s.Type {
		case TypeHybrid:
			r, err = age.ParseHybridRecipient(str)
		case TypeX25519:
			r, err = age.ParseX25519Recipient(str)
		default:
			return nil, fmt.Errorf("%w: %q", ErrUnsupportedType, s.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to parse recipient %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// String renders s as a recipients file, one recipient per line, that
// Parse and the age CLI (age -R) both read.
func (s *Set) String() string {
	var b strings.Builder
	for _, r := range s.Strings {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	return b.String()
}

// isKnownType reports whether t is a type a deployment may require.
func isKnownType(t string) bool { return t == TypeHybrid || t == TypeX25519 }
