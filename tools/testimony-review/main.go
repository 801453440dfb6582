// Command testimony-review is the reviewer's tool for the air-gapped
// machine. It makes the reviewer's age identity and the organisation's
// signing key, signs the list of recipients caseworkers encrypt to, and
// opens the bundles a collector carries over on USB, acting as a witness of
// the server's intake log: it verifies the log's proofs, every ciphertext
// and every caseworker signature before writing anything. It links no
// networking code.
//
// Usage:
//
//	testimony-review keygen -o FILE [-x25519] [-passphrase]
//	testimony-review org init -o FILE [-name NAME] [-passphrase]
//	testimony-review recipients sign -org FILE -version N RECIPIENTS
//	testimony-review log trust [-replace] KEY
//	testimony-review log verify [-log-key KEY] BUNDLE
//	testimony-review log witness-key [-passphrase] [-name NAME]
//	testimony-review caseworkers add NAME KEY
//	testimony-review caseworkers remove NAME
//	testimony-review caseworkers list
//	testimony-review open -i IDENTITY [-i IDENTITY...] -o OUTDIR [-log-key KEY] [-lang ko|en] BUNDLE
//	testimony-review index -o OUTDIR [-lang ko|en]
//	testimony-review waive -by NAME -reason TEXT ID
//	testimony-review ack -o ACK BUNDLE
//	testimony-review help [COMMAND]
//	testimony-review version
//	testimony-review COMMAND -h
//
// COMMAND -h (or help COMMAND) prints that command's page; -h, help or no
// command at all print the general usage. Flags come before the arguments,
// and errors and hints follow internal/cmdline.
//
// keygen writes a new identity to FILE (created 0600, never overwritten) in
// the age-keygen format and prints its recipient, one line, on standard
// output, to be appended to the recipients file with ">>" (a failed keygen
// prints nothing, so it appends nothing). -x25519 makes an X25519 identity
// (age1…) instead of the default hybrid post-quantum one (age1pq1…);
// -passphrase encrypts the file with a passphrase (age scrypt, armored),
// asked twice on the terminal or read from the first line of standard
// input if that is not a terminal.
//
// org init writes a new organisation signing key (a signed-note Ed25519 key
// named NAME, default "testimony-org") to FILE, created 0600 and never
// overwritten, and prints its verifier key: the key caseworkers pin with
// "testimony init -org-key". -passphrase protects FILE as keygen
// -passphrase does. recipients sign prints, on standard output, a note
// signed with that key (asking for its passphrase if it has one) listing
// the recipients in the file RECIPIENTS, their type and version N, which
// must be higher than the last note's; a file without a recipient is
// refused. The operator installs the note with "testimony-server
// recipients set".
//
// log trust pins the intake log's verifier key, printed by "testimony-server
// init"; -replace replaces a different pinned key, forgetting the verified
// checkpoint (a new key is a new log). log verify checks a bundle's log
// proofs and ciphertexts (see open) without decrypting, without an identity
// and without changing anything on this machine. Both open and log verify
// take -log-key KEY instead of a pinned key; open pins it.
//
// caseworkers add registers a caseworker's device key ("tdk1…", printed by
// "testimony init" on the caseworker's laptop) under NAME; caseworkers
// remove forgets one (a lost or seized laptop: what its key signs then shows
// as an unknown key); caseworkers list prints the registered keys.
//
// open reads BUNDLE (a directory holding bundle.json and <id>.age files) and
// first verifies it as a whole: both checkpoints are signed by the pinned
// log key; the bundle starts exactly at the checkpoint this machine verified
// last (same size and root); the consistency proof between them; every log
// leaf in between with its inclusion proof; no leaf under the id of a
// submission opened (or failed to open) here from another leaf; every leaf
// delivered or opened here before from that very leaf (same index and leaf
// hash); every ciphertext's size and SHA-256 equal to its leaf's. Any
// failure refuses the whole bundle, naming the attack (submission dropped,
// ciphertext swapped or altered, history rewritten, forked history,
// checkpoint signed by an unknown key, submission id reused, bundle replayed
// out of order, bundle missing, inclusion proof failed), and nothing is
// decrypted, except that the ciphertexts' SHA-256 is taken in the pass that
// decrypts them (each is read once): a mismatch removes every work
// directory before anything reaches OUTDIR, with the same refusal. Then, for
// every submission, it decrypts with the identities, checks the envelope
// (paths, sizes, manifest hashes) and the caseworker's signature, writes the
// chain-of-custody record and only then moves the files into OUTDIR/<id>/,
// next to manifest.json (if the envelope had one), custody.json and
// custody.txt. Work in progress lives in OUTDIR/.tmp-<id>-*, which is
// removed on failure. A submission whose OUTDIR/<id> holds a custody.json of
// this very log leaf is skipped as already open; any other OUTDIR/<id> fails
// it. After the bundle is opened, its checkpoint is stored as the one the
// next bundle must start from.
//
// open prints a table (ID, CASE, FILES, SIZE, SIGNED, STATUS) on standard
// output and the details of every failure on standard error; when standard
// error is a terminal, it also shows the bytes read and the rate while it
// decrypts (log verify: while it hashes). SIGNED is the
// known caseworker's name, "unknown key" and the key's fingerprint,
// "unsigned", or "BAD" for a signature that does not verify (the submission
// is refused). It exits 0 only if every submission opened or was already
// open and no submission that failed to open before is unresolved: those
// are recorded in failed.json, listed first by every open, and retried from
// the bundle that carried it (an older bundle is then used only for them)
// until they open or are waived.
//
// log witness-key prints this machine's witness verifier key (a C2SP vkey,
// NAME+HASH+KEY), which the operator registers with "testimony-server
// witness add"; the first time, it makes the key (witness.key in the state
// directory, mode 0600; -passphrase encrypts it as keygen -passphrase does,
// and the verifier key is then kept in witness.key.pub). ack writes ACK, a
// signed acknowledgement (crypto/witness): a tlog-cosignature/v1 of the
// checkpoint in log.json and a signed list of the log indexes of BUNDLE's
// submissions that opened.json records as opened from that very leaf. The
// collector carries it to the server ("testimony ack"), which then deletes
// their ciphertext. Nothing secret is in it.
//
// version prints the program's name, version (internal/version), Go
// version and system: the line open and waive write into custody records
// as the program that made them.
//
// waive records that a submission that failed to open will not be opened:
// who decided (-by), why (-reason) and when, in failed.json, and prints the
// record.
//
// open then writes the case view (see internal/casebook): OUTDIR/index.html,
// OUTDIR/style.css and OUTDIR/pages/<id>.html, static pages that list every
// submission in OUTDIR by case and play its recordings in any browser,
// without a network. -lang picks Korean or English; without it, LC_ALL,
// LC_MESSAGES or LANG do. index rewrites them from what OUTDIR holds.
//
// Files: the state directory is $TESTIMONY_REVIEW_HOME, or testimony-review
// in the user configuration directory (~/.config/testimony-review on Linux).
// It holds log.json (pinned log key and last verified checkpoint),
// opened.json (the log key, and the id, log index and leaf hash of every
// submission opened from that log), failed.json
// (submissions that failed to open, and waivers) and caseworkers.json
// (known caseworker keys).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

const usage = `Usage:
    testimony-review keygen -o FILE [-x25519] [-passphrase]
    testimony-review org init -o FILE [-name NAME] [-passphrase]
    testimony-review recipients sign -org FILE -version N RECIPIENTS
    testimony-review log trust [-replace] KEY
    testimony-review log verify [-log-key KEY] BUNDLE
    testimony-review log witness-key [-passphrase] [-name NAME]
    testimony-review caseworkers add NAME KEY
    testimony-review caseworkers remove NAME
    testimony-review caseworkers list
    testimony-review open -i IDENTITY -o OUTDIR [-log-key KEY] [-lang ko|en] BUNDLE
    testimony-review index -o OUTDIR [-lang ko|en]
    testimony-review waive -by NAME -reason TEXT ID
    testimony-review ack -o ACK BUNDLE
    testimony-review help [COMMAND]
    testimony-review version

Run "testimony-review COMMAND -h" for a command's page.

keygen creates a new identity file FILE (mode 0600; an existing file is never
overwritten) and prints its recipient on standard output, one line, to be
appended to a recipients file with >> (never >, which would wipe it). The
identity is hybrid post-quantum (age1pq1…) unless -x25519 is given. With
-passphrase the file is encrypted with a passphrase, asked twice on the
terminal (or read from the first line of standard input when that is not a
terminal).

org init creates the organisation's signing key FILE (mode 0600, never
overwritten) and prints its verifier key, which caseworkers pin; use
-passphrase to encrypt it as keygen does. recipients sign prints a signed
note of the recipients in RECIPIENTS with version N; every new list needs a
higher N.

log trust pins the intake log key printed by testimony-server init.
log verify checks a bundle without decrypting it or changing anything.

caseworkers add registers a caseworker's device key (tdk1…, printed by
testimony init on their laptop); open then names who signed each submission.

open verifies the bundle directory BUNDLE as a whole (log checkpoints,
consistency and inclusion proofs, every leaf accounted for, every ciphertext
matching its leaf) and refuses it entirely if anything fails. Then it
decrypts every submission into OUTDIR/<id>/: the files, manifest.json and the
chain-of-custody record custody.json and custody.txt. Nothing is written for
a submission unless its decryption, envelope and caseworker signature check
out. A submission whose OUTDIR/<id> holds its own custody record is
skipped; any other folder there fails it. -i may be repeated; a
passphrase-protected identity file asks for its passphrase (or reads one line
of standard input per protected file). The next bundle must start where this
one ended. A submission that failed to open is listed by every later open,
which fails until it is opened (from the bundle that carried it, e.g. with
another -i) or waived: waive records who decided not to open it and why.

open also writes OUTDIR/index.html, the case view: open it in a web browser
to see every submission grouped by case and play its recordings. -lang ko or
-lang en picks the language (default: LANG). index rewrites the case view of
OUTDIR, for example in the other language.

log witness-key prints this machine's witness key, made on first use
(-passphrase encrypts it), for the operator's "testimony-server witness add".
ack -o ACK BUNDLE signs an acknowledgement of the submissions of BUNDLE that
opened here: the collector carries ACK to the server ("testimony ack"), which
then deletes their ciphertext. Failed or waived submissions are never in it.

State: $TESTIMONY_REVIEW_HOME, or testimony-review in the user configuration
directory (log.json, opened.json, failed.json, caseworkers.json, witness.key).

Examples:

    $ testimony-review keygen -passphrase -o alice.key >> recipients.txt
    $ testimony-review org init -passphrase -o /media/safe/org.key
    testimony-org+1a2b3c4d+AbCd…
    $ testimony-review recipients sign -org /media/safe/org.key -version 1 recipients.txt > recipients.note
    $ testimony-review log trust testimony-log-0a1b2c3d+5055fc05+AWsok8…
    $ testimony-review caseworkers add "Kim Ji-won" tdk1q3Vh…
    $ testimony-review log verify /media/usb/bundle-2026-11-27
    $ testimony-review open -i alice.key -o cases /media/usb/bundle-2026-11-27
    ID                                CASE         FILES  SIZE      SIGNED      STATUS
    6f1c2a9e0b8d4f3a5c7e9b1d2f4a6c8e  NK-2026-014  3      41.0 MiB  Kim Ji-won  opened
    0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d  -            1      2.0 KiB   unsigned    opened (no manifest)
    case view: cases/index.html (open it in a web browser)
    $ testimony-review index -o cases -lang ko
    $ testimony-review log witness-key -passphrase
    testimony-witness+5c0ffee1+BHk…
    $ testimony-review ack -o /media/usb/reviewed.ack /media/usb/bundle-2026-11-27
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, so tests and
// the testscript harness drive the same code the binary runs.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ui := &ui{stdin: stdin, stdout: stdout, stderr: stderr}
	ui.terminal = ui.stderrIsTerminal()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ui.fail(cmdline.Errorf("missing command").Usage(""))
	}
	var err error
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "keygen":
		err = ui.keygen(rest)
	case "org":
		err = ui.org(rest)
	case "recipients":
		err = ui.recipientsCmd(rest)
	case "log":
		err = ui.logCmd(rest)
	case "caseworkers":
		err = ui.caseworkers(rest)
	case "open":
		err = ui.open(rest)
	case "index":
		err = ui.index(rest)
	case "waive":
		err = ui.waive(rest)
	case "ack":
		err = ui.ack(rest)
	case "version":
		err = cmdline.Version(stdout, prog, rest)
	case "help", "-h", "-help", "--help":
		if page, ok := commandPages[firstArg(rest)]; ok && cmd == "help" {
			fmt.Fprint(stdout, page)
			return 0
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = cmdline.Errorf("unknown command %q", cmd).Hint(`the commands are keygen, org, recipients, log, caseworkers, open, index, waive, ack and version; run "testimony-review help"`)
	}
	if errors.Is(err, flag.ErrHelp) {
		page, ok := commandPages[cmd]
		if !ok {
			page = usage
		}
		fmt.Fprint(stdout, page)
		return 0
	}
	if err != nil {
		return ui.fail(err)
	}
	return 0
}

// parseFlags parses the flags, which come before the arguments, and names
// the command in its errors as every error of this program does.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := cmdline.Parse(fs, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return cmdline.Errorf("%s: %w", fs.Name(), err)
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// isHelp reports whether a command's first argument asks for help, before a
// subcommand is required.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}
