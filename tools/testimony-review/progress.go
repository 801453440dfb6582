package main

// The progress line of open, drawn the way testimony submit draws its own
// (tools/testimony/tui.go): one line on standard error, redrawn in place at
// most every progressInterval, cleared before anything else is printed,
// and only when standard error is a terminal: in a script or a log file
// the carriage returns would be noise.

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
)

// progressInterval limits redraws so a fast disk does not spend its time
// repainting the terminal.
const progressInterval = 100 * time.Millisecond

// minRateTime is how long a phase runs before its rate is shown; a rate
// over a few milliseconds means nothing.
const minRateTime = time.Second

// progress is the state of the line being drawn for one phase: "verifying"
// (log verify hashing the ciphertexts) or "decrypting" (open).
type progress struct {
	phase string
	start time.Time
	// base is the bytes of the phase's earlier submissions; id and done
	// are the current one's.
	base     int64
	id       string
	done     int64
	lastDraw time.Time
	drawn    bool
}

// stderrIsTerminal reports whether progress lines can be drawn.
func (u *ui) stderrIsTerminal() bool {
	f, ok := u.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress begins a phase and returns the function that follows it,
// or nil (no progress at all) when standard error is not a terminal.
func (u *ui) startProgress(phase string) review.ProgressFunc {
	u.clearProgress()
	if !u.terminal {
		return nil
	}
	u.prog = &progress{phase: phase, start: u.clock()}
	p := u.prog
	return func(id string, done, total int64) { u.drawProgress(p, id, done, total) }
}

func (u *ui) drawProgress(p *progress, id string, done, total int64) {
	if u.prog != p {
		return
	}
	if id != p.id {
		p.base += p.done
		p.id = id
	}
	p.done = done
	now := u.clock()
	if done != total && now.Sub(p.lastDraw) < progressInterval {
		return
	}
	p.lastDraw = now
	short := id
	if len(short) > 8 {
		short = short[:8]
	}
	line := fmt.Sprintf("%s %s  %s / %s", p.phase, short, humanSize(done), humanSize(total))
	if el := now.Sub(p.start); el >= minRateTime {
		line += fmt.Sprintf("  %s/s", humanSize(int64(float64(p.base+done)/el.Seconds())))
	}
	fmt.Fprintf(u.stderr, "\r%s\x1b[K", line)
	p.drawn = true
}

// clearProgress erases the progress line, if one is drawn, and ends the
// phase.
func (u *ui) clearProgress() {
	if u.prog != nil && u.prog.drawn {
		fmt.Fprint(u.stderr, "\r\x1b[K")
	}
	u.prog = nil
}

func (u *ui) clock() time.Time {
	if u.now != nil {
		return u.now()
	}
	return time.Now()
}
