package intakelog

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// LeafVersion is the first line of every leaf; it binds leaf hashes to this
// format.
const LeafVersion = "testimony leaf v1"

// MaxLeafSize bounds what ParseLeaf reads. A well-formed leaf is about 140
// bytes.
const MaxLeafSize = 256

// DateFormat is the layout of Leaf.Date (a UTC calendar date).
const DateFormat = "2006-01-02"

// Leaf is one log record: a submission id, its ciphertext's SHA-256 (lowercase
// hex) and size, and the UTC date it was received. The date has no time of
// day so the log cannot help correlate an upload with someone's movements.
type Leaf struct {
	ID     string
	SHA256 string
	Size   int64
	Date   string
}

// Bytes is the canonical encoding hashed into the tree:
//
//	testimony leaf v1\n<id>\n<sha256 hex>\n<size>\n<date>\n
func (l Leaf) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(LeafVersion + "\n")
	b.WriteString(l.ID + "\n")
	b.WriteString(l.SHA256 + "\n")
	b.WriteString(strconv.FormatInt(l.Size, 10) + "\n")
	b.WriteString(l.Date + "\n")
	return b.Bytes()
}

// Hash is the leaf's RFC 6962 record hash, tlog.RecordHash(l.Bytes()).
func (l Leaf) Hash() tlog.Hash { return tlog.RecordHash(l.Bytes()) }

// ParseLeaf decodes the output of Leaf.Bytes. It is strict: exactly five
// LF-terminated lines, a 32-character lowercase hex id, a 64-character
// lowercase hex SHA-256, a decimal size without sign or leading zeros and a
// valid date, so that each leaf has exactly one encoding.
func ParseLeaf(b []byte) (Leaf, error) {
	if len(b) > MaxLeafSize {
		return Leaf{}, fmt.Errorf("failed to parse log leaf: %w: larger than %d bytes", ErrMalformed, MaxLeafSize)
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) != 6 || len(lines[5]) != 0 {
		return Leaf{}, fmt.Errorf("failed to parse log leaf: %w: want 5 newline-terminated lines", ErrMalformed)
	}
	if string(lines[0]) != LeafVersion {
		return Leaf{}, fmt.Errorf("failed to parse log leaf: %w: first line must be %q", ErrMalformed, LeafVersion)
	}
	size, ok := parseDecimal(string(lines[3]))
	if !ok {
		return Leaf{}, fmt.Errorf("failed to parse log leaf: %w: size must be a decimal number without leading zeros", ErrMalformed)
	}
	l := Leaf{ID: string(lines[1]), SHA256: string(lines[2]), Size: size, Date: string(lines[4])}
	if err := l.check(); err != nil {
		return Leaf{}, fmt.Errorf("failed to parse log leaf: %w", err)
	}
	return l, nil
}

// check reports whether every field of l is well-formed.
func (l Leaf) check() error {
	if !ids.ValidSubmission(l.ID) {
		return fmt.Errorf("%w: id must be 32 lowercase hex characters", ErrMalformed)
	}
	if !ids.ValidSHA256(l.SHA256) {
		return fmt.Errorf("%w: sha256 must be 64 lowercase hex characters", ErrMalformed)
	}
	if l.Size < 0 {
		return fmt.Errorf("%w: size must not be negative", ErrMalformed)
	}
	if t, err := time.Parse(DateFormat, l.Date); err != nil || t.Format(DateFormat) != l.Date {
		return fmt.Errorf("%w: date must be a date like 2026-11-27", ErrMalformed)
	}
	return nil
}

// parseDecimal parses a non-negative int64 in canonical decimal: digits
// only, no sign, no leading zeros (except "0" itself).
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
