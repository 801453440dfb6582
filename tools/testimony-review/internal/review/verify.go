package review

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
)

// Reasons a whole bundle is refused. Each names one way a server (or whoever
// handled the bundle) can lie; a RefusedError wraps exactly one of them.
var (
	// ErrDropped: a leaf is in the log but its submission is neither in the
	// bundle nor opened on this machine before.
	ErrDropped = errors.New("submission dropped")
	// ErrAltered: a ciphertext (or its bundle.json entry) differs from its
	// log leaf: it was swapped for another or altered after logging.
	ErrAltered = errors.New("ciphertext swapped or altered")
	// ErrRewritten: the consistency proof does not show the new checkpoint
	// extending the old one, or the log shrank.
	ErrRewritten = errors.New("history rewritten")
	// ErrForked: two signed checkpoints of the same size have different
	// roots: the log showed this machine one history and someone else
	// another.
	ErrForked = errors.New("forked history")
	// ErrForeignKey: a checkpoint is signed, but not by the pinned log key:
	// another log's, or a key the server made to stand in for its own. It
	// is the attack that intakelog.ErrUnknownKey (the verification result,
	// also wrapped) reveals.
	ErrForeignKey = errors.New("checkpoint signed by an unknown key")
	// ErrBadCheckpoint: a checkpoint claims the pinned key, but its
	// signature does not verify (it was altered after signing).
	ErrBadCheckpoint = errors.New("checkpoint signature is invalid")
	// ErrReplayed: the bundle starts before the checkpoint this machine
	// already verified, and ends elsewhere: an old bundle shown again.
	ErrReplayed = errors.New("bundle replayed out of order")
	// ErrMissing: the bundle starts after the checkpoint this machine
	// verified, so the bundle in between was never opened here.
	ErrMissing = errors.New("bundle missing")
	// ErrInclusion: a leaf's inclusion proof does not verify against the
	// bundle's checkpoint.
	ErrInclusion = errors.New("inclusion proof failed")
	// ErrUnlogged: a submission in the bundle has no leaf in the bundle's
	// part of the log.
	ErrUnlogged = errors.New("submission not in the log")
	// ErrReused: two leaves carry the same submission id, or a leaf
	// carries the id of a submission this machine opened from another
	// leaf. Ids are the server's choice and OUTDIR/<id> is where a
	// submission is opened, so a second submission under a used id would
	// otherwise be taken for the first and never opened.
	ErrReused = errors.New("submission id reused")
	// ErrMalformed: bundle.json, a checkpoint or a proof is not well-formed.
	ErrMalformed = errors.New("malformed bundle")
)

// ErrWitnessState means the checkpoint stored on this machine does not
// verify with the pinned log key: the state directory was edited, or the
// pinned key was replaced by hand.
var ErrWitnessState = errors.New("stored checkpoint does not verify with the pinned log key")

// RefusedError is the refusal of a whole bundle, before anything in it is
// decrypted or, for a ciphertext that Open hashes as it decrypts (see
// Witness.HashInOpen), before anything is moved into the output directory.
// Its message is "bundle refused: <reason>: <detail>".
type RefusedError struct {
	// Reason is one of the Err… values above.
	Reason error
	Detail string
	err    error
}

func (e *RefusedError) Error() string {
	return "bundle refused: " + e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason and, if any, the underlying error.
func (e *RefusedError) Unwrap() []error {
	if e.err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.err}
}

func refuse(reason error, format string, args ...any) *RefusedError {
	return &RefusedError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Witness is what this machine verified before: the pinned log key, the
// last checkpoint it accepted and the submissions it opened.
type Witness struct {
	// LogKey is the pinned note verifier key of the intake log. Required.
	LogKey string
	// Checkpoint is the last signed checkpoint accepted, nil before the
	// first bundle.
	Checkpoint []byte
	// Opened maps the id of every submission opened here from this log
	// to its leaf. Entries of another log must not be in it: an id at
	// the same index of another log is another submission.
	Opened map[string]SeenLeaf
	// Failed maps the id of every submission that verified here but failed
	// to open (waived or not), of whatever log, to its leaf. Its id is as
	// used as an opened one's.
	Failed map[string]SeenLeaf
	// Progress, if set, follows the hashing of each ciphertext.
	Progress ProgressFunc
	// HashInOpen leaves the hashing of the ciphertexts to Open, which
	// hashes each in the pass that decrypts it instead of reading it
	// twice. A ciphertext that does not match its leaf then refuses the
	// bundle in Open, with the RefusedError Verify would have returned,
	// before anything is moved into the output directory.
	HashInOpen bool
}

// Verified is a bundle that passed Verify.
type Verified struct {
	Dir    string
	Bundle *bundle.Bundle
	// LogKey is the key the checkpoints verified with.
	LogKey string
	// From and Checkpoint are the bundle's start and end; From is an empty
	// tree of size 0 for a bundle from the start of the log.
	From, Checkpoint intakelog.Checkpoint
	// CheckpointNote is the signed checkpoint text, to store as the new
	// witness state.
	CheckpointNote []byte
	// Stored is the size of the checkpoint this machine had verified.
	Stored int64
	// Rerun reports a bundle that ends exactly at the stored checkpoint and
	// starts before it: the last bundle (or an equivalent one) opened again.
	Rerun bool
	// Submissions are the bundle's submissions with their log leaves, in
	// bundle order.
	Submissions []Submission
	// Earlier counts the leaves accounted for by submissions opened here
	// before rather than by the bundle.
	Earlier int
	// Retry reports a bundle checked by VerifyRetry: it holds only the
	// submissions to retry, and its checkpoint must not be stored.
	Retry bool

	// opened is the witness's record of opened submissions, which Open
	// needs to tell an already opened submission from another one in its
	// place.
	opened map[string]SeenLeaf
	// unhashed reports that no ciphertext was hashed yet (HashInOpen):
	// Open must hash each and refuse the bundle on a mismatch.
	unhashed bool
}

// Submission is a bundle entry with the log leaf that it matches.
type Submission struct {
	bundle.Entry
	Leaf intakelog.Leaf
	// Proof is the leaf's inclusion proof at the bundle's checkpoint, as in
	// bundle.json.
	Proof []string
}

// Verify checks the bundle in dir against the log key and the checkpoint
// this machine verified before, without decrypting anything:
//
//   - both checkpoints are signed by the pinned log key;
//   - the bundle continues exactly from the stored checkpoint (same size and
//     root), neither from an older one (replay) nor a newer one (a bundle
//     missing in between);
//   - the consistency proof shows the new checkpoint extends the old one;
//   - the leaves are exactly the log entries in between, each with an
//     inclusion proof at the new checkpoint;
//   - no two leaves share an id, and no leaf has the id of a submission
//     opened (or failed to open) here from another leaf: another index,
//     or the same index with another leaf hash;
//   - every leaf's submission is in the bundle or was opened here before
//     from that very leaf (same index and leaf hash),
//     every submission is one of the leaves, and every ciphertext's size and
//     SHA-256 are its leaf's (with w.HashInOpen, Open checks these last).
//
// A failed check returns a *RefusedError naming it. Verify changes nothing;
// the caller stores v.CheckpointNote after opening the bundle.
func Verify(dir string, w Witness) (*Verified, error) {
	if w.LogKey == "" {
		return nil, errors.New("failed to verify bundle: no log key")
	}
	pinned, err := note.NewVerifier(w.LogKey)
	if err != nil {
		return nil, fmt.Errorf("failed to verify bundle: pinned log key: %w", err)
	}
	b, err := readBundle(dir)
	if err != nil {
		return nil, err
	}
	lc, err := newClient(b, w)
	if err != nil {
		return nil, fmt.Errorf("failed to verify bundle: %w", err)
	}
	ctx := context.Background()
	v := &Verified{Dir: dir, Bundle: b, LogKey: w.LogKey, CheckpointNote: []byte(b.Checkpoint), opened: w.Opened}

	if v.Checkpoint, _, err = lc.Checkpoint(ctx); err != nil {
		return nil, refuseCheckpoint("checkpoint", b.Checkpoint, err, pinned)
	}
	if b.FromSize == 0 {
		v.From = intakelog.Checkpoint{Origin: v.Checkpoint.Origin, Root: emptyRoot}
	} else {
		if v.From, err = lc.Open([]byte(b.FromCheckpoint)); err != nil {
			return nil, refuseCheckpoint("from_checkpoint", b.FromCheckpoint, err, pinned)
		}
		if v.From.Size != b.FromSize {
			return nil, refuse(ErrMalformed, "from_size is %d but from_checkpoint has size %d", b.FromSize, v.From.Size)
		}
	}

	var stored *intakelog.Checkpoint
	c, _, ok, err := lc.Latest()
	if err != nil {
		_, err := lc.Open(w.Checkpoint) // the reason, without ErrStored's words
		return nil, fmt.Errorf("%w: %w", ErrWitnessState, err)
	}
	if ok {
		stored, v.Stored = &c, c.Size
	}
	if err := v.checkPosition(stored); err != nil {
		return nil, err
	}
	if err := v.checkConsistency(ctx, lc); err != nil {
		return nil, err
	}
	leaves, err := v.checkLeaves(ctx, lc)
	if err != nil {
		return nil, err
	}
	if err := v.checkIDs(leaves, w); err != nil {
		return nil, err
	}
	if err := v.matchSubmissions(leaves, w.Opened); err != nil {
		return nil, err
	}
	if err := v.hashCiphertexts(w); err != nil {
		return nil, err
	}
	return v, nil
}

// Retry names a submission that failed to open, by its leaf.
type Retry struct {
	ID    string
	Index int64
	// LeafHash is the leaf's record hash, base64, as recorded when the
	// bundle that carried it verified.
	LeafHash string
}

// VerifyRetry checks a bundle that Verify refuses as replayed, because this
// machine verified the log beyond it, for submissions that failed to open
// from it: the bundle's checkpoint must be signed by the pinned log key and
// each leaf to retry must have the recorded leaf hash, verify by its
// inclusion proof and have its ciphertext match. The log's history needs
// no checking again: the recorded leaf hash was verified with it, and
// equal hashes mean the same id, size and ciphertext SHA-256.
//
// The result holds only the submissions to retry that the bundle carries
// (ErrNoRetry if none) and has Retry set: it must not become the stored
// checkpoint.
func VerifyRetry(dir string, w Witness, retry []Retry) (*Verified, error) {
	if w.LogKey == "" {
		return nil, errors.New("failed to verify bundle: no log key")
	}
	pinned, err := note.NewVerifier(w.LogKey)
	if err != nil {
		return nil, fmt.Errorf("failed to verify bundle: pinned log key: %w", err)
	}
	b, err := readBundle(dir)
	if err != nil {
		return nil, err
	}
	lc, err := newClient(b, w)
	if err != nil {
		return nil, fmt.Errorf("failed to verify bundle: %w", err)
	}
	ctx := context.Background()
	v := &Verified{Dir: dir, Bundle: b, LogKey: w.LogKey, CheckpointNote: []byte(b.Checkpoint), Retry: true, opened: w.Opened}
	if v.Checkpoint, _, err = lc.Checkpoint(ctx); err != nil {
		return nil, refuseCheckpoint("checkpoint", b.Checkpoint, err, pinned)
	}
	want := make(map[string]Retry, len(retry))
	for _, r := range retry {
		want[r.ID] = r
	}
	for _, bl := range b.Leaves {
		r, ok := want[bl.ID]
		if !ok || bl.Index != r.Index {
			continue
		}
		leaf := intakelog.Leaf{ID: bl.ID, SHA256: bl.SHA256, Size: bl.Size, Date: bl.Date}
		if h := leaf.Hash(); base64.StdEncoding.EncodeToString(h[:]) != r.LeafHash {
			return nil, refuse(ErrForked, "leaf %d (id %s) has leaf hash %s in this bundle, but the leaf verified on this machine has %s",
				bl.Index, bl.ID, base64.StdEncoding.EncodeToString(h[:]), r.LeafHash)
		}
		if _, err := intakelog.DecodeProof(bl.Proof); err != nil {
			r := refuse(ErrMalformed, "leaf %d: inclusion proof: %v", bl.Index, err)
			r.err = err
			return nil, r
		}
		if _, err := lc.Included(ctx, v.Checkpoint, bl.Index, leaf); err != nil {
			return nil, refuse(ErrInclusion, "leaf %d (id %s) is not in the log at the bundle's checkpoint of size %d: the leaf or its proof was altered",
				bl.Index, bl.ID, v.Checkpoint.Size)
		}
		e, ok := b.Lookup(bl.ID)
		if !ok {
			return nil, refuse(ErrDropped, "leaf %d (id %s) is in the bundle's log but its submission is not in the bundle", bl.Index, bl.ID)
		}
		if e.Index != bl.Index || e.SHA256 != bl.SHA256 || e.Size != bl.Size {
			return nil, refuse(ErrAltered, "ciphertext of %s does not match its log leaf %d: bundle.json says sha256 %s (%d bytes) at leaf %d, the leaf says %s (%d bytes)",
				e.ID, bl.Index, e.SHA256, e.Size, e.Index, bl.SHA256, bl.Size)
		}
		v.Submissions = append(v.Submissions, Submission{Entry: e, Leaf: leaf, Proof: bl.Proof})
	}
	if len(v.Submissions) == 0 {
		return nil, ErrNoRetry
	}
	if err := v.hashCiphertexts(w); err != nil {
		return nil, err
	}
	return v, nil
}

// ErrNoRetry means VerifyRetry found none of the submissions to retry in
// the bundle.
var ErrNoRetry = errors.New("the bundle carries none of the submissions that failed to open")

// readBundle reads bundle.json, refusing a malformed one, and one whose
// leaves share an id as the attack that it is.
func readBundle(dir string) (*bundle.Bundle, error) {
	b, err := bundle.Read(dir)
	var dup *bundle.DuplicateIDError
	switch {
	case errors.As(err, &dup):
		r := refuse(ErrReused, "leaves %d and %d both have id %s: the log holds two submissions under one id, and one would hide the other", dup.First, dup.Second, dup.ID)
		r.err = err
		return nil, r
	case errors.Is(err, bundle.ErrInvalid):
		r := refuse(ErrMalformed, "%s", strings.TrimPrefix(err.Error(), bundle.ErrInvalid.Error()+": "))
		r.err = err
		return nil, r
	}
	return b, err
}

// refuseCheckpoint names the attack when one of the bundle's signed
// checkpoints does not open with the pinned key, telling an unknown signer
// apart from a bad signature.
func refuseCheckpoint(field, msg string, err error, pinned note.Verifier) error {
	switch {
	case errors.Is(err, intakelog.ErrUnknownKey):
		r := refuse(ErrForeignKey, "the bundle's %s is signed by %s, not by the pinned log key %q (key hash %08x)",
			field, noteSigners([]byte(msg)), pinned.Name(), pinned.KeyHash())
		r.err = err
		return r
	case errors.Is(err, intakelog.ErrBadSignature):
		r := refuse(ErrBadCheckpoint, "the bundle's %s names the pinned log key %q but its signature does not verify: it was altered after signing",
			field, pinned.Name())
		r.err = err
		return r
	}
	r := refuse(ErrMalformed, "%s: %v", field, err)
	r.err = err
	return r
}

// noteSigners names the keys that signed a note, for a refusal message.
// The names come from the bundle: %q keeps them on one line.
func noteSigners(msg []byte) string {
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) || len(unverified.Note.UnverifiedSigs) == 0 {
		return "no key"
	}
	const maxNames = 3
	var names []string
	for i, s := range unverified.Note.UnverifiedSigs {
		if i == maxNames {
			names = append(names, fmt.Sprintf("and %d more", len(unverified.Note.UnverifiedSigs)-maxNames))
			break
		}
		names = append(names, fmt.Sprintf("%q (key hash %08x)", s.Name, s.Hash))
	}
	return strings.Join(names, ", ")
}

// checkPosition compares the bundle's start with the stored checkpoint.
func (v *Verified) checkPosition(stored *intakelog.Checkpoint) error {
	from, to, s := v.From.Size, v.Checkpoint.Size, v.Stored
	switch {
	case stored != nil && to == s && v.Checkpoint.Root != stored.Root:
		return refuse(ErrForked, "the bundle's checkpoint of size %d has root %s, but the checkpoint of size %d verified on this machine has root %s",
			to, v.Checkpoint.Root, s, stored.Root)
	case from > s:
		return refuse(ErrMissing, "this bundle starts at log size %d, but this machine has verified the log only up to size %d: a bundle covering %d to %d is missing",
			from, s, s, from)
	case from < s && to == s:
		// The same end as the stored checkpoint (same root, checked
		// above): the last bundle opened again, or an equivalent one.
		v.Rerun = true
	case from < s:
		return refuse(ErrReplayed, "it starts at log size %d and ends at %d, but this machine has already verified the log up to size %d",
			from, to, s)
	case stored != nil && v.From.Root != stored.Root:
		return refuse(ErrForked, "the bundle continues from a checkpoint of size %d with root %s, but the checkpoint of that size verified on this machine has root %s",
			from, v.From.Root, stored.Root)
	}
	return nil
}

// checkConsistency checks that the bundle's checkpoint extends the one it
// starts from. The client asks the bundle for the proof only when there is
// something to prove; a proof where there is nothing to prove breaks a
// bundle rule, refused as the client refuses a proof it did not expect.
func (v *Verified) checkConsistency(ctx context.Context, lc *intakelog.Client) error {
	proof, err := intakelog.DecodeProof(v.Bundle.Consistency)
	if err != nil {
		r := refuse(ErrMalformed, "consistency proof: %v", err)
		r.err = err
		return r
	}
	from, to := v.From.Size, v.Checkpoint.Size
	if len(proof) == 0 || from > 0 && from < to {
		_, err = lc.Consistent(ctx, v.From, v.Checkpoint)
	} else {
		err = intakelog.VerifyConsistency(v.From, v.Checkpoint, proof)
	}
	var r *RefusedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, intakelog.ErrFork):
		r = refuse(ErrForked, "the bundle holds two signed checkpoints of size %d with different roots (%s and %s)", to, v.From.Root, v.Checkpoint.Root)
	case errors.Is(err, intakelog.ErrRollback):
		r = refuse(ErrRewritten, "the log shrank from size %d to %d", from, to)
	default:
		r = refuse(ErrRewritten, "the consistency proof from log size %d to %d does not verify: the log at size %d does not extend the one at size %d", from, to, to, from)
	}
	r.err = err
	return r
}

// checkLeaves checks that the bundle lists exactly the leaves from the
// start to the end of its part of the log, each included in the new
// checkpoint, and returns them in index order.
func (v *Verified) checkLeaves(ctx context.Context, lc *intakelog.Client) ([]intakelog.Leaf, error) {
	from, to := v.From.Size, v.Checkpoint.Size
	leaves := make([]intakelog.Leaf, 0, len(v.Bundle.Leaves))
	for i, bl := range v.Bundle.Leaves {
		want := from + int64(i)
		switch {
		case want >= to:
			return nil, refuse(ErrMalformed, "leaf %d is beyond the bundle's checkpoint of size %d", bl.Index, to)
		case bl.Index > want:
			return nil, missingLeaf(want, to)
		case bl.Index != want:
			return nil, refuse(ErrMalformed, "leaf %d is listed out of order (expected leaf %d)", bl.Index, want)
		}
		leaf := intakelog.Leaf{ID: bl.ID, SHA256: bl.SHA256, Size: bl.Size, Date: bl.Date}
		_, err := lc.Included(ctx, v.Checkpoint, bl.Index, leaf)
		if errors.Is(err, intakelog.ErrMalformed) {
			r := refuse(ErrMalformed, "leaf %d: inclusion proof: %v", bl.Index, err)
			r.err = err
			return nil, r
		}
		if err != nil {
			r := refuse(ErrInclusion, "leaf %d (id %s) is not in the log at the bundle's checkpoint of size %d: the leaf or its proof was altered",
				bl.Index, bl.ID, to)
			r.err = err
			return nil, r
		}
		leaves = append(leaves, leaf)
	}
	if n := from + int64(len(leaves)); n < to {
		return nil, missingLeaf(n, to)
	}
	return leaves, nil
}

func missingLeaf(index, size int64) error {
	return refuse(ErrDropped, "leaf %d is in the log (size %d) but the bundle does not list it", index, size)
}

// checkIDs refuses a leaf under the id of a submission opened (or failed
// to open) here from another leaf; two leaves of the bundle under one id
// are refused by readBundle. The log itself does not forbid it, and
// whoever holds the log key can log a genuine new testimony under an old
// id: every proof verifies, but the reviewer would see OUTDIR/<id> taken
// and move past the new leaf for good. Another leaf is another index, or
// the same index with another leaf hash: a new log (after "log trust
// -replace") or a fork (shown from a checkpoint this machine did not keep)
// can put a new submission at the very index of an old one.
func (v *Verified) checkIDs(leaves []intakelog.Leaf, w Witness) error {
	from := v.From.Size
	for i, leaf := range leaves {
		index := from + int64(i)
		if at, ok := w.Opened[leaf.ID]; ok {
			switch h := LeafHash(leaf); {
			case at.Index != index:
				return refuse(ErrReused, "leaf %d (id %s) reuses the id of the submission opened from leaf %d on this machine: a second submission logged under that id would be skipped as already open",
					index, leaf.ID, at.Index)
			case at.Hash != "" && at.Hash != h:
				return refuse(ErrReused, "leaf %d (id %s) has leaf hash %s, but the submission opened under that id from leaf %d on this machine has leaf hash %s: a second submission logged under that id would be skipped as already open",
					index, leaf.ID, h, at.Index, at.Hash)
			}
		}
		if at, ok := w.Failed[leaf.ID]; ok {
			switch h := LeafHash(leaf); {
			case at.Index != index:
				return refuse(ErrReused, "leaf %d (id %s) reuses the id of the submission that failed to open from leaf %d on this machine: a second submission logged under that id would be taken for it",
					index, leaf.ID, at.Index)
			case at.Hash != h:
				return refuse(ErrReused, "leaf %d (id %s) has leaf hash %s, but the submission that failed to open under that id from leaf %d on this machine has leaf hash %s: a second submission logged under that id would be taken for it, and the one that failed forgotten",
					index, leaf.ID, h, at.Index, at.Hash)
			}
		}
	}
	return nil
}

// matchSubmissions pairs every submission with its leaf and checks that
// every leaf is accounted for: delivered, or opened here before from that
// very leaf. A record of the id alone, or of the id and index, is not
// enough: it may be of another log (opened.json kept when log.json was
// lost) or of a leaf beyond the stored checkpoint (a crash between the
// saving of the two), and the server can put a new submission under that
// id at that index of a new log or of a fork.
func (v *Verified) matchSubmissions(leaves []intakelog.Leaf, opened map[string]SeenLeaf) error {
	from, to := v.From.Size, v.Checkpoint.Size
	delivered := make(map[int64]bool, len(v.Bundle.Submissions))
	for _, e := range v.Bundle.Submissions {
		if e.Index < from || e.Index >= to {
			return refuse(ErrUnlogged, "submission %s claims log leaf %d, outside this bundle's part of the log (%d to %d)", e.ID, e.Index, from, to)
		}
		leaf := leaves[e.Index-from]
		if leaf.ID != e.ID {
			return refuse(ErrUnlogged, "submission %s claims log leaf %d, which is submission %s", e.ID, e.Index, leaf.ID)
		}
		if leaf.SHA256 != e.SHA256 || leaf.Size != e.Size {
			return refuse(ErrAltered, "ciphertext of %s does not match its log leaf %d: bundle.json says sha256 %s (%d bytes), the leaf says %s (%d bytes)",
				e.ID, e.Index, e.SHA256, e.Size, leaf.SHA256, leaf.Size)
		}
		delivered[e.Index] = true
		v.Submissions = append(v.Submissions, Submission{Entry: e, Leaf: leaf, Proof: v.Bundle.Leaves[e.Index-from].Proof})
	}
	for i, leaf := range leaves {
		index := from + int64(i)
		if delivered[index] {
			continue
		}
		at, ok := opened[leaf.ID]
		switch {
		case ok && at.is(index, LeafHash(leaf)):
			v.Earlier++
			continue
		case ok && at.Index == index && at.Hash == "":
			return refuse(ErrDropped, "leaf %d (id %s) is in the log but not in the bundle; this machine opened a submission under that id from leaf %d, but recorded it before leaf hashes were kept, so it cannot tell that leaf from another logged under the same id: only a bundle that delivers it can be checked",
				index, leaf.ID, index)
		}
		return refuse(ErrDropped, "leaf %d (id %s) is in the log but not in the bundle, and was not opened on this machine before", index, leaf.ID)
	}
	return nil
}

// hashCiphertexts checks every ciphertext file against its leaf, unless
// w.HashInOpen leaves that to Open. It reads every byte, so it runs after
// the cheap checks.
func (v *Verified) hashCiphertexts(w Witness) error {
	if w.HashInOpen {
		v.unhashed = true
		return nil
	}
	root, err := os.OpenRoot(v.Dir)
	if err != nil {
		return fmt.Errorf("failed to open bundle directory: %w", err)
	}
	defer root.Close()
	for _, s := range v.Submissions {
		if err := hashCiphertext(root, s, w.Progress); err != nil {
			return err
		}
	}
	return nil
}

// hashCiphertext checks one ciphertext file against its leaf.
func hashCiphertext(root *os.Root, s Submission, progress ProgressFunc) error {
	f, err := openCiphertext(root, s)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, progressReader(f, s, progress))
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", s.File, err)
	}
	return checkCiphertext(s, h.Sum(nil), n)
}

// openCiphertext opens a submission's ciphertext file, refusing the bundle
// if it is missing or not a regular file.
func openCiphertext(root *os.Root, s Submission) (*os.File, error) {
	f, err := openRegular(root, s.File)
	if errors.Is(err, os.ErrNotExist) {
		r := refuse(ErrDropped, "leaf %d (id %s) is in the log and in bundle.json, but its ciphertext %s is not in the bundle", s.Index, s.ID, s.File)
		r.err = err
		return nil, r
	}
	if err != nil {
		r := refuse(ErrMalformed, "%v", err)
		r.err = err
		return nil, r
	}
	return f, nil
}

// checkCiphertext refuses the bundle if the SHA-256 and size of a whole
// ciphertext file are not its leaf's.
func checkCiphertext(s Submission, sum []byte, n int64) error {
	if hexSum := hex.EncodeToString(sum); hexSum != s.Leaf.SHA256 || n != s.Leaf.Size {
		return refuse(ErrAltered, "ciphertext of %s does not match its log leaf %d: %s has sha256 %s (%d bytes), the leaf says %s (%d bytes)",
			s.ID, s.Index, s.File, hexSum, n, s.Leaf.SHA256, s.Leaf.Size)
	}
	return nil
}

// openRegular opens a file in root, refusing anything but a regular file.
func openRegular(root *os.Root, name string) (*os.File, error) {
	lfi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !lfi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a %s, not a regular file", name, describeMode(lfi.Mode()))
	}
	if testHookBetweenLstatAndOpen != nil {
		testHookBetweenLstatAndOpen(name)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !os.SameFile(fi, lfi) {
		f.Close()
		return nil, fmt.Errorf("%s changed while being opened", name)
	}
	return f, nil
}

// testHookBetweenLstatAndOpen, set only by tests, runs in openRegular
// between the check that name is a regular file and its opening: the
// window in which a file replaced by a link would be followed.
var testHookBetweenLstatAndOpen func(name string)

// emptyRoot is the root hash of a log of size 0.
var emptyRoot, _ = tlog.TreeHash(0, nil)
