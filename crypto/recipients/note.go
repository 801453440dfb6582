package recipients

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The recipients note is a signed note (golang.org/x/mod/sumdb/note) made by
// the organisation key on the reviewers' air-gapped machine. The server
// stores and serves it but cannot forge it, so a caseworker who pinned the
// organisation's verifier key encrypts only to recipients the organisation
// chose, and a server that swaps in its own key is caught. Its body:
//
//	testimony recipients v1
//	version <decimal ≥ 1>
//	type <mlkem768x25519|X25519>
//	<recipient>
//	…
//
// The version only increases, so a client that remembers the highest one it
// accepted can refuse an older list served to undo a key rotation.

// NoteHeader is the first line of a recipients note body.
const NoteHeader = "testimony recipients v1"

// MaxNoteSize bounds a signed recipients note.
const MaxNoteSize = 64 << 10

var (
	// ErrNoteSignature means a recipients note is not signed by the
	// organisation key: the signature is bad, or by another key.
	ErrNoteSignature = errors.New("recipients note is not signed by the organisation key")
	// ErrNoteMalformed means a recipients note is not well-formed.
	ErrNoteMalformed = errors.New("malformed recipients note")
)

// SignedSet is a recipients set from a note, with the note's version and
// the exact note text (to store or pass on).
type SignedSet struct {
	Set     *Set
	Version uint64
	Note    []byte
}

// SignNote returns the signed note text for s at version, signed with the
// organisation's note signer key ("PRIVATE+KEY+…").
func SignNote(s *Set, version uint64, orgSigner string) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("failed to sign recipients note: %w", ErrNoRecipients)
	}
	if version < 1 {
		return nil, fmt.Errorf("failed to sign recipients note: version must be at least 1")
	}
	signer, err := note.NewSigner(orgSigner)
	if err != nil {
		return nil, fmt.Errorf("failed to sign recipients note: invalid organisation key: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nversion %d\ntype %s\n", NoteHeader, version, s.Type)
	for _, r := range s.Strings {
		b.WriteString(r + "\n")
	}
	// Validate by reading back exactly what a client will read.
	if _, _, err := parseNoteBody(b.String()); err != nil {
		return nil, fmt.Errorf("failed to sign recipients note: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: b.String()}, signer)
	if err != nil {
		return nil, fmt.Errorf("failed to sign recipients note: %w", err)
	}
	return msg, nil
}

// VerifyNote verifies msg with the organisation verifier key string and
// parses its body. It returns an error wrapping ErrNoteSignature if no
// signature by that key verifies, and ErrNoteMalformed if msg or its body is
// not well-formed. The body is validated like Parse validates a file: one
// type, no private keys, at most MaxRecipients, no duplicates.
func VerifyNote(msg []byte, orgVerifier string) (*SignedSet, error) {
	v, err := note.NewVerifier(orgVerifier)
	if err != nil {
		return nil, fmt.Errorf("failed to verify recipients note: invalid organisation key: %w", err)
	}
	if len(msg) > MaxNoteSize {
		return nil, fmt.Errorf("failed to verify recipients note: %w: larger than %d bytes", ErrNoteMalformed, MaxNoteSize)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return nil, fmt.Errorf("failed to verify recipients note: %w %q (it is signed by another key)", ErrNoteSignature, v.Name())
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("failed to verify recipients note: %w %q (the signature is invalid: the note was altered)", ErrNoteSignature, v.Name())
		}
		return nil, fmt.Errorf("failed to verify recipients note: %w", ErrNoteMalformed)
	}
	return signedSet(n.Text, msg, "failed to verify recipients note")
}

// ParseNoteUnverified parses a signed recipients note without checking any
// signature, for a server that has no organisation key configured. The note
// must still carry at least one signature line, and its body is validated as
// by VerifyNote.
func ParseNoteUnverified(msg []byte) (*SignedSet, error) {
	if len(msg) > MaxNoteSize {
		return nil, fmt.Errorf("failed to parse recipients note: %w: larger than %d bytes", ErrNoteMalformed, MaxNoteSize)
	}
	// With no known verifiers, note.Open checks the whole structure and
	// reports every well-formed note as unverified.
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("failed to parse recipients note: %w", ErrNoteMalformed)
	}
	return signedSet(unverified.Note.Text, msg, "failed to parse recipients note")
}

func signedSet(text string, msg []byte, context string) (*SignedSet, error) {
	s, version, err := parseNoteBody(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", context, err)
	}
	return &SignedSet{Set: s, Version: version, Note: bytes.Clone(msg)}, nil
}

// parseNoteBody parses a note body strictly: the header, the version in
// canonical decimal, a known type, then one canonical recipient of that type
// per line. Errors wrap ErrNoteMalformed (and ErrPrivateKey, ErrMixedTypes
// or ErrUnsupportedType where they apply) and never repeat a line.
func parseNoteBody(text string) (*Set, uint64, error) {
	fail := func(format string, args ...any) (*Set, uint64, error) {
		return nil, 0, fmt.Errorf("%w: "+format, append([]any{ErrNoteMalformed}, args...)...)
	}
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] != "" {
		return fail("body does not end with a newline")
	}
	lines = lines[:len(lines)-1]
	for i, line := range lines {
		if looksSecret(line) {
			return fail("line %d: %w", i+1, ErrPrivateKey)
		}
	}
	if len(lines) < 3 || lines[0] != NoteHeader {
		return fail("first line must be %q", NoteHeader)
	}
	vs, ok := strings.CutPrefix(lines[1], "version ")
	if !ok || vs == "" || vs[0] == '0' || strings.Trim(vs, "0123456789") != "" {
		return fail(`line 2 must be "version N" with N a number of at least 1`)
	}
	version, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return fail("line 2: version out of range")
	}
	typ, ok := strings.CutPrefix(lines[2], "type ")
	if !ok || !isKnownType(typ) {
		return fail(`line 3 must be "type %s" or "type %s"`, TypeHybrid, TypeX25519)
	}
	s := &Set{Type: typ}
	seen := make(map[string]bool)
	for i, line := range lines[3:] {
		n := i + 4
		if len(s.Strings) == MaxRecipients {
			return fail("line %d: %w", n, ErrTooManyRecipients)
		}
		got, canonical, err := parseRecipient(line)
		if err != nil {
			return fail("line %d: %w", n, err)
		}
		if got != typ {
			return fail("line %d: %w: a %s recipient in a note of type %s", n, ErrMixedTypes, got, typ)
		}
		if canonical != line {
			return fail("line %d: recipient is not in canonical (lowercase) form", n)
		}
		if seen[line] {
			return fail("line %d: duplicate recipient", n)
		}
		seen[line] = true
		s.Strings = append(s.Strings, line)
	}
	if len(s.Strings) == 0 {
		return fail("%w", ErrNoRecipients)
	}
	return s, version, nil
}
