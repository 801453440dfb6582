// Package cmdline holds the conventions all of testimony's commands share
// (testimony, testimony-server, testimony-review and testimony-dev), so that
// a caseworker, an operator and a reviewer read one style:
//
//   - An error is one line on standard error, "PROG: error: …", followed by
//     one "PROG: hint: …" line per hint giving the exact fix. Messages are
//     lowercase, without a trailing period, and quote command lines and
//     values with double quotes: run "testimony-server token list -data DIR".
//   - An error carries its hints: Errorf(…).Hint(…). Print finds the hints
//     of every Error an error wraps.
//   - Flags come before arguments, as with the flag package: Parse stops
//     at the first argument and refuses a flag that follows one, with a
//     hint that moves it.
//   - -h, -help and --help print the page of the command they follow on
//     standard output and exit 0; an error in the command line points to
//     that page.
//   - "PROG version" prints the program's name and version (package
//     internal/version) on standard output and exits 0: a command, like
//     every other thing a program does, not a flag. Version runs it.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/testimony-ngo/testimony/internal/version"
)

// Error is a command's error with the hints that say how to fix it.
type Error struct {
	err   error
	hints []string
	usage bool
	cmd   string
}

// Errorf returns a new Error; %w wraps an error as fmt.Errorf does, so
// errors.Is and errors.As still see it.
func Errorf(format string, args ...any) *Error {
	return &Error{err: fmt.Errorf(format, args...)}
}

// Hint adds a hint and returns e.
func (e *Error) Hint(format string, args ...any) *Error {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

// Usage marks e as an error in the command line of cmd ("token create"):
// Print ends it with the hint to read that command's page. An empty cmd
// means the command given to Print.
func (e *Error) Usage(cmd string) *Error {
	e.usage, e.cmd = true, cmd
	return e
}

func (e *Error) Error() string { return e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// Print writes err to w in the house format: the error line, then its
// hints as Hints returns them. cmd is the command that was run, or "" for
// none.
func Print(w io.Writer, prog, cmd string, err error) {
	fmt.Fprintf(w, "%s: error: %v\n", prog, err)
	for _, h := range Hints(prog, cmd, err) {
		fmt.Fprintf(w, "%s: hint: %s\n", prog, h)
	}
}

// Hints returns the hints of every Error in err's chain (outermost first)
// and, for an error in the command line, the hint to run "PROG CMD -h", for
// a program that shows errors other than on a terminal.
func Hints(prog, cmd string, err error) []string {
	var hints []string
	usage, usageCmd := false, ""
	for e := err; e != nil; e = errors.Unwrap(e) {
		ce, ok := e.(*Error)
		if !ok {
			continue
		}
		hints = append(hints, ce.hints...)
		if ce.usage && !usage {
			usage, usageCmd = true, ce.cmd
		}
	}
	if !usage {
		return hints
	}
	if usageCmd == "" {
		usageCmd = cmd
	}
	page := prog + " -h"
	if usageCmd != "" {
		page = prog + " " + usageCmd + " -h"
	}
	return append(hints, fmt.Sprintf("run %q for its usage", page))
}

// NewFlagSet returns a flag set named after its command ("token create")
// that prints nothing itself: Parse returns its errors, for Print.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses the flags at the start of args into fs. It returns
// flag.ErrHelp for -h, -help or --help, wherever they are, so the caller
// prints the command's page. A flag of fs after an argument is an error
// whose hint moves it, as is every other mistake in the flags; both are
// marked Usage(fs.Name()).
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return Errorf("%w", err).Usage(fs.Name())
	}
	rest := fs.Args()
	if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
		return nil
	}
	for _, a := range rest[min(1, len(rest)):] {
		if a == "--" {
			return nil
		}
		if isHelp(a) {
			return flag.ErrHelp
		}
		if name, ok := flagName(a); ok && fs.Lookup(name) != nil {
			return Errorf("flag -%s comes after the first argument %q", name, rest[0]).
				Hint("put all flags before the arguments").Usage(fs.Name())
		}
	}
	return nil
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// flagName returns the name in "-name", "--name" or "-name=value".
func flagName(a string) (string, bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", false
	}
	name := strings.TrimPrefix(a[1:], "-")
	name, _, _ = strings.Cut(name, "=")
	return name, name != ""
}

// VersionPage is the page of "PROG version".
func VersionPage(prog string) string {
	return fmt.Sprintf(`Usage:
    %[1]s version

Prints the program's name, its version and the Go version and system it
was built for, on one line on standard output. Quote that line when you
ask for help or report a problem. A release is numbered like 0.9.0; a
build from the source between two releases carries the next number with
-dev, like 0.10.0-dev.

Example:
    $ %[1]s version
    %[1]s 0.9.0 (go1.26.8 linux/amd64)
`, prog)
}

// Version runs the command "PROG version" with the arguments args that
// follow it: it prints version.String(prog) on stdout. -h, wherever it is,
// prints VersionPage instead and returns nil; any other flag or an
// argument is an error.
func Version(stdout io.Writer, prog string, args []string) error {
	fs := NewFlagSet("version")
	err := Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, VersionPage(prog))
		return nil
	case err != nil:
		return err
	case fs.NArg() > 0:
		return Errorf("version takes no arguments").Usage("version")
	}
	fmt.Fprintln(stdout, version.String(prog))
	return nil
}
