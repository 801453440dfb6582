// Package receipt is the caseworker's proof that the server accepted a
// submission: the submission's intake log leaf (id, ciphertext size and
// SHA-256, UTC date received), its index in the log, a checkpoint signed by
// the log key that includes it, and the inclusion proof.
//
// A receipt verifies against the log's verifier key alone, so it stays
// useful if the server is later seized or starts lying: a log that drops or
// swaps the submission can no longer produce checkpoints consistent with the
// one in the receipt. The date has no time of day on purpose: a precise
// timestamp would help an observer correlate an upload with a caseworker's
// movements.
package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// Version is the only receipt format version this package produces and accepts.
const Version = 2

// MaxSize bounds the receipt JSON that Parse accepts. A receipt for a log
// of a million entries is about 1.3 KiB.
const MaxSize = 16 << 10

// ErrMalformed means a receipt is not well-formed. Verification failures
// wrap the intakelog errors (ErrUnknownKey, ErrBadSignature, ErrInclusion…).
var ErrMalformed = errors.New("malformed receipt")

// Receipt is the JSON document described in docs/formats.md.
type Receipt struct {
	Version  int    `json:"version"`
	ID       string `json:"id"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Received string `json:"received"`
	Index    int64  `json:"index"`
	// Checkpoint is the signed checkpoint note text.
	Checkpoint string `json:"checkpoint"`
	// Proof is the inclusion proof of the leaf at Index in Checkpoint's
	// tree, each hash in standard base64.
	Proof []string `json:"proof"`
}

// New returns the receipt for leaf, stored at index in the log, included in
// the tree of signedCheckpoint with the given proof. It does not verify.
func New(leaf intakelog.Leaf, index int64, signedCheckpoint []byte, proof []tlog.Hash) *Receipt {
	return &Receipt{
		Version:    Version,
		ID:         leaf.ID,
		Size:       leaf.Size,
		SHA256:     leaf.SHA256,
		Received:   leaf.Date,
		Index:      index,
		Checkpoint: string(signedCheckpoint),
		Proof:      intakelog.EncodeProof(proof),
	}
}

// Leaf returns the intake log leaf the receipt is for.
func (r *Receipt) Leaf() intakelog.Leaf {
	return intakelog.Leaf{ID: r.ID, SHA256: r.SHA256, Size: r.Size, Date: r.Received}
}

// Verify checks that r is well-formed, that its checkpoint is signed by the
// log key logVerifier (a note verifier key) and that the proof shows r's leaf
// at r.Index in that checkpoint's tree. It returns the checkpoint, which the
// caller keeps to check later checkpoints for consistency with it.
//
// The check is intakelog.Client's, with the receipt as its Ops: a receipt is
// a log that holds one checkpoint and one inclusion proof.
func (r *Receipt) Verify(logVerifier string) (intakelog.Checkpoint, error) {
	if err := r.check(); err != nil {
		return intakelog.Checkpoint{}, fmt.Errorf("failed to verify receipt: %w", err)
	}
	c, err := intakelog.NewClient(logVerifier, ops{r}, nil)
	if err != nil {
		return intakelog.Checkpoint{}, fmt.Errorf("failed to verify receipt %s: %w", r.ID, err)
	}
	ctx := context.Background()
	cp, _, err := c.Checkpoint(ctx)
	if err != nil {
		return intakelog.Checkpoint{}, fmt.Errorf("failed to verify receipt %s: %w", r.ID, err)
	}
	if _, err := c.Included(ctx, cp, r.Index, r.Leaf()); err != nil {
		return intakelog.Checkpoint{}, fmt.Errorf("failed to verify receipt %s: %w", r.ID, err)
	}
	return cp, nil
}

// ops serves a receipt as intakelog.Ops.
type ops struct{ r *Receipt }

func (o ops) Checkpoint(context.Context) ([]byte, error) { return []byte(o.r.Checkpoint), nil }

func (o ops) Inclusion(_ context.Context, index, _ int64) ([]tlog.Hash, error) {
	if index != o.r.Index {
		return nil, fmt.Errorf("%w: the receipt proves leaf %d, not %d", ErrMalformed, o.r.Index, index)
	}
	return intakelog.DecodeProof(o.r.Proof)
}

func (o ops) Consistency(context.Context, int64, int64) ([]tlog.Hash, error) {
	return nil, fmt.Errorf("%w: a receipt holds no consistency proof", ErrMalformed)
}

func (o ops) Leaves(context.Context, int64, int64) ([]intakelog.Leaf, error) {
	return nil, fmt.Errorf("%w: a receipt holds no leaves but its own", ErrMalformed)
}

// Parse decodes a receipt strictly: at most MaxSize bytes, exactly the eight
// fields with their exact names, each once, no null, nothing after the
// document, and every field well-formed. It does not verify the checkpoint
// or the proof; call Verify for that.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("failed to parse receipt: %w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	// Look at the version first, so another version gets a clear message
	// rather than an "unknown field" one.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err == nil && v.Version != nil && *v.Version != Version {
		return nil, fmt.Errorf("failed to parse receipt: %w: unsupported version %d (this program reads version %d)", ErrMalformed, *v.Version, Version)
	}
	r := new(Receipt)
	if err := strictjson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("failed to parse receipt: %w: %v", ErrMalformed, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("failed to parse receipt: %w", err)
	}
	return r, nil
}

// check reports whether every field of r is well-formed.
func (r *Receipt) check() error {
	if r.Version != Version {
		return fmt.Errorf("%w: unsupported version %d (want %d)", ErrMalformed, r.Version, Version)
	}
	// The leaf's own parser is the one definition of a well-formed leaf.
	if _, err := intakelog.ParseLeaf(r.Leaf().Bytes()); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Index < 0 {
		return fmt.Errorf("%w: index must not be negative", ErrMalformed)
	}
	if r.Checkpoint == "" || len(r.Checkpoint) > intakelog.MaxCheckpointSize {
		return fmt.Errorf("%w: checkpoint must be a signed note of at most %d bytes", ErrMalformed, intakelog.MaxCheckpointSize)
	}
	if r.Proof == nil {
		return fmt.Errorf("%w: proof is missing", ErrMalformed)
	}
	if _, err := intakelog.DecodeProof(r.Proof); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
