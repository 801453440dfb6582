package main

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
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
	fs := newFlagSet("open")
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
		return errorf(example, "open: missing the BUNDLE directory")
	case fs.NArg() > 1:
		return errorf("flags go before BUNDLE: "+example, "open: too many arguments: %q", fs.Args())
	case len(idFiles) == 0:
		return errorf(example, "open: missing -i IDENTITY")
	case *out == "":
		return errorf(example, "open: missing -o OUTDIR")
	case !knownLang(*lang):
		return langError("open", *lang)
	}
	bundleDir := fs.Arg(0)

	w, err := loadWitness("open", *keyFlag)
	if err != nil {
		return err
	}
	known, err := w.store.Caseworkers()
	if err != nil {
		return stateError("open", err)
	}
	opt := review.Options{
		Limits:      envelope.DefaultLimits,
		Caseworkers: caseworkerNames(known),
		Now:         time.Now(),
		Tool:        prog + " " + toolVersion(),
		Warnf:       u.warnf,
	}
	for _, name := range idFiles {
		ids, err := u.readIdentities(name)
		if err != nil {
			return err
		}
		opt.Identities = append(opt.Identities, ids...)
	}

	// Everything about the bundle is verified before anything is decrypted.
	v, err := w.verify("open", bundleDir)
	if err != nil {
		return err
	}
	results, err := review.Open(v, *out, opt)
	if err != nil {
		return errorf("", "open: %v", err)
	}
	stateErr := w.record(v, results)
	if err := u.table(results); err != nil {
		return errorf("", "open: failed to print the results: %v", err)
	}
	u.refreshCaseView(*out, *lang)
	if stateErr != nil {
		return errorf("the files were written; fix the cause and run the same command again to record the checkpoint (opened submissions are skipped)",
			"open: failed to save the verified checkpoint in %s: %v", w.store.Dir(), stateErr)
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
		return errorf("nothing was written for the failed submissions; fix the cause and run the same command again (opened ones are skipped)",
			"open: %d of %d submissions failed to open", failed, len(results))
	}
	return nil
}

// record stores the bundle's checkpoint as the last one verified on this
// machine, and the submissions opened, with their log indexes. The bundle
// verified as a whole, so its checkpoint is recorded even if some
// submissions failed to decrypt: their ciphertexts matched the log, and
// the same bundle can be opened again (it ends at the stored checkpoint)
// to retry them. opened.json is written first: a crash in between leaves
// the old checkpoint, and the same bundle still opens.
func (w *witness) record(v *review.Verified, results []review.Result) error {
	changed := false
	for _, r := range results {
		if r.Status == review.Opened {
			w.opened[r.ID] = r.Index
			changed = true
		}
	}
	if changed {
		if err := w.store.SaveOpened(w.opened); err != nil {
			return err
		}
	}
	return w.store.SaveLog(&state.Log{LogKey: w.key, Checkpoint: string(v.CheckpointNote)})
}

// toolVersion is the module version the binary was built from, for custody
// records.
func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (u *ui) readIdentities(name string) ([]age.Identity, error) {
	data, err := keyfile.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(prog+" keygen -o "+name, "open: identity file %s does not exist", name)
	}
	if err != nil {
		return nil, errorf("", "open: %s: %v", name, err)
	}
	ids, err := keyfile.Parse(data, func() (string, error) {
		return u.passphrase("passphrase for "+name, false)
	})
	switch {
	case errors.Is(err, keyfile.ErrIncorrectPassphrase):
		return nil, errorf("type the passphrase chosen at keygen -passphrase; when piping it, put it on the first line of standard input", "open: incorrect passphrase for %s", name)
	case errors.Is(err, keyfile.ErrNotPassphraseProtected):
		return nil, errorf("decrypt it first with age -d, or pass the plain identity file", "open: %s: %v", name, err)
	case err != nil:
		return nil, errorf("-i takes an identity file made by \""+prog+" keygen\" or age-keygen, not a recipients file", "open: %s: %v", name, err)
	}
	return ids, nil
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
