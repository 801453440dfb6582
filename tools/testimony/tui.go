package main

// This file holds every rule about what the CLI prints: errors and hints on
// stderr in the "testimony: error: …" form of package cmdline, notes, and
// the progress bar, which appears only when stderr is a terminal.

import (
	"fmt"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// event prints what the caseworker package reports while a command runs.
func (c *cli) event(e caseworker.Event) {
	switch e := e.(type) {
	case caseworker.Note:
		c.notef("%s", e.Text)
	case caseworker.Hint:
		c.hintf("%s", e.Text)
	case caseworker.Failure:
		c.progressClear()
		cmdline.Print(c.stderr, "testimony", "", e.Err)
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
