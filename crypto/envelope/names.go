package envelope

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Bounds on entry names.
const (
	// MaxNameLength bounds one path component, in bytes: the limit of
	// common file systems.
	MaxNameLength = 255
	// MaxPathLength bounds a whole entry path of a plain tarball, in bytes.
	MaxPathLength = 1024
)

// checkComponent checks one path component (a whole name in an envelope
// with a manifest). It refuses what could escape the output directory or
// mislead a reviewer looking at a directory listing.
func checkComponent(c string) error {
	switch {
	case c == "":
		return invalidf("empty name")
	case c == "." || c == "..":
		return invalidf("path escapes the output directory")
	case len(c) > MaxNameLength:
		return invalidf("name is longer than %d bytes", MaxNameLength)
	case !utf8.ValidString(c):
		return invalidf("name is not valid UTF-8")
	case slices.Contains(strings.Split(c, "/"), ".."):
		return invalidf("path escapes the output directory")
	case strings.ContainsRune(c, '/'):
		return invalidf("name contains a slash")
	}
	for _, r := range c {
		switch {
		case r == '\\':
			// A path separator on Windows.
			return invalidf("name contains a backslash")
		case unicode.IsControl(r):
			return invalidf("name contains the control character %U", r)
		case isBidiControl(r):
			// These reorder how a name is displayed ("gpj.exe" shown as
			// "exe.jpg"), so they only serve to deceive in a file name.
			return invalidf("name contains the invisible bidirectional-text control %U", r)
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// foldKey maps names that a case-insensitive or normalisation-insensitive
// file system would treat as one to the same key: Unicode canonical
// caseless matching (NFD, case fold), then NFC to make the key compact.
func foldKey(name string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFD.String(name)))
}

// duplicateError describes a name that collides with an earlier one.
func duplicateError(name, prev string) error {
	if name == prev {
		return invalidf("duplicate name")
	}
	return invalidf("duplicate of %s (the names differ only in case or Unicode normalisation)", quoteName(prev))
}

// quoteName quotes a name for an error message. Quoting escapes control
// characters, and the length is bounded because names come from the
// envelope's author.
func quoteName(s string) string {
	const max = 128
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// entryError prefixes err with the entry name, as in
// `entry "../x": path escapes the output directory`.
func entryError(name string, err error) error {
	return fmt.Errorf("entry %s: %w", quoteName(name), err)
}
