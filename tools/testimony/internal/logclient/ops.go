// Package logclient feeds the caseworker binary's checks of a server's
// intake log into the one transport-free intakelog.Client: Ops is the
// server's log API, with retries, as intakelog.Ops, and File is the one
// record per log of the newest checkpoint this device verified (by
// "testimony receipts verify" or "testimony collect"), as intakelog.Store.
//
// Migrate makes that record from the two files older versions kept for
// the same log (checkpoints/<host_port> and the last checkpoint in
// collect/<host_port>.json), keeping the newer and refusing two that
// disagree (a fork).
package logclient

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// API is the part of the server's API that reads the log. *api.Client
// implements it.
type API interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	Consistency(ctx context.Context, oldSize, newSize int64) ([]string, error)
	Inclusion(ctx context.Context, index, size int64) ([]string, error)
	Leaves(ctx context.Context, start, end int64) ([]api.LogLeaf, error)
}

// Ops is API as intakelog.Ops: each request is retried under Retry, and
// proofs and leaves are decoded strictly (a malformed one is an error
// wrapping intakelog.ErrMalformed, never retried).
type Ops struct {
	API   API
	Retry retry.Policy    // zero means retry.Default
	Sleep retry.SleepFunc // nil means retry.Sleep
	// Retryable decides which errors are worth another attempt; nil means
	// api.Retryable.
	Retryable func(error) bool
}

func (o *Ops) do(ctx context.Context, op func(context.Context) error) error {
	p, retryable := o.Retry, o.Retryable
	if p.Attempts == 0 {
		p = retry.Default
	}
	if retryable == nil {
		retryable = api.Retryable
	}
	return p.Do(ctx, o.Sleep, retryable, op)
}

// Checkpoint fetches the newest signed checkpoint.
func (o *Ops) Checkpoint(ctx context.Context) (msg []byte, err error) {
	err = o.do(ctx, func(ctx context.Context) error {
		msg, err = o.API.Checkpoint(ctx)
		return err
	})
	return msg, err
}

// Consistency fetches and decodes a consistency proof.
func (o *Ops) Consistency(ctx context.Context, oldSize, newSize int64) ([]tlog.Hash, error) {
	var s []string
	err := o.do(ctx, func(ctx context.Context) (err error) {
		s, err = o.API.Consistency(ctx, oldSize, newSize)
		return err
	})
	if err != nil {
		return nil, err
	}
	return intakelog.DecodeProof(s)
}

// Inclusion fetches and decodes an inclusion proof.
func (o *Ops) Inclusion(ctx context.Context, index, size int64) ([]tlog.Hash, error) {
	var s []string
	err := o.do(ctx, func(ctx context.Context) (err error) {
		s, err = o.API.Inclusion(ctx, index, size)
		return err
	})
	if err != nil {
		return nil, err
	}
	return intakelog.DecodeProof(s)
}

// Leaves fetches the leaves start to end-1, api.MaxLeaves per request,
// and checks that each page holds exactly the leaves asked for.
func (o *Ops) Leaves(ctx context.Context, start, end int64) ([]intakelog.Leaf, error) {
	out := make([]intakelog.Leaf, 0, end-start)
	for first := start; first < end; first += api.MaxLeaves {
		last := min(first+api.MaxLeaves, end)
		var page []api.LogLeaf
		err := o.do(ctx, func(ctx context.Context) (err error) {
			page, err = o.API.Leaves(ctx, first, last)
			return err
		})
		if err != nil {
			return nil, err
		}
		if int64(len(page)) != last-first {
			return nil, fmt.Errorf("%w: asked for log leaves %d to %d, got %d", intakelog.ErrMalformed, first, last-1, len(page))
		}
		for i, l := range page {
			if index := first + int64(i); l.Index != index {
				return nil, fmt.Errorf("%w: asked for log leaf %d, got leaf %d", intakelog.ErrMalformed, index, l.Index)
			}
			out = append(out, intakelog.Leaf{ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date})
		}
	}
	return out, nil
}
