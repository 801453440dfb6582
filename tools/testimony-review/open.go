package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
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
	keyFlag := fs.String("receipt-key", "", "pinned receipt `KEY` (base64 Ed25519)")
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
	}
	bundleDir := fs.Arg(0)

	opt := review.Options{Limits: envelope.DefaultLimits, Warnf: u.warnf}
	if *keyFlag != "" {
		k, err := receipt.ParseKey(*keyFlag)
		if err != nil {
			return errorf("pass the receipt_key the server printed at setup, e.g. -receipt-key 3q2+7w…=", "open: -receipt-key is not a base64 Ed25519 public key")
		}
		opt.ReceiptKey = k
	}
	for _, name := range idFiles {
		ids, err := u.readIdentities(name)
		if err != nil {
			return err
		}
		opt.Identities = append(opt.Identities, ids...)
	}

	results, err := review.Open(bundleDir, *out, opt)
	if err != nil {
		return bundleError(bundleDir, err)
	}
	if opt.ReceiptKey == nil {
		u.warnf("receipts were verified with the key in %s/bundle.json, which the server supplied", bundleDir)
		u.hintf("pin the organisation's key with -receipt-key to detect a server that signs with a key of its own")
	}
	if err := u.table(results); err != nil {
		return errorf("", "open: failed to print the results: %v", err)
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

func bundleError(dir string, err error) error {
	switch {
	case errors.Is(err, review.ErrReceiptKeyMismatch):
		return errorf("if the organisation's receipt key really changed, check it with the operator before passing the new one; otherwise the server is not the one you trust", "open: %v", err)
	case errors.Is(err, fs.ErrNotExist):
		return errorf("BUNDLE is the directory \"testimony collect\" wrote, containing bundle.json", "open: %s is not a bundle: %v", dir, err)
	case errors.Is(err, bundle.ErrInvalid):
		return errorf("copy the bundle again from the collector's machine", "open: %v", err)
	}
	return errorf("", "open: %v", err)
}

// failureHint says what to do about one failed submission.
func failureHint(err error) string {
	switch {
	case errors.Is(err, review.ErrCiphertextMismatch):
		return "copy the bundle again from the collector; if it still differs, the server or the bundle was tampered with"
	case errors.Is(err, receipt.ErrBadSignature), errors.Is(err, receipt.ErrWrongKey), errors.Is(err, review.ErrReceiptMismatch), errors.Is(err, receipt.ErrMalformed):
		return "the receipt was altered or not made by the server; compare it with the caseworker's own copy of the receipt"
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
	fmt.Fprintln(tw, "ID\tCASE\tFILES\tSIZE\tSTATUS")
	for _, r := range results {
		caseRef, files, size := "-", "-", "-"
		var status string
		switch r.Status {
		case review.Opened:
			if r.Case != "" {
				caseRef = displayText(r.Case)
			}
			files, size = fmt.Sprint(r.Files), humanSize(r.Size)
			status = "opened"
			if !r.Manifest {
				status = "opened (no manifest)"
			}
		case review.AlreadyOpen:
			status = "already open"
		default:
			status = "FAILED: " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, caseRef, files, size, status)
	}
	return tw.Flush()
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
