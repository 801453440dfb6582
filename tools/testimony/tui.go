package main

// This file holds every rule about what the CLI prints: errors and hints on
// stderr in the "testimony: error: …" form, notes, and the progress bar,
// which appears only when stderr is a terminal.

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// cliError is an error with hints that tell the user what to do next.
type cliError struct {
	msg   string
	hints []string
	// usage marks errors in the command line, which get a pointer to the
	// usage text.
	usage bool
}

func (e *cliError) Error() string { return e.msg }

func errorf(format string, args ...any) *cliError {
	return &cliError{msg: fmt.Sprintf(format, args...)}
}

func usageErrorf(format string, args ...any) *cliError {
	return &cliError{msg: fmt.Sprintf(format, args...), usage: true}
}

func (e *cliError) hint(format string, args ...any) *cliError {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

// prefixed returns err as a *cliError whose message starts with prefix,
// keeping its hints.
func prefixed(prefix string, err error) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return &cliError{msg: prefix + ce.msg, hints: ce.hints}
	}
	return &cliError{msg: prefix + err.Error()}
}

// printError writes err in the house format. Errors that are not
// *cliError come from libraries; their text is already lowercase and
// specific ("failed to …: …").
func printError(w io.Writer, cmd string, err error) {
	var ce *cliError
	if !errors.As(err, &ce) {
		ce = &cliError{msg: err.Error()}
	}
	fmt.Fprintf(w, "testimony: error: %s\n", ce.msg)
	for _, h := range ce.hints {
		fmt.Fprintf(w, "testimony: hint: %s\n", h)
	}
	if ce.usage {
		if cmd != "" {
			fmt.Fprintf(w, "testimony: hint: run 'testimony %s -h' for usage\n", cmd)
		} else {
			fmt.Fprintf(w, "testimony: hint: run 'testimony -h' for usage\n")
		}
	}
}

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
