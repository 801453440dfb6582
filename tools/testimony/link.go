package main

// This file holds how submit and resume ride out bad links on the
// command line: the flags -give-up-after and -stall-timeout, and the one
// line printed before every wait, so that a caseworker whose link is down
// sees what happens instead of a silent screen.

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/upload"
)

// linkFlags are the flags of submit and resume about bad links.
type linkFlags struct {
	giveUpAfter durationFlag
	stall       durationFlag
}

// register adds -give-up-after and -stall-timeout to fs.
func (lf *linkFlags) register(fs *flag.FlagSet) {
	lf.giveUpAfter = durationFlag{d: retry.DefaultGiveUpAfter, min: 0, zero: true}
	lf.stall = durationFlag{d: upload.DefaultStallTimeout, min: time.Second}
	fs.Var(&lf.giveUpAfter, "give-up-after", "")
	fs.Var(&lf.stall, "stall-timeout", "")
}

// durationFlag is a Go duration of at least min; 0 only if zero allows it.
type durationFlag struct {
	d    time.Duration
	min  time.Duration
	zero bool
}

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errors.New("want a duration like 90s, 30m or 24h")
	case d == 0 && f.zero:
	case d < f.min:
		return fmt.Errorf("want at least %s", f.min)
	}
	f.d = d
	return nil
}

// uploadWait prints, on one line of stderr whether or not it is a
// terminal, why the upload stopped, how much the server holds, and when
// the next try comes.
func (c *cli) uploadWait(err error, wait time.Duration, held, total int64) {
	sent := fmt.Sprintf("%s of %s sent", formatSize(held), formatSize(total))
	if wait <= 0 {
		c.notef("connection lost (%v); %s, continuing", err, sent)
		return
	}
	c.notef("%v; %s; next try in %s, at %s", err, sent, roundWait(wait), c.now().Add(wait).Format("15:04:05"))
}

// retryWait is the retry policy's Waiting for every other request: the
// server is unreachable, say so and say when the next try comes.
func (c *cli) retryWait(attempt int, err error, wait time.Duration) {
	c.notef("attempt %d failed (%v); next try in %s, at %s", attempt, err, roundWait(wait), c.now().Add(wait).Format("15:04:05"))
}

func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
