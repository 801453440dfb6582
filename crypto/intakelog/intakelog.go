// Package intakelog is the server's intake log: an append-only Merkle tree
// (RFC 6962 hashing, via golang.org/x/mod/sumdb/tlog) with one leaf per
// accepted submission, and the signed checkpoints and proofs that let a
// caseworker or a reviewer check what the server claims without trusting it.
//
// A leaf holds no personal data: the submission id, the SHA-256 and size of
// its ciphertext and the UTC date it was received. A checkpoint is a C2SP
// tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a signed note
// (golang.org/x/mod/sumdb/note) whose body is the log's origin, its size and
// its root hash. The origin doubles as the name of the log's signing key.
//
// Storing the tree and computing proofs is the server's job (tlog.StoredHashes,
// tlog.TreeHash, tlog.ProveRecord, tlog.ProveTree over its database); this
// package only defines the formats and verifies.
//
// Client is the one way the other programs check a log, in the shape of
// golang.org/x/mod/sumdb's client: it reads through an Ops (the server's
// API with retries for the caseworker and the collector, bundle.json for
// the reviewer, a receipt for its own leaf) and keeps the newest checkpoint
// it verified in a Store, which it replaces only by compare-and-swap with a
// checkpoint proven to extend it. It never knows how the bytes arrive, so
// it links no networking.
//
// # Caveats
//
// A valid checkpoint proves only what the log key signed. A server that
// shows different histories to different people is caught only when someone
// compares checkpoints: the reviewer's stored checkpoint and consistency
// proofs between bundles, and caseworkers re-checking their receipts.
package intakelog

import "errors"

var (
	// ErrMalformed means a leaf, checkpoint, proof or key is not
	// well-formed.
	ErrMalformed = errors.New("malformed intake log data")
	// ErrUnknownKey means a checkpoint carries no signature by the pinned
	// log key, only signatures by other keys (or none that can be checked).
	ErrUnknownKey = errors.New("checkpoint is not signed by the trusted log key")
	// ErrBadSignature means a checkpoint carries a signature that claims to
	// be by the pinned log key (same name and key hash) but does not verify:
	// the checkpoint was altered after signing.
	ErrBadSignature = errors.New("checkpoint signature is invalid")
	// ErrInclusion means an inclusion proof does not show the leaf at that
	// index in the checkpoint's tree.
	ErrInclusion = errors.New("leaf is not included in the log at this checkpoint")
	// ErrInconsistent means a consistency proof does not show the older
	// checkpoint's tree as a prefix of the newer one: history was rewritten.
	ErrInconsistent = errors.New("checkpoints are not consistent: log history was rewritten")
	// ErrFork means two checkpoints of the same size have different roots:
	// the log has shown two different histories.
	ErrFork = errors.New("checkpoints of the same size have different roots: the log forked")
	// ErrRollback means the newer checkpoint is smaller than the older one.
	ErrRollback = errors.New("checkpoint is older than one already seen: the log was rolled back")
)
