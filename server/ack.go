package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/store"
)

// maxAckBody bounds POST /v1/ack: an acknowledgement of a full bundle.
const maxAckBody = witness.MaxAckSize

// ackResponse says what POST /v1/ack did.
type ackResponse struct {
	Witness      string `json:"witness"`         // the operator's name for the witness
	CheckpointAt int64  `json:"checkpoint_size"` // size of the cosigned checkpoint
	Acknowledged int    `json:"acknowledged"`    // indexes named
	Deleted      int    `json:"deleted"`         // submissions newly deleted
	Date         string `json:"date"`            // the date recorded, UTC
}

// POST /v1/ack: a reviewer's acknowledgement (package witness). The server
// deletes the ciphertext of exactly the submissions it names, and only if
// a registered witness cosigned a checkpoint this log signed, of a tree it
// holds, and signed the list.
func (s *Server) acknowledge(c *call) (any, int, error) {
	if err := checkContentType(c.r, jsonContentTypes...); err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(c.r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, 0, fail(errTooLarge, "an acknowledgement is at most %d bytes", maxAckBody)
		}
		return nil, 0, bodyError(err)
	}
	vs, names, err := witnessVerifiers(s.db)
	if err != nil {
		return nil, 0, err
	}
	ack, err := witness.Open(body, s.dep.Load().logKey, vs)
	switch {
	case errors.Is(err, witness.ErrUnknownWitness):
		return nil, 0, fail(errForbidden, "the acknowledgement's checkpoint is not cosigned by a witness registered on this server; the operator registers the reviewer's key with \"testimony-server witness add\"")
	case errors.Is(err, witness.ErrBadSignature):
		return nil, 0, fail(errForbidden, "the acknowledgement does not verify: %v", err)
	case errors.Is(err, witness.ErrLogKey):
		return nil, 0, fail(errForbidden, "the acknowledged checkpoint is not signed by this server's log key: it is of another log")
	case err != nil:
		return nil, 0, fail(errBadRequest, "malformed acknowledgement: %v", err)
	}
	if err := s.checkOwnCheckpoint(ack.Checkpoint); err != nil {
		return nil, 0, err
	}
	subs, err := s.reviewedSubmissions(ack.Indexes)
	if err != nil {
		return nil, 0, err
	}
	now := s.now()
	deleted, err := s.db.DeleteReviewed(subs, body, now)
	if err != nil {
		return nil, 0, err
	}
	for _, sub := range subs {
		s.quota.collected(sub.ID)
	}
	name := names[ack.Witness]
	s.log.Info("deleted ciphertext after review", "witness", name, "checkpoint_size", ack.Checkpoint.Size,
		"acknowledged", len(subs), "deleted", deleted)
	return &ackResponse{Witness: name, CheckpointAt: ack.Checkpoint.Size, Acknowledged: len(subs), Deleted: deleted,
		Date: now.UTC().Format(time.DateOnly)}, http.StatusOK, nil
}

// checkOwnCheckpoint refuses a checkpoint that is not of this log's tree:
// signed by the log key, but of a size the log has not reached or with
// another root (a fork, or a restored backup that rolled the log back).
func (s *Server) checkOwnCheckpoint(cp intakelog.Checkpoint) error {
	n, err := s.db.LogSize()
	if err != nil {
		return err
	}
	if cp.Size > n {
		return fail(errConflict, "the acknowledged checkpoint has size %d, but this log has %d leaves: was the server restored from an older backup?", cp.Size, n)
	}
	root, err := tlog.TreeHash(cp.Size, s.db.LogHashReader())
	if err != nil {
		return fmt.Errorf("failed to hash the log at size %d: %w", cp.Size, err)
	}
	if root != cp.Root {
		return fail(errConflict, "the acknowledged checkpoint of size %d has another root than this log's tree of that size; nothing was deleted", cp.Size)
	}
	return nil
}

// reviewedSubmissions maps the acknowledged indexes to submissions through
// their log leaves.
func (s *Server) reviewedSubmissions(indexes []int64) ([]store.Reviewed, error) {
	subs := make([]store.Reviewed, 0, len(indexes))
	for start := 0; start < len(indexes); {
		// Read the leaves in ranges of at most MaxLogLeaves, from the
		// smallest index still to map.
		lo := indexes[start]
		leaves, err := s.db.LogLeaves(lo, min(lo+MaxLogLeaves, indexes[len(indexes)-1]+1))
		if err != nil {
			return nil, err
		}
		for ; start < len(indexes) && indexes[start] < lo+int64(len(leaves)); start++ {
			i := indexes[start]
			leaf, err := intakelog.ParseLeaf(leaves[i-lo])
			if err != nil {
				return nil, fmt.Errorf("stored log leaf %d: %w", i, err)
			}
			sub, err := s.db.Submission(leaf.ID)
			if err != nil {
				return nil, fmt.Errorf("log leaf %d names submission %s: %w", i, leaf.ID, err)
			}
			if sub.Index != i {
				return nil, fmt.Errorf("log leaf %d names submission %s, recorded at index %d: %w", i, leaf.ID, sub.Index, store.ErrCorrupt)
			}
			subs = append(subs, store.Reviewed{ID: leaf.ID, Index: i})
		}
	}
	return subs, nil
}

// ackEntry is GET /v1/log/ack's answer: the acknowledgement that deleted
// a submission, and the witness key the server has registered for it.
type ackEntry struct {
	Index      int64           `json:"index"`
	Deleted    string          `json:"deleted"`
	Witness    string          `json:"witness"`
	WitnessKey string          `json:"witness_key"`
	Ack        json.RawMessage `json:"ack"`
}

// GET /v1/log/ack?index=I: the acknowledgement by which the submission at
// log index I was deleted after review. Caseworkers check it against their
// receipts; it holds indexes and signatures, nothing secret.
func (s *Server) logAck(c *call) (any, int, error) {
	q, err := logQuery(c, "index")
	if err != nil {
		return nil, 0, err
	}
	index := q["index"]
	n, err := s.db.LogSize()
	if err != nil {
		return nil, 0, err
	}
	if index >= n {
		return nil, 0, fail(errNotFound, "index %d is beyond the log, which has %d leaves", index, n)
	}
	leaves, err := s.db.LogLeaves(index, index+1)
	if err != nil {
		return nil, 0, err
	}
	leaf, err := intakelog.ParseLeaf(leaves[0])
	if err != nil {
		return nil, 0, fmt.Errorf("stored log leaf %d: %w", index, err)
	}
	sub, err := s.db.Submission(leaf.ID)
	if err != nil {
		return nil, 0, err
	}
	if sub.Deleted == "" {
		return nil, 0, fail(errNotFound, "the submission at log index %d has not been acknowledged by a reviewer", index)
	}
	raw, err := s.db.AckFile(sub.Ack)
	if err != nil {
		return nil, 0, err
	}
	vs, names, err := witnessVerifiers(s.db)
	if err != nil {
		return nil, 0, err
	}
	ack, err := witness.Open(raw, s.dep.Load().logKey, vs)
	if err != nil {
		// The witness was removed since: the acknowledgement stands, but
		// the server no longer vouches for its key.
		return nil, 0, fail(errNotFound, "the submission at log index %d was deleted after review on %s, by a witness no longer registered here", index, sub.Deleted)
	}
	return &ackEntry{Index: index, Deleted: sub.Deleted, Witness: names[ack.Witness], WitnessKey: ack.Witness.String(), Ack: raw}, http.StatusOK, nil
}

// deletedError answers a request for the ciphertext of a submission
// deleted after review.
func deletedError(sub store.Submission) error {
	return fail(errGone, "submission %s was deleted on %s after a reviewer acknowledged it; its log leaf and receipts stay valid (GET /v1/log/ack?index=%d)",
		sub.ID, sub.Deleted, sub.Index)
}
