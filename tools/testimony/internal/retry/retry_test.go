package retry

import (
	"context"
	"errors"
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
