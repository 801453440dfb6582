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

	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// cliError is an error with hints that tell the user what to do next.
type cliError = caseworker.Error

var (
	errorf      = caseworker.Errorf
	usageErrorf = caseworker.UsageErrorf
	prefixed    = caseworker.Prefixed
)

// printError writes err in the house format. Errors that are not
// *cliError come from libraries; their text is already lowercase and
// specific ("failed to …: …").
func printError(w io.Writer, cmd string, err error) {
	var ce *cliError
	if !errors.As(err, &ce) {
		ce = &cliError{Msg: err.Error()}
	}
	fmt.Fprintf(w, "testimony: error: %s\n", ce.Msg)
	for _, h := range ce.Hints {
		fmt.Fprintf(w, "testimony: hint: %s\n", h)
	}
	if ce.Usage {
		if cmd != "" {
			fmt.Fprintf(w, "testimony: hint: run 'testimony %s -h' for usage\n", cmd)
		} else {
			fmt.Fprintf(w, "testimony: hint: run 'testimony -h' for usage\n")
		}
	}
}

// event prints what the caseworker package reports while a command runs.
func (c *cli) event(e caseworker.Event) {
	switch e := e.(type) {
	case caseworker.Note:
		c.notef("%s", e.Text)
	case caseworker.Hint:
		c.hintf("%s", e.Text)
	case caseworker.Failure:
		c.progressClear()
		printError(c.stderr, "", e.Err)
	case caseworker.Progress:
		c.progress(e.Label, e.Done, e.Total)
	case caseworker.UploadWait:
		c.uploadWait(e.Err, e.Wait, e.Held, e.Total)
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
