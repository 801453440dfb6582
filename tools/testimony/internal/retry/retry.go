// Package retry is the CLI's policy for repeating network operations that
// failed for reasons that may pass: exponential backoff with jitter and a
// bound on consecutive failures, so a client on a dead link gives up within
// about two minutes and says so, instead of hanging or hammering.
//
// Uploads are different: they run for hours over links that fail every
// few seconds and still carry the file. Progress tracks them: a failure
// after which the server holds more than before resets the backoff and
// does not count toward giving up, and without progress the client backs
// off up to minutes and gives up only after a long time (a day by default).
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy waits min(Max, Initial·2ⁿ⁻¹) after the n-th consecutive failure,
// jittered to between half and all of that, and gives up after Attempts
// consecutive failures. Jitter keeps many clients that lost the same server
// from returning in lockstep.
type Policy struct {
	Initial  time.Duration
	Max      time.Duration
	Attempts int
	// Waiting, if set, is told about every wait before another attempt:
	// the attempt that failed (from 1), its error and the wait. A user
	// who sees nothing for minutes assumes the program hangs.
	Waiting func(attempt int, err error, wait time.Duration)
}

// Default waits at most about 90 seconds in total (1+2+4+8+16+30+30)
// over 8 attempts.
var Default = Policy{Initial: time.Second, Max: 30 * time.Second, Attempts: 8}

// Delay returns the wait after the n-th consecutive failure (n ≥ 1); jitter
// is a number in [0, 1).
func (p Policy) Delay(n int, jitter float64) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// Jitter returns a random jitter for Delay.
func Jitter() float64 { return rand.Float64() }

// SleepFunc waits for d or until ctx is done.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Sleep is the real SleepFunc.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do calls op until it succeeds, returns an error retryable rejects, or
// has failed p.Attempts times. sleep may be nil for Sleep.
func (p Policy) Do(ctx context.Context, sleep SleepFunc, retryable func(error) bool, op func(context.Context) error) error {
	if sleep == nil {
		sleep = Sleep
	}
	for n := 1; ; n++ {
		err := op(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		if n >= p.Attempts {
			return fmt.Errorf("giving up after %d failed attempts: %w", n, err)
		}
		d := p.Delay(n, Jitter())
		if p.Waiting != nil {
			p.Waiting(n, err, d)
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// permanentError marks an error that repeating the operation cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (a full disk, a
// download that does not match its listing), whatever its cause.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Upload is the backoff of uploads: from a second up to five minutes
// between attempts that made no progress, with no bound on their number;
// Progress.GiveUpAfter bounds the time instead.
var Upload = Policy{Initial: time.Second, Max: 5 * time.Minute}

// DefaultGiveUpAfter is how long an upload keeps trying without progress.
const DefaultGiveUpAfter = 24 * time.Hour

// Progress decides, for one long operation that advances in steps, how
// long to wait after a failure and when to give up: only failures since the
// last step forward count.
type Progress struct {
	Policy Policy
	// GiveUpAfter is how long to keep trying without progress; zero means
	// forever (as long as the program runs).
	GiveUpAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	fails int
	since time.Time // the last progress, or the first failure after it
}

// Advanced records progress: the backoff starts again from Initial and the
// failures before it are forgotten.
func (p *Progress) Advanced() {
	p.fails = 0
	p.since = time.Time{}
}

// Failed records a failure without progress and returns the wait before
// the next attempt, or an error saying why to give up, wrapping err.
func (p *Progress) Failed(err error) (time.Duration, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if p.since.IsZero() {
		p.since = now()
	}
	p.fails++
	if p.Policy.Attempts > 0 && p.fails >= p.Policy.Attempts {
		return 0, fmt.Errorf("giving up after %d failed attempts: %w", p.fails, err)
	}
	if p.GiveUpAfter > 0 && now().Sub(p.since) >= p.GiveUpAfter {
		return 0, fmt.Errorf("giving up after %d failed attempts in %s without progress: %w",
			p.fails, now().Sub(p.since).Round(time.Second), err)
	}
	return p.Policy.Delay(p.fails, Jitter()), nil
}

// Failures returns the failures since the last progress.
func (p *Progress) Failures() int { return p.fails }
