package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// maxCaseWidth truncates the case reference in the table; it is text from
// the sender, shown to help the reviewer, not to be complete.
const maxCaseWidth = 32

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func (u *ui) open(args []string) error {
	fs := cmdline.NewFlagSet("open")
	var idFiles stringsFlag
	fs.Var(&idFiles, "i", "identity `FILE` (repeatable)")
	out := fs.String("o", "", "output `DIR`")
	keyFlag := fs.String("log-key", "", "log verifier `KEY` (if none is pinned yet)")
	lang := fs.String("lang", "", "language of the case view: ko or en")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + " open -i reviewer.key -o cases /media/usb/bundle"
	switch {
	case fs.NArg() == 0:
		return cmdline.Errorf("open: missing the BUNDLE directory").Hint("%s", example)
	case fs.NArg() > 1:
		return cmdline.Errorf("open: too many arguments: %q", fs.Args()).Hint("flags go before BUNDLE: %s", example)
	case len(idFiles) == 0:
		return cmdline.Errorf("open: missing -i IDENTITY").Hint("%s", example)
	case *out == "":
		return cmdline.Errorf("open: missing -o OUTDIR").Hint("%s", example)
	case !knownLang(*lang):
		return langError("open", *lang)
	}
	bundleDir := fs.Arg(0)

	w, err := loadWitness("open", *keyFlag)
	if err != nil {
		return err
	}
	u.warnStale(w)
	known, err := w.store.Caseworkers()
	if err != nil {
		return stateError("open", err)
	}
	opt := review.Options{
		Limits:      envelope.DefaultLimits,
		Caseworkers: caseworkerNames(known),
		Now:         time.Now(),
		Tool:        version.String(prog),
		Warnf:       u.warnf,
	}
	for _, name := range idFiles {
		ids, err := u.readIdentities(name)
		if err != nil {
			return err
		}
		opt.Identities = append(opt.Identities, ids...)
	}

	// Submissions that failed to open before come first: the witness moved
	// past their leaves, and only this list keeps them from being
	// forgotten.
	unresolved := w.unresolved()
	for _, f := range unresolved {
		u.warnf("submission %s (log leaf %d, in the bundle that ended at log size %d) failed to open on %s and is still unopened: %s",
			f.ID, f.Index, f.BundleSize, strings.SplitN(f.Failed, "T", 2)[0], f.Reason)
	}

	// Everything about the bundle but the ciphertexts' hashes is verified
	// before anything is decrypted; those are taken in the pass that
	// decrypts, and a mismatch refuses the bundle before anything reaches
	// OUTDIR.
	rw := w.reviewWitness()
	rw.HashInOpen = true
	v, err := review.Verify(bundleDir, rw)
	if errors.Is(err, review.ErrReplayed) && len(unresolved) > 0 {
		// An older bundle: it may carry submissions that failed to open
		// from it, to retry with another identity.
		retry := make([]review.Retry, 0, len(unresolved))
		for _, f := range unresolved {
			retry = append(retry, review.Retry{ID: f.ID, Index: f.Index, LeafHash: f.LeafHash})
		}
		switch rv, rerr := review.VerifyRetry(bundleDir, rw, retry); {
		case rerr == nil:
			v, err = rv, nil
			u.warnf("this bundle is older than the log verified on this machine: only the %d submission(s) that failed to open from it are retried", len(v.Submissions))
		case !errors.Is(rerr, review.ErrNoRetry):
			err = rerr
		}
	}
	if err != nil {
		return w.explain("open", bundleDir, err)
	}
	opt.Progress = u.startProgress("decrypting")
	results, err := review.Open(v, *out, opt)
	u.clearProgress()
	if r := new(review.RefusedError); errors.As(err, &r) {
		return w.explain("open", bundleDir, r)
	}
	if err != nil {
		return cmdline.Errorf("open: %v", err)
	}
	stateErr := w.record(v, results, opt.Now)
	if err := u.table(results); err != nil {
		return cmdline.Errorf("open: failed to print the results: %v", err)
	}
	u.refreshCaseView(*out, *lang)
	if stateErr != nil {
		return cmdline.Errorf("open: failed to save the verified checkpoint in %s: %v", w.store.Dir(), stateErr).
			Hint("the files were written; fix the cause and run the same command again to record the checkpoint (opened submissions are skipped)")
	}
	failed := 0
	for _, r := range results {
		if r.Status != review.Failed {
			continue
		}
		failed++
		u.errorf("%v", r.Err)
		if h := failureHint(r.Err); h != "" {
			u.hintf("%s", h)
		}
	}
	if failed > 0 {
		return cmdline.Errorf("open: %d of %d submissions failed to open", failed, len(results)).
			Hint("nothing was written for the failed submissions; fix the cause and run the same command again (opened ones are skipped), or, for one that can never be opened, record why: %s waive -by NAME -reason TEXT ID", prog)
	}
	if left := w.unresolved(); len(left) > 0 {
		ids := make([]string, len(left))
		for i, f := range left {
			ids[i] = f.ID
		}
		return cmdline.Errorf("open: %d submission(s) that failed to open earlier are still unopened: %s", len(left), strings.Join(ids, ", ")).
			Hint("open each from the bundle that carried it, with the identity it was encrypted to (-i may be repeated), or record why it will not be: %s waive -by NAME -reason TEXT ID", prog)
	}
	return nil
}

// record stores the bundle's checkpoint as the last one verified on this
// machine, the submissions opened, with their log leaves, and those that
// failed to open. The bundle verified as a whole, so its checkpoint is
// recorded even if some submissions failed to decrypt: their ciphertexts
// matched the log, failed.json keeps them listed until they are opened or
// waived, and the bundle that carried them can be opened again to retry
// them.
//
// The order matters for a crash or a failed write. failed.json comes
// first: a checkpoint stored without it would move past a submission
// nobody read. opened.json comes last, so it never lists a leaf beyond
// the stored checkpoint (the leaf a fork of that checkpoint could replace);
// a crash before it leaves the new checkpoint and the folders in OUTDIR,
// and the same bundle opened again records them as already open. A
// retried older bundle (v.Retry) leaves the checkpoint alone.
//
// A failed submission's record is resolved only by its own leaf (same id,
// index and leaf hash): after "log trust -replace" a new log can hold
// another submission under that id at that index.
func (w *witness) record(v *review.Verified, results []review.Result, now time.Time) error {
	subs := make(map[int64]review.Submission, len(v.Submissions))
	for _, s := range v.Submissions {
		subs[s.Index] = s
	}
	changed, failedChanged := w.staleOpened != nil, false
	for _, r := range results {
		leafHash := review.LeafHash(subs[r.Index].Leaf)
		same := func(f state.Failed) bool { return f.ID == r.ID && f.Index == r.Index && f.LeafHash == leafHash }
		switch r.Status {
		case review.Opened, review.AlreadyOpen:
			// An already open submission is recorded too: Open only
			// reports one whose custody.json records this very leaf, and
			// the record may be missing after a crash before this save, or
			// lack the leaf hash (opened.json version 1).
			if e := (state.OpenedLeaf{Index: r.Index, LeafHash: leafHash}); w.opened.Entries[r.ID] != e {
				w.opened.Entries[r.ID] = e
				changed = true
			}
			if i := slices.IndexFunc(w.failed, same); i >= 0 {
				w.failed = slices.Delete(w.failed, i, i+1)
				failedChanged = true
			}
		case review.Failed:
			failedChanged = true
			if i := slices.IndexFunc(w.failed, same); i >= 0 {
				w.failed[i].Reason = r.Reason
				continue
			}
			s := subs[r.Index]
			w.failed = append(w.failed, state.Failed{
				ID: r.ID, Index: r.Index, LeafHash: leafHash, LogKey: v.LogKey,
				SHA256: s.Leaf.SHA256, Size: s.Leaf.Size, BundleSize: v.Checkpoint.Size,
				Failed: now.UTC().Truncate(time.Second).Format(time.RFC3339), Reason: r.Reason,
			})
		}
	}
	if failedChanged {
		if err := w.store.SaveFailed(w.failed); err != nil {
			return err
		}
	}
	if !v.Retry {
		if err := w.store.SaveLog(&state.Log{LogKey: w.key, Checkpoint: string(v.CheckpointNote)}); err != nil {
			return err
		}
	}
	if changed {
		return w.store.SaveOpened(w.opened)
	}
	return nil
}

// failureHint says what to do about one failed submission.
func failureHint(err error) string {
	switch {
	case errors.Is(err, review.ErrCiphertextMismatch):
		return "the file changed after it was verified; copy the bundle again from the collector to a disk you trust"
	case errors.Is(err, envelope.ErrBadSignature):
		return "the manifest was altered after the caseworker signed it, or the signature was forged; do not trust this submission, ask the caseworker to send it again"
	case errors.Is(err, review.ErrDecrypt):
		return "the ciphertext is the one the server logged, so it was damaged before upload (an interrupted encryption?); ask the caseworker to send it again"
	case errors.Is(err, review.ErrNoIdentity):
		return "pass the identity whose recipient the caseworker encrypted to (-i may be repeated)"
	case errors.Is(err, review.ErrReused):
		return "the server logged two submissions under one id: keep this bundle unchanged as evidence and tell the organisation's security contact"
	case errors.Is(err, review.ErrNotThisSubmission):
		return "that folder is not this submission; move it out of OUTDIR (keep it) and run the same command again"
	case errors.Is(err, review.ErrOutputExists):
		return "move that path out of OUTDIR and run again"
	case errors.Is(err, envelope.ErrInvalid):
		return "the envelope is malformed or hostile; do not extract it by hand, ask the caseworker to send it again"
	case errors.Is(err, review.ErrReservedName):
		return "inspect it by hand in a scratch directory: age -d -i IDENTITY FILE.age | tar tv"
	}
	return ""
}

func (u *ui) table(results []review.Result) error {
	tw := tabwriter.NewWriter(u.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCASE\tFILES\tSIZE\tSIGNED\tSTATUS")
	for _, r := range results {
		caseRef, files, size, signed := "-", "-", "-", "-"
		var status string
		switch r.Status {
		case review.Opened:
			if r.Case != "" {
				caseRef = displayText(r.Case)
			}
			files, size, signed = fmt.Sprint(r.Files), humanSize(r.Size), signerText(r.Signer)
			status = "opened"
			if !r.Manifest {
				status = "opened (no manifest)"
			}
		case review.AlreadyOpen:
			status = "already open"
		default:
			status = "FAILED: " + r.Reason
			if errors.Is(r.Err, envelope.ErrBadSignature) {
				signed = "BAD"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, caseRef, files, size, signed, status)
	}
	return tw.Flush()
}

// signerText is the SIGNED column: the known caseworker's name, the key
// fingerprint of an unknown one, or "unsigned".
func signerText(s review.Signer) string {
	switch s.Status {
	case review.Known:
		return displayText(s.Name)
	case review.Unknown:
		return "unknown key " + s.Fingerprint
	}
	return "unsigned"
}

// displayText makes sender-supplied text safe for a terminal: no control
// characters or escape sequences, no tabs to break the table, bounded width.
func displayText(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxCaseWidth {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
