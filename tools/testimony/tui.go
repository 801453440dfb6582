package main

// This file holds every rule about what the CLI prints: errors and hints on
// stderr in the "testimony: error: …" form of internal/cmdline, notes, and
// the progress bar, which appears only when stderr is a terminal.

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

// cliError is the error with hints all of testimony's commands share
// (internal/cmdline); errorf, usageErrorf and prefixed make one.
type cliError = cmdline.Error

func errorf(format string, args ...any) *cliError { return cmdline.Errorf(format, args...) }

// usageErrorf makes an error in the command line, which Print ends with a
// pointer to the usage text.
func usageErrorf(format string, args ...any) *cliError {
	return cmdline.Errorf(format, args...).Usage("")
}

// prefixed returns err with prefix before its message, keeping its hints.
func prefixed(prefix string, err error) *cliError { return cmdline.Errorf("%s%w", prefix, err) }

// printError writes err in the house format; cmd is the command that was
// run, for the usage hint.
func printError(w io.Writer, cmd string, err error) { cmdline.Print(w, "testimony", cmd, err) }

func (c *cli) notef(format string, args ...any) {
	c.progressClear()
	fmt.Fprintf(c.stderr, "testimony: "+format+"\n", args...)
}

func (c *cli) hintf(format string, args ...any) {
	c.progressClear()
	fmt.Fprintf(c.stderr, "testimony: hint: "+format+"\n", args...)
}

// progressInterval limits redraws so a fast link does not spend its time
// repainting the terminal.
const progressInterval = 100 * time.Millisecond

// progress draws "label  42%  12.3 MiB / 29.0 MiB" on one line of stderr.
// total < 0 means unknown.
func (c *cli) progress(label string, done, total int64) {
	if c.hooks.progress != nil {
		c.hooks.progress(label, done, total)
	}
	if !c.terminal {
		return
	}
	now := time.Now()
	if done != total && now.Sub(c.lastDraw) < progressInterval {
		return
	}
	c.lastDraw = now
	var line string
	if total > 0 {
		pct := done * 100 / total
		const width = 24
		bar := strings.Repeat("=", int(pct*width/100)) + strings.Repeat(" ", width-int(pct*width/100))
		line = fmt.Sprintf("%s [%s] %3d%% %s / %s", label, bar, pct, formatSize(done), formatSize(total))
	} else {
		line = fmt.Sprintf("%s %s", label, formatSize(done))
	}
	fmt.Fprintf(c.stderr, "\r%s\x1b[K", line)
	c.drawn = true
}

func (c *cli) progressClear() {
	if c.drawn {
		fmt.Fprint(c.stderr, "\r\x1b[K")
		c.drawn = false
	}
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
