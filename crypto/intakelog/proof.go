package intakelog

import (
	"encoding/base64"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxProofHashes bounds a proof. An inclusion proof has at most ⌈log₂ n⌉
// hashes and a consistency proof at most about twice that, so 64 covers any
// log this program will ever hold.
const MaxProofHashes = 64

// VerifyInclusion checks that proof shows leaf as record index of the tree
// in cp. It is tlog.CheckRecord with the leaf hashed and errors wrapping
// ErrInclusion.
func VerifyInclusion(cp Checkpoint, index int64, leaf Leaf, proof []tlog.Hash) error {
	if index < 0 || index >= cp.Size {
		return fmt.Errorf("failed to verify inclusion: %w: index %d is outside a log of size %d", ErrInclusion, index, cp.Size)
	}
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("failed to verify inclusion: %w: proof has more than %d hashes", ErrInclusion, MaxProofHashes)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, index, leaf.Hash()); err != nil {
		return fmt.Errorf("failed to verify inclusion of leaf %d in log of size %d: %w", index, cp.Size, ErrInclusion)
	}
	return nil
}

// VerifyConsistency checks that the tree in old is a prefix of the tree in
// new (an RFC 6962 consistency proof, via tlog.CheckTree). It returns an
// error wrapping ErrRollback if new is smaller than old, ErrFork if they have
// the same size and different roots, and ErrInconsistent if the proof fails
// or the checkpoints are of different logs. Checkpoints of the same size and
// root are consistent with an empty proof; so is any checkpoint with an empty
// old one.
func VerifyConsistency(old, new Checkpoint, proof []tlog.Hash) error {
	switch {
	case old.Origin != new.Origin:
		return fmt.Errorf("failed to verify consistency: %w: checkpoints of different logs (%q and %q)", ErrInconsistent, old.Origin, new.Origin)
	case old.Size < 0 || new.Size < 0:
		return fmt.Errorf("failed to verify consistency: %w: negative size", ErrInconsistent)
	case old.Size > new.Size:
		return fmt.Errorf("failed to verify consistency: %w: size %d after size %d", ErrRollback, new.Size, old.Size)
	case old.Size == new.Size && old.Root != new.Root:
		return fmt.Errorf("failed to verify consistency: %w: size %d has roots %s and %s", ErrFork, old.Size, old.Root, new.Root)
	case len(proof) > MaxProofHashes:
		return fmt.Errorf("failed to verify consistency: %w: proof has more than %d hashes", ErrInconsistent, MaxProofHashes)
	case old.Size == new.Size || old.Size == 0:
		// Nothing to prove; a proof anyway means the sender and the
		// verifier disagree about what is being proved.
		if len(proof) != 0 {
			return fmt.Errorf("failed to verify consistency: %w: unexpected proof from size %d to %d", ErrInconsistent, old.Size, new.Size)
		}
		if old.Size == 0 {
			if empty, _ := tlog.TreeHash(0, nil); old.Root != empty {
				return fmt.Errorf("failed to verify consistency: %w: empty log with a non-empty root", ErrInconsistent)
			}
		}
		return nil
	}
	if err := tlog.CheckTree(proof, new.Size, new.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("failed to verify consistency from size %d to %d: %w", old.Size, new.Size, ErrInconsistent)
	}
	return nil
}

// EncodeProof encodes each hash as standard base64, as proofs appear in
// receipts, bundles and API responses.
func EncodeProof(proof []tlog.Hash) []string {
	out := make([]string, len(proof))
	for i, h := range proof {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// DecodeProof decodes the output of EncodeProof strictly: at most
// MaxProofHashes hashes, each canonical padded standard base64 of 32 bytes.
func DecodeProof(s []string) ([]tlog.Hash, error) {
	if len(s) > MaxProofHashes {
		return nil, fmt.Errorf("failed to decode proof: %w: more than %d hashes", ErrMalformed, MaxProofHashes)
	}
	out := make([]tlog.Hash, len(s))
	for i, str := range s {
		h, err := decodeHash(str)
		if err != nil {
			return nil, fmt.Errorf("failed to decode proof: %w: hash %d: %v", ErrMalformed, i, err)
		}
		out[i] = h
	}
	return out, nil
}
