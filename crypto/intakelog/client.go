package intakelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Ops is how a Client reaches a log. The client never knows how bytes
// arrive: the caseworker's tool implements Ops with HTTPS requests and
// retries, the reviewer's with a bundle.json read from a USB stick, and a
// receipt is the Ops of the one leaf it proves. Everything an Ops returns
// is untrusted; the Client verifies it.
//
// An implementation that decodes proofs or leaves from a wire format
// reports a malformed one with an error wrapping ErrMalformed. Any other
// error (a network failure, a refusal) is passed to the caller unchanged.
type Ops interface {
	// Checkpoint returns the log's newest signed checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Consistency returns the proof that the tree of size oldSize is a
	// prefix of the tree of size newSize.
	Consistency(ctx context.Context, oldSize, newSize int64) ([]tlog.Hash, error)
	// Inclusion returns the proof that record index is in the tree of
	// size size.
	Inclusion(ctx context.Context, index, size int64) ([]tlog.Hash, error)
	// Leaves returns the records start to end-1, in order.
	Leaves(ctx context.Context, start, end int64) ([]Leaf, error)
}

// Store keeps the newest checkpoint a Client verified, as a signed note.
// Swap makes an update conditional on what the update was checked
// against, so two updates (two commands run at once, or a command and the
// reviewer's next bundle) cannot overwrite each other's verified state.
type Store interface {
	// Latest returns the stored signed checkpoint, or nil if there is none.
	Latest() ([]byte, error)
	// Swap stores new if the store still holds old (nil for none), and
	// returns an error wrapping ErrWriteConflict if it does not.
	Swap(old, new []byte) error
}

// ErrWriteConflict means a Store's checkpoint changed between Latest and
// Swap: another update got there first.
var ErrWriteConflict = errors.New("the stored checkpoint changed during the update")

// ErrStored means the checkpoint in a Store does not open with the log key:
// the file was edited, or the pinned key was replaced.
var ErrStored = errors.New("stored checkpoint does not verify with the log key")

// IsLogError reports whether err is a failure of the log's data to verify
// (one of ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrInclusion,
// ErrInconsistent, ErrFork, ErrRollback) rather than a failure to reach the
// log: a proof of misbehaviour, not a reason to try again.
func IsLogError(err error) bool {
	for _, e := range []error{ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrInclusion, ErrInconsistent, ErrFork, ErrRollback} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// maxSwapAttempts bounds how often Accept retries after a write conflict;
// each retry means another update really happened in between.
const maxSwapAttempts = 10

// Client checks a log through its Ops against the log key and the
// checkpoint in its Store. Its methods verify before they return: a
// checkpoint is signed by the key, a proof proves, a leaf is well-formed.
type Client struct {
	key   string
	ops   Ops
	store Store

	mu sync.Mutex
	// proven holds the pairs (old, new) that Consistent proved, so Accept
	// does not ask for a proof the caller already checked.
	proven map[[2]Checkpoint]bool
}

// NewClient returns a client of the log whose note verifier key is logKey.
// store may be nil for a client that remembers nothing.
func NewClient(logKey string, ops Ops, store Store) (*Client, error) {
	if _, err := note.NewVerifier(logKey); err != nil {
		return nil, fmt.Errorf("failed to create log client: %w: log key: %v", ErrMalformed, err)
	}
	return &Client{key: logKey, ops: ops, store: store, proven: map[[2]Checkpoint]bool{}}, nil
}

// Open verifies and parses a signed checkpoint with the client's log key.
func (c *Client) Open(msg []byte) (Checkpoint, error) {
	return OpenCheckpoint(msg, c.key)
}

// Checkpoint fetches the log's newest checkpoint and verifies its
// signature. It does not compare it with the stored one; see Update.
func (c *Client) Checkpoint(ctx context.Context) (Checkpoint, []byte, error) {
	msg, err := c.ops.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	cp, err := c.Open(msg)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return cp, msg, nil
}

// Latest returns the stored checkpoint, with ok false if there is none.
// A stored checkpoint that does not verify is an error wrapping ErrStored
// and the reason.
func (c *Client) Latest() (cp Checkpoint, msg []byte, ok bool, err error) {
	if c.store == nil {
		return Checkpoint{}, nil, false, nil
	}
	msg, err = c.store.Latest()
	if err != nil || msg == nil {
		return Checkpoint{}, nil, false, err
	}
	if cp, err = c.Open(msg); err != nil {
		return Checkpoint{}, nil, false, fmt.Errorf("%w: %w", ErrStored, err)
	}
	return cp, msg, true, nil
}

// Consistent checks that new extends old, fetching the proof only when
// there is something to prove (0 < old.Size < new.Size), and returns it.
// It fails with ErrRollback, ErrFork or ErrInconsistent as
// VerifyConsistency does.
func (c *Client) Consistent(ctx context.Context, old, new Checkpoint) ([]tlog.Hash, error) {
	var proof []tlog.Hash
	if old.Origin == new.Origin && old.Size > 0 && old.Size < new.Size {
		var err error
		if proof, err = c.ops.Consistency(ctx, old.Size, new.Size); err != nil {
			return nil, err
		}
	}
	if err := VerifyConsistency(old, new, proof); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.proven[[2]Checkpoint{old, new}] = true
	c.mu.Unlock()
	return proof, nil
}

// consistent is Consistent without a second request for a pair already
// proven.
func (c *Client) consistent(ctx context.Context, old, new Checkpoint) error {
	c.mu.Lock()
	ok := c.proven[[2]Checkpoint{old, new}]
	c.mu.Unlock()
	if ok {
		return nil
	}
	_, err := c.Consistent(ctx, old, new)
	return err
}

// Included checks that leaf is record index of the tree in cp, fetching
// the proof, and returns the proof.
func (c *Client) Included(ctx context.Context, cp Checkpoint, index int64, leaf Leaf) ([]tlog.Hash, error) {
	if index < 0 || index >= cp.Size {
		return nil, VerifyInclusion(cp, index, leaf, nil)
	}
	proof, err := c.ops.Inclusion(ctx, index, cp.Size)
	if err != nil {
		return nil, err
	}
	if err := VerifyInclusion(cp, index, leaf, proof); err != nil {
		return nil, err
	}
	return proof, nil
}

// Leaves fetches the records start to end-1 and checks that there are
// exactly that many, each well-formed. Whether they are in the log is for
// Included to check, against a checkpoint.
func (c *Client) Leaves(ctx context.Context, start, end int64) ([]Leaf, error) {
	if start < 0 || end < start {
		return nil, fmt.Errorf("failed to read log leaves: invalid range %d to %d", start, end)
	}
	leaves, err := c.ops.Leaves(ctx, start, end)
	if err != nil {
		return nil, err
	}
	if int64(len(leaves)) != end-start {
		return nil, fmt.Errorf("%w: asked for log leaves %d to %d, got %d", ErrMalformed, start, end-1, len(leaves))
	}
	for i, l := range leaves {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("log leaf %d is malformed: %w", start+int64(i), err)
		}
	}
	return leaves, nil
}

// Accept stores msg, a checkpoint verified by the caller, as the newest
// verified one. If the store holds an older checkpoint, cp must extend it;
// if it holds a newer one (another update got further), that one stays
// and must extend cp; a checkpoint of the same size must have the same
// root (ErrFork otherwise). The stored checkpoint never moves backwards,
// and a write conflict is resolved by checking again against what won.
func (c *Client) Accept(ctx context.Context, cp Checkpoint, msg []byte) error {
	if got, err := c.Open(msg); err != nil || got != cp {
		return fmt.Errorf("failed to store checkpoint: %w: the note is not the checkpoint verified", ErrMalformed)
	}
	if c.store == nil {
		return nil
	}
	for range maxSwapAttempts {
		old, oldMsg, ok, err := c.Latest()
		if err != nil {
			return err
		}
		if ok {
			if old.Size >= cp.Size {
				return c.consistent(ctx, cp, old)
			}
			if err := c.consistent(ctx, old, cp); err != nil {
				return err
			}
		}
		err = c.store.Swap(oldMsg, msg)
		if !errors.Is(err, ErrWriteConflict) {
			return err
		}
	}
	return fmt.Errorf("failed to store checkpoint: %w %d times", ErrWriteConflict, maxSwapAttempts)
}

// Update fetches the newest checkpoint, checks that it extends the stored
// one (ErrRollback if it is smaller) and stores it: what a client does to
// follow a log.
func (c *Client) Update(ctx context.Context) (Checkpoint, []byte, error) {
	cp, msg, err := c.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	// A checkpoint older than the stored one is a rollback here; Accept
	// keeps a newer stored one only because another update stored it.
	old, _, ok, err := c.Latest()
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if ok {
		if _, err := c.Consistent(ctx, old, cp); err != nil {
			return Checkpoint{}, nil, err
		}
	}
	if err := c.Accept(ctx, cp, msg); err != nil {
		return Checkpoint{}, nil, err
	}
	return cp, msg, nil
}

// MemStore is a Store in memory, for tests and for callers that keep the
// checkpoint elsewhere and only need the check.
type MemStore struct {
	mu  sync.Mutex
	msg []byte
}

// NewMemStore returns a MemStore holding msg (nil or empty for none).
func NewMemStore(msg []byte) *MemStore {
	if len(msg) == 0 {
		return &MemStore{}
	}
	return &MemStore{msg: bytes.Clone(msg)}
}

// Latest returns the stored checkpoint.
func (m *MemStore) Latest() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.msg), nil
}

// Swap stores new if m holds old.
func (m *MemStore) Swap(old, new []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bytes.Equal(m.msg, old) || (m.msg == nil) != (old == nil) {
		return ErrWriteConflict
	}
	m.msg = bytes.Clone(new)
	return nil
}
