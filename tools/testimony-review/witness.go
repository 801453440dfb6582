package main

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// witness is the state of this machine as a witness of the intake log,
// loaded for one command.
type witness struct {
	store *state.Store
	log   *state.Log
	// opened are the submissions opened from the log of key, the only
	// ones that may account for leaves of its bundles.
	opened *state.Opened
	// staleOpened is the opened.json of another log (or of one it did
	// not name) that was set aside, if any: its submissions say nothing
	// about this log's leaves, and open replaces it.
	staleOpened *state.Opened
	// failed are the submissions that verified but failed to open, in the
	// order they first failed.
	failed []state.Failed
	// key is the log key to verify with: the pinned one, or -log-key on
	// first use.
	key string
	// progress, if set, follows log verify's reading of the ciphertexts.
	progress review.ProgressFunc
}

func openStore(cmd string) (*state.Store, error) {
	dir, err := state.Dir()
	if err != nil {
		return nil, cmdline.Errorf("%s: %v", cmd, err).Hint("set %s to a directory on this machine", state.EnvHome)
	}
	return state.New(dir), nil
}

func stateError(cmd string, err error) error {
	if errors.Is(err, state.ErrCorrupt) {
		return cmdline.Errorf("%s: %v", cmd, err).Hint("restore the file from a backup; do not delete it, it is this machine's record of what it verified")
	}
	return cmdline.Errorf("%s: %v", cmd, err)
}

// loadWitness reads the state and settles which log key to use. keyFlag is
// the -log-key value, which must equal the pinned key if there is one.
func loadWitness(cmd, keyFlag string) (*witness, error) {
	st, err := openStore(cmd)
	if err != nil {
		return nil, err
	}
	l, err := st.Log()
	if err != nil {
		return nil, stateError(cmd, err)
	}
	opened, err := st.Opened()
	if err != nil {
		return nil, stateError(cmd, err)
	}
	failed, err := st.Failed()
	if err != nil {
		return nil, stateError(cmd, err)
	}
	w := &witness{store: st, log: l, opened: opened, failed: failed, key: l.LogKey}
	if keyFlag != "" {
		if err := checkLogKey(cmd+": -log-key", keyFlag); err != nil {
			return nil, err
		}
		if l.LogKey != "" && l.LogKey != keyFlag {
			return nil, cmdline.Errorf("%s: -log-key differs from the log key pinned in %s (%s)", cmd, st.Path(state.LogFile), l.LogKey).
				Hint("a new log key means a new log: check the key with the operator out of band, then run \"%s log trust -replace KEY\"", prog)
		}
		w.key = keyFlag
	}
	if w.key == "" {
		return nil, cmdline.Errorf("%s: no log key is pinned on this machine", cmd).
			Hint("pin the key \"testimony-server init\" printed (the operator gives it to you out of band): %s log trust KEY, or pass -log-key KEY", prog)
	}
	switch {
	case opened.LogKey == w.key:
	case opened.LogKey == "" && l.LogKey == w.key:
		// A version 1 opened.json next to the pinned key: "log trust
		// -replace" always reset it, so it is of this log. Its entries
		// have no leaf hash and never account for a missing leaf.
		opened.LogKey = w.key
	case len(opened.Entries) == 0:
		w.opened = &state.Opened{LogKey: w.key, Entries: map[string]state.OpenedLeaf{}}
	default:
		// Of another log, or of an unnamed one with no key pinned (log.json
		// lost, opened.json kept): a new log can put a new submission under
		// an old id at its old index.
		w.staleOpened = opened
		w.opened = &state.Opened{LogKey: w.key, Entries: map[string]state.OpenedLeaf{}}
	}
	return w, nil
}

// warnStale tells about an opened.json set aside by loadWitness.
func (u *ui) warnStale(w *witness) {
	if w.staleOpened == nil {
		return
	}
	of := "a log it does not name, and no log key was pinned"
	if w.staleOpened.LogKey != "" {
		of = "another log (key " + w.staleOpened.LogKey + ")"
	}
	u.warnf("%s records %d submission(s) opened from %s: they do not account for any leaf of this log, and open replaces the record",
		w.store.Path(state.OpenedFile), len(w.staleOpened.Entries), of)
}

// checkLogKey checks that key is a note verifier key.
func checkLogKey(what, key string) error {
	if _, err := note.NewVerifier(key); err != nil {
		return cmdline.Errorf("%s is not a log verifier key: %v", what, err).
			Hint("the log key looks like testimony-log-0a1b2c3d+5055fc05+AWsok8…, as printed by testimony-server init")
	}
	return nil
}

// reviewWitness is what review.Verify needs to know about this machine.
func (w *witness) reviewWitness() review.Witness {
	opened := make(map[string]review.SeenLeaf, len(w.opened.Entries))
	for id, e := range w.opened.Entries {
		opened[id] = review.SeenLeaf{Index: e.Index, Hash: e.LeafHash}
	}
	failed := make(map[string]review.SeenLeaf, len(w.failed))
	for _, f := range w.failed {
		failed[f.ID] = review.SeenLeaf{Index: f.Index, Hash: f.LeafHash}
	}
	return review.Witness{LogKey: w.key, Checkpoint: []byte(w.log.Checkpoint), Opened: opened, Failed: failed, Progress: w.progress}
}

// unresolved returns the failed submissions neither opened nor waived.
func (w *witness) unresolved() []state.Failed {
	var out []state.Failed
	for _, f := range w.failed {
		if f.Waiver == nil {
			out = append(out, f)
		}
	}
	return out
}

// verify runs review.Verify and turns its refusals into errors with hints.
func (w *witness) verify(cmd, bundleDir string) (*review.Verified, error) {
	v, err := review.Verify(bundleDir, w.reviewWitness())
	if err != nil {
		return nil, w.explain(cmd, bundleDir, err)
	}
	return v, nil
}

// explain turns an error of review.Verify into one with a hint.
func (w *witness) explain(cmd, bundleDir string, err error) error {
	var r *review.RefusedError
	switch {
	case errors.As(err, &r):
		return cmdline.Errorf("%s", r.Error()).Hint("%s", refusalHint(r, w))
	case errors.Is(err, review.ErrWitnessState):
		return cmdline.Errorf("%s: %v", cmd, err).Hint("restore %s from a backup; do not open bundles until it verifies", w.store.Path(state.LogFile))
	case errors.Is(err, fs.ErrNotExist):
		return cmdline.Errorf("%s: %s is not a bundle: %v", cmd, bundleDir, err).Hint("BUNDLE is the directory \"testimony collect\" wrote, containing %s", bundle.FileName)
	}
	return cmdline.Errorf("%s: %v", cmd, err)
}

// refusalHint says what a refusal means for the reviewer and what to do.
func refusalHint(r *review.RefusedError, w *witness) string {
	const evidence = "keep this bundle unchanged as evidence and tell the organisation's security contact"
	switch r.Reason {
	case review.ErrDropped:
		return "the server's own log lists a submission the bundle does not deliver: it was withheld; " + evidence + ", then ask the collector to collect again"
	case review.ErrAltered:
		return "copy the bundle again from the collector; if it still differs, the ciphertext is not the one the server logged: " + evidence
	case review.ErrRewritten:
		return "the server's log no longer extends the history this machine verified: " + evidence
	case review.ErrForked:
		return "the log key signed two different histories of the same size: " + evidence + ", with " + w.store.Path(state.LogFile)
	case review.ErrForeignKey:
		return "the checkpoint is not from the log pinned in " + w.store.Path(state.LogFile) + "; if the operator really made a new log, check its key out of band and run \"" + prog + " log trust -replace KEY\""
	case review.ErrBadCheckpoint:
		return "copy the bundle again from the collector; if it persists, " + evidence
	case review.ErrReplayed:
		return fmt.Sprintf("this bundle is older than what this machine verified; open a newer one, which starts at log size %d", w.storedSize())
	case review.ErrMissing:
		return fmt.Sprintf("open the bundle that starts at log size %d first, or ask the collector for one: testimony collect -since %d -o DIR", w.storedSize(), w.storedSize())
	case review.ErrInclusion:
		return "copy the bundle again from the collector; if it persists, " + evidence
	case review.ErrReused:
		return "the server logged a second submission under an id already used; it would have been skipped as already open: " + evidence
	case review.ErrUnlogged:
		return "the bundle holds a submission the log does not list at that place: " + evidence
	}
	return "copy the bundle again from the collector's machine"
}

// storedSize is the size of the stored checkpoint, for hints; 0 if none
// (the refusals that need it only happen once one is stored).
func (w *witness) storedSize() int64 {
	c, err := intakelog.OpenCheckpoint([]byte(w.log.Checkpoint), w.key)
	if err != nil {
		return 0
	}
	return c.Size
}
