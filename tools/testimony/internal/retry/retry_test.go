package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 30 * time.Second, Attempts: 8}
	for _, tt := range []struct {
		n        int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{6, 15 * time.Second, 30 * time.Second},
		{60, 15 * time.Second, 30 * time.Second},
	} {
		lo, hi := p.Delay(tt.n, 0), p.Delay(tt.n, 0.999999)
		if lo != tt.min || hi > tt.max || hi < tt.max-time.Millisecond {
			t.Errorf("Delay(%d) spans [%v, %v], want [%v, %v]", tt.n, lo, hi, tt.min, tt.max)
		}
	}
	var total time.Duration
	for n := 1; n < Default.Attempts; n++ {
		total += Default.Delay(n, 0.999999)
	}
	if total < time.Minute || total > 2*time.Minute {
		t.Errorf("Default waits up to %v in total, want between one and two minutes", total)
	}
}

func TestDo(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4}
	transient := errors.New("connection reset")
	fatal := errors.New("forbidden")
	retryable := func(err error) bool { return errors.Is(err, transient) }

	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

	calls := 0
	err := p.Do(context.Background(), sleep, retryable, func(context.Context) error {
		if calls++; calls < 3 {
			return transient
		}
		return nil
	})
	if err != nil || calls != 3 || len(waits) != 2 {
		t.Errorf("transient then success: err %v, %d calls, waits %v", err, calls, waits)
	}

	calls, waits = 0, nil
	err = p.Do(context.Background(), sleep, retryable, func(context.Context) error { calls++; return transient })
	if !errors.Is(err, transient) || calls != 4 || len(waits) != 3 {
		t.Errorf("always failing: err %v, %d calls, waits %v", err, calls, waits)
	}

	calls, waits = 0, nil
	err = p.Do(context.Background(), sleep, retryable, func(context.Context) error { calls++; return fatal })
	if !errors.Is(err, fatal) || calls != 1 || len(waits) != 0 {
		t.Errorf("fatal: err %v, %d calls, waits %v", err, calls, waits)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = p.Do(ctx, nil, retryable, func(context.Context) error { return transient })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("disk full")
	err := Permanent(base)
	if !IsPermanent(err) || !errors.Is(err, base) || err.Error() != "disk full" {
		t.Errorf("Permanent(%v) = %v", base, err)
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("IsPermanent or Permanent(nil) wrong")
	}
}

// TestProgress: failures count only since the last progress, the backoff
// grows to Max and starts again after progress, and GiveUpAfter bounds
// the time without progress.
func TestProgress(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := Progress{Policy: Policy{Initial: time.Second, Max: 4 * time.Second}, GiveUpAfter: time.Hour, Now: func() time.Time { return now }}
	cut := errors.New("connection reset")
	// A thousand failures, each after progress: never a give-up, never
	// more than the first wait.
	for range 1000 {
		d, err := p.Failed(cut)
		if err != nil || d > time.Second {
			t.Fatalf("failure after progress: wait %v, %v", d, err)
		}
		now = now.Add(10 * time.Minute)
		p.Advanced()
	}
	var waits []time.Duration
	for {
		d, err := p.Failed(cut)
		if err != nil {
			if !errors.Is(err, cut) || !strings.Contains(err.Error(), "without progress") {
				t.Fatalf("give-up error %v", err)
			}
			break
		}
		waits = append(waits, d)
		now = now.Add(d)
	}
	if len(waits) < 100 {
		t.Fatalf("gave up after %d waits in an hour; want the backoff capped at 4 s", len(waits))
	}
	for _, d := range waits[3:] {
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("wait %v beyond the cap's jitter range", d)
		}
	}
	// Attempts, if set, also bounds failures without progress.
	q := Progress{Policy: Policy{Initial: time.Second, Max: time.Second, Attempts: 3}}
	q.Failed(cut)
	q.Failed(cut)
	if _, err := q.Failed(cut); err == nil || !strings.Contains(err.Error(), "giving up after 3 failed attempts") {
		t.Fatalf("third failure with Attempts 3: %v", err)
	}
	// Without GiveUpAfter it never gives up by time.
	r := Progress{Policy: Upload, Now: func() time.Time { return now }}
	for range 100 {
		if _, err := r.Failed(cut); err != nil {
			t.Fatal(err)
		}
		now = now.Add(24 * time.Hour)
	}
	if d := Upload.Delay(100, 0.999); d < 2*time.Minute || d > 5*time.Minute {
		t.Errorf("Upload backoff caps at %v, want minutes", d)
	}
}

// TestDoTellsEveryWait: Do reports each wait before it, so a command
// whose server is unreachable is never silent.
func TestDoTellsEveryWait(t *testing.T) {
	var told []int
	p := Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 4,
		Waiting: func(n int, err error, d time.Duration) { told = append(told, n) }}
	p.Do(context.Background(), func(context.Context, time.Duration) error { return nil },
		func(error) bool { return true }, func(context.Context) error { return errors.New("refused") })
	if len(told) != 3 || told[0] != 1 || told[2] != 3 {
		t.Errorf("Waiting told %v, want attempts 1, 2, 3", told)
	}
}
