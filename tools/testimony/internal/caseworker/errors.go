package caseworker

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an error with hints that tell the caseworker what to do next.
type Error struct {
	Msg   string
	Hints []string
	// Usage marks mistakes in how a command was called, which the CLI
	// follows with a pointer to the command's usage text.
	Usage bool
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with the message format.
func Errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// UsageErrorf returns an *Error about how a command was called.
func UsageErrorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Usage: true}
}

// Hint adds a hint to e and returns e.
func (e *Error) Hint(format string, args ...any) *Error {
	e.Hints = append(e.Hints, fmt.Sprintf(format, args...))
	return e
}

// Prefixed returns err as an *Error whose message starts with prefix,
// keeping its hints.
func Prefixed(prefix string, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return &Error{Msg: prefix + ce.Msg, Hints: ce.Hints}
	}
	return &Error{Msg: prefix + err.Error()}
}

// Message is err with its hints, one per line, as the app shows it.
func Message(err error) string {
	var ce *Error
	if !errors.As(err, &ce) {
		return strings.TrimSpace(err.Error())
	}
	lines := append([]string{ce.Msg}, ce.Hints...)
	if ce.Usage {
		lines = append(lines, "run 'testimony -h' for usage")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

var (
	errorf      = Errorf
	usageErrorf = UsageErrorf
	prefixed    = Prefixed
)
