// Package retry is the CLI's policy for repeating network operations that
// failed for reasons that may pass: exponential backoff with jitter and a
// bound on consecutive failures, so a client on a dead link gives up within
// about two minutes and says so, instead of hanging or hammering.
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
		if err := sleep(ctx, p.Delay(n, Jitter())); err != nil {
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
