package main

// This file holds the output rules, internal/cmdline's. Results go to
// standard output (the recipient from keygen, the table from open) so they
// can be redirected; everything else goes to standard error as
// "testimony-review: error: …",
// "testimony-review: hint: …", "testimony-review: warning: …" or a plain
// "testimony-review: …" note of what a long wait is doing, lowercase, with
// no trailing period. Passphrase prompts go to the terminal only; progress
// lines (progress.go) only to a terminal.

import (
	"fmt"
	"io"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

const prog = "testimony-review"

// ui carries the process's standard streams.
type ui struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// terminal is whether stderr is a terminal, which enables progress.
	terminal bool
	// prog is the progress line being drawn, if any; now is the clock
	// for its rate (time.Now if nil).
	prog *progress
	now  func() time.Time
}

func usageErrorf(cmd string, format string, args ...any) *cmdline.Error {
	return cmdline.Errorf("%s: %s", cmd, fmt.Sprintf(format, args...)).Usage(cmd)
}

// fail prints err with its hints and returns the exit code for a failure.
func (u *ui) fail(err error) int {
	u.clearProgress()
	cmdline.Print(u.stderr, prog, "", err)
	return 1
}

func (u *ui) errorf(format string, args ...any) {
	u.clearProgress()
	fmt.Fprintf(u.stderr, prog+": error: "+format+"\n", args...)
}

func (u *ui) hintf(format string, args ...any) {
	u.clearProgress()
	fmt.Fprintf(u.stderr, prog+": hint: "+format+"\n", args...)
}

func (u *ui) notef(format string, args ...any) {
	u.clearProgress()
	fmt.Fprintf(u.stderr, prog+": "+format+"\n", args...)
}

func (u *ui) warnf(format string, args ...any) {
	u.clearProgress()
	fmt.Fprintf(u.stderr, prog+": warning: "+format+"\n", args...)
}
