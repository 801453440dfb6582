package review

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
)

// bundleOps is a bundle.json as intakelog.Ops: the log as the collector
// fetched it, with one consistency proof (from the bundle's start to its
// end) and one inclusion proof per leaf at its checkpoint. It answers
// nothing else, so the client can ask for nothing the bundle does not
// carry; that the bundle carries exactly what it should is for Verify's
// bundle rules.
type bundleOps struct{ b *bundle.Bundle }

// newClient returns the client that checks the bundle's log against the
// pinned key and the checkpoint verified on this machine.
func newClient(b *bundle.Bundle, w Witness) (*intakelog.Client, error) {
	return intakelog.NewClient(w.LogKey, bundleOps{b}, intakelog.NewMemStore(w.Checkpoint))
}

func (o bundleOps) Checkpoint(context.Context) ([]byte, error) {
	return []byte(o.b.Checkpoint), nil
}

func (o bundleOps) Consistency(_ context.Context, oldSize, newSize int64) ([]tlog.Hash, error) {
	if oldSize != o.b.FromSize {
		return nil, fmt.Errorf("%w: the bundle holds no consistency proof from log size %d", intakelog.ErrMalformed, oldSize)
	}
	return intakelog.DecodeProof(o.b.Consistency)
}

func (o bundleOps) Inclusion(_ context.Context, index, _ int64) ([]tlog.Hash, error) {
	l, ok := o.leaf(index)
	if !ok {
		return nil, fmt.Errorf("%w: the bundle holds no leaf %d", intakelog.ErrMalformed, index)
	}
	return intakelog.DecodeProof(l.Proof)
}

func (o bundleOps) Leaves(_ context.Context, start, end int64) ([]intakelog.Leaf, error) {
	out := make([]intakelog.Leaf, 0, end-start)
	for i := start; i < end; i++ {
		l, ok := o.leaf(i)
		if !ok {
			return nil, fmt.Errorf("%w: the bundle holds no leaf %d", intakelog.ErrMalformed, i)
		}
		out = append(out, intakelog.Leaf{ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date})
	}
	return out, nil
}

// leaf finds the bundle's leaf of a log index: where it belongs in the
// list, or else the first one listed with that index.
func (o bundleOps) leaf(index int64) (bundle.Leaf, bool) {
	if p := index - o.b.FromSize; p >= 0 && p < int64(len(o.b.Leaves)) && o.b.Leaves[p].Index == index {
		return o.b.Leaves[p], true
	}
	for _, l := range o.b.Leaves {
		if l.Index == index {
			return l, true
		}
	}
	return bundle.Leaf{}, false
}
