package intakelog

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memOps serves a memLog as Ops, signing its checkpoints; its knobs make
// it lie.
type memOps struct {
	t     *testing.T
	log   *memLog
	skey  string
	size  int64 // the size of the checkpoint served
	calls int   // proofs fetched

	// badInclusion and badConsistency corrupt the proofs served.
	badInclusion, badConsistency bool
	// leaves, if set, edits the leaves served.
	leaves func([]Leaf) []Leaf
	// fail, if set, is returned by every call, as a network failure.
	fail error
}

func newMemOps(t *testing.T, n int) *memOps {
	skey, _ := fixedKey(t, "testimony-log-0a1b2c3d", 1)
	return &memOps{t: t, log: newMemLog(t, n), skey: skey, size: int64(n)}
}

func (m *memOps) vkey() string {
	_, vkey := fixedKey(m.t, "testimony-log-0a1b2c3d", 1)
	return vkey
}

func (m *memOps) note(size int64) []byte {
	msg, err := SignCheckpoint(m.log.checkpoint(m.t, size), signer(m.t, m.skey))
	if err != nil {
		m.t.Fatal(err)
	}
	return msg
}

func (m *memOps) Checkpoint(context.Context) ([]byte, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	return m.note(m.size), nil
}

func (m *memOps) Consistency(_ context.Context, oldSize, newSize int64) ([]tlog.Hash, error) {
	m.calls++
	if m.fail != nil {
		return nil, m.fail
	}
	p, err := tlog.ProveTree(newSize, oldSize, m.log)
	if err != nil {
		return nil, err
	}
	if m.badConsistency && len(p) > 0 {
		p[0] = flip(p[0])
	}
	return p, nil
}

func (m *memOps) Inclusion(_ context.Context, index, size int64) ([]tlog.Hash, error) {
	m.calls++
	if m.fail != nil {
		return nil, m.fail
	}
	p, err := tlog.ProveRecord(size, index, m.log)
	if err != nil {
		return nil, err
	}
	if m.badInclusion && len(p) > 0 {
		p[0] = flip(p[0])
	}
	return p, nil
}

func (m *memOps) Leaves(_ context.Context, start, end int64) ([]Leaf, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	out := append([]Leaf(nil), m.log.leaves[start:end]...)
	if m.leaves != nil {
		out = m.leaves(out)
	}
	return out, nil
}

func newClient(t *testing.T, ops *memOps, store Store) *Client {
	t.Helper()
	c, err := NewClient(ops.vkey(), ops, store)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientFollowsLog(t *testing.T) {
	ctx := context.Background()
	ops := newMemOps(t, 5)
	store := NewMemStore(nil)
	c := newClient(t, ops, store)
	if _, _, ok, err := c.Latest(); ok || err != nil {
		t.Fatalf("Latest of an empty store = %v, %v", ok, err)
	}
	cp, msg, err := c.Update(ctx)
	if err != nil || cp.Size != 5 {
		t.Fatalf("Update = %+v, %v", cp, err)
	}
	if got, _ := store.Latest(); string(got) != string(msg) {
		t.Fatalf("store holds %q, want the checkpoint", got)
	}
	ops.calls = 0
	for i := range 4 {
		ops.log.add(t, testLeaf(5+i))
	}
	ops.size = 9
	cp, _, err = c.Update(ctx)
	if err != nil || cp.Size != 9 {
		t.Fatalf("second Update = %+v, %v", cp, err)
	}
	if ops.calls != 1 {
		t.Errorf("Update fetched %d proofs, want 1 consistency proof", ops.calls)
	}
	leaves, err := c.Leaves(ctx, 5, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range leaves {
		if _, err := c.Included(ctx, cp, 5+int64(i), l); err != nil {
			t.Errorf("leaf %d: %v", 5+i, err)
		}
	}
	// Nothing new: the same checkpoint again is accepted without a proof.
	ops.calls = 0
	if _, _, err := c.Update(ctx); err != nil || ops.calls != 0 {
		t.Errorf("Update without news = %v with %d proofs fetched", err, ops.calls)
	}
}

func TestClientRefusesLies(t *testing.T) {
	ctx := context.Background()
	otherSkey, _ := fixedKey(t, "testimony-log-0a1b2c3d", 2)
	for _, tt := range []struct {
		name string
		// lie runs after the client stored the checkpoint of size 4 and
		// the log grew to 6.
		lie  func(m *memOps)
		op   func(c *Client, m *memOps) error
		want error
	}{
		{"rollback", func(m *memOps) { m.size = 3 }, update, ErrRollback},
		{"fork at the stored size", func(m *memOps) {
			m.log = newMemLog(m.t, 0)
			for i := range 4 {
				m.log.add(m.t, testLeaf(100+i))
			}
			m.size = 4
		}, update, ErrFork},
		{"history rewritten", func(m *memOps) {
			m.log = newMemLog(m.t, 0)
			for i := range 6 {
				m.log.add(m.t, testLeaf(100+i))
			}
		}, update, ErrInconsistent},
		{"bad consistency proof", func(m *memOps) { m.badConsistency = true }, update, ErrInconsistent},
		{"another key", func(m *memOps) { m.skey = otherSkey }, update, ErrUnknownKey},
		{"bad inclusion proof", func(m *memOps) { m.badInclusion = true }, included(4), ErrInclusion},
		{"leaf swapped", func(m *memOps) {
			m.leaves = func(l []Leaf) []Leaf { l[0].Size++; return l }
		}, included(4), ErrInclusion},
		{"leaf withheld", func(m *memOps) {
			m.leaves = func(l []Leaf) []Leaf { return l[1:] }
		}, leaves, ErrMalformed},
		{"malformed leaf", func(m *memOps) {
			m.leaves = func(l []Leaf) []Leaf { l[0].ID = "../x"; return l }
		}, leaves, ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemOps(t, 4)
			store := NewMemStore(nil)
			c := newClient(t, m, store)
			if _, _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			before, _ := store.Latest()
			m.log.add(t, testLeaf(4))
			m.log.add(t, testLeaf(5))
			m.size = 6
			tt.lie(m)
			err := tt.op(c, m)
			if !errors.Is(err, tt.want) || !IsLogError(err) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if after, _ := store.Latest(); string(after) != string(before) {
				t.Errorf("a lying log changed the stored checkpoint")
			}
		})
	}
}

func update(c *Client, _ *memOps) error {
	_, _, err := c.Update(context.Background())
	return err
}

func included(index int64) func(c *Client, m *memOps) error {
	return func(c *Client, m *memOps) error {
		ctx := context.Background()
		cp, _, err := c.Checkpoint(ctx)
		if err != nil {
			return err
		}
		leaves, err := c.Leaves(ctx, index, index+1)
		if err != nil {
			return err
		}
		_, err = c.Included(ctx, cp, index, leaves[0])
		return err
	}
}

func leaves(c *Client, _ *memOps) error {
	_, err := c.Leaves(context.Background(), 4, 6)
	return err
}

func TestClientPassesOpsErrors(t *testing.T) {
	m := newMemOps(t, 3)
	m.fail = errors.New("connection reset")
	c := newClient(t, m, NewMemStore(nil))
	_, _, err := c.Update(context.Background())
	if !errors.Is(err, m.fail) || IsLogError(err) {
		t.Fatalf("Update = %v, want the Ops error unchanged", err)
	}
}

func TestClientStoredDoesNotVerify(t *testing.T) {
	m := newMemOps(t, 3)
	otherSkey, _ := fixedKey(t, "testimony-log-0a1b2c3d", 2)
	msg, err := SignCheckpoint(m.log.checkpoint(t, 3), signer(t, otherSkey))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m, NewMemStore(msg))
	if _, _, err := c.Update(context.Background()); !errors.Is(err, ErrStored) || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Update = %v, want ErrStored", err)
	}
}

// racingStore is a store whose first Swap loses to another update that
// stores won.
type racingStore struct {
	*MemStore
	won   []byte
	raced bool
}

func (r *racingStore) Swap(old, new []byte) error {
	if !r.raced {
		r.raced = true
		if err := r.MemStore.Swap(old, r.won); err != nil {
			return err
		}
	}
	return r.MemStore.Swap(old, new)
}

func TestClientAcceptRace(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		wonSize   int64 // the size the other update stored
		forkedWon bool
		want      error
		keep      int64 // the size stored in the end
	}{
		{"other update older", 3, false, nil, 6},
		{"other update newer", 8, false, nil, 8},
		{"other update same", 6, false, nil, 6},
		{"other update forked", 6, true, ErrFork, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemOps(t, 8)
			won := m.note(tt.wonSize)
			if tt.forkedWon {
				fork := newMemOps(t, 0)
				for i := range int(tt.wonSize) {
					fork.log.add(t, testLeaf(100+i))
				}
				won = fork.note(tt.wonSize)
			}
			store := &racingStore{MemStore: NewMemStore(m.note(2)), won: won}
			c := newClient(t, m, store)
			m.size = 6
			cp, msg, err := c.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Accept(ctx, cp, msg)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Accept = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _, _, err := c.Latest()
			if err != nil || got.Size != tt.keep {
				t.Errorf("stored size %d (%v), want %d", got.Size, err, tt.keep)
			}
		})
	}
}

func TestMemStoreSwap(t *testing.T) {
	s := NewMemStore(nil)
	if err := s.Swap([]byte("x"), []byte("y")); !errors.Is(err, ErrWriteConflict) {
		t.Fatalf("Swap from a wrong old value = %v", err)
	}
	if err := s.Swap(nil, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Swap(nil, []byte("b")); !errors.Is(err, ErrWriteConflict) {
		t.Fatalf("Swap from none when a value is stored = %v", err)
	}
	if got, _ := s.Latest(); string(got) != "a" {
		t.Fatalf("Latest = %q", got)
	}
}

func TestNewClientBadKey(t *testing.T) {
	if _, err := NewClient("not a key", nil, nil); !errors.Is(err, ErrMalformed) {
		t.Fatal(fmt.Sprint("NewClient accepted a bad key: ", err))
	}
}

// TestClientAcceptAfterCheck: a caller that checked the new checkpoint
// against the stored one (receipts verify, collect) and accepts it later
// causes no second proof request.
func TestClientAcceptAfterCheck(t *testing.T) {
	ctx := context.Background()
	m := newMemOps(t, 6)
	store := NewMemStore(m.note(3))
	c := newClient(t, m, store)
	old, _, _, err := c.Latest()
	if err != nil {
		t.Fatal(err)
	}
	cp, msg, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Consistent(ctx, old, cp); err != nil {
		t.Fatal(err)
	}
	if err := c.Accept(ctx, cp, msg); err != nil || m.calls != 1 {
		t.Fatalf("Accept = %v after %d proof requests, want 1", err, m.calls)
	}
	if got, _ := store.Latest(); string(got) != string(msg) {
		t.Error("Accept did not store the checkpoint")
	}
}
