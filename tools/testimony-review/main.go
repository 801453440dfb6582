// Command testimony-review is the reviewer's tool for the air-gapped machine:
// it makes the reviewer's age identity and opens the bundles a collector
// carries over on USB, verifying every submission before writing anything.
// It links no networking code.
//
// Usage:
//
//	testimony-review keygen -o FILE [-x25519] [-passphrase]
//	testimony-review open -i IDENTITY [-i IDENTITY...] -o OUTDIR [-receipt-key BASE64] BUNDLE
//	testimony-review help
//
// keygen writes a new identity to FILE (created 0600, never overwritten) in
// the age-keygen format and prints its recipient, one line, on standard
// output. Flags:
//
//	-o FILE       identity file to create (required)
//	-x25519       make an X25519 identity (age1…) instead of the default
//	              hybrid post-quantum one (age1pq1…)
//	-passphrase   encrypt the identity file with a passphrase (age scrypt,
//	              armored); the passphrase is asked twice on the terminal, or
//	              read from the first line of standard input if that is not a
//	              terminal
//
// open reads BUNDLE (a directory holding bundle.json, <id>.age and
// <id>.receipt.json) and, for every submission, verifies the server's receipt
// signature, the ciphertext's size and SHA-256 against the receipt and
// bundle.json, decrypts it with the identities, checks the envelope (paths,
// sizes, manifest hashes) and only then moves the files into OUTDIR/<id>/,
// next to manifest.json (if the envelope had one) and receipt.json. Work in
// progress lives in OUTDIR/.tmp-<id>-*, which is removed on failure. A
// submission whose OUTDIR/<id> exists is skipped as already open. Flags:
//
//	-i IDENTITY        identity file, plain or passphrase-protected (repeatable)
//	-o OUTDIR          output directory (created 0700 if missing)
//	-receipt-key KEY   the organisation's pinned receipt key (base64 Ed25519);
//	                   it must equal the bundle's receipt_key. Without it the
//	                   bundle's key is used, with a warning.
//
// The passphrase of a protected identity file is asked on the terminal, or
// read from standard input, one line per protected file, if standard input is
// not a terminal.
//
// open prints a table (ID, CASE, FILES, SIZE, STATUS) on standard output and
// the details of every failure on standard error. It exits 0 only if every
// submission opened or was already open.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `Usage:
    testimony-review keygen -o FILE [-x25519] [-passphrase]
    testimony-review open -i IDENTITY -o OUTDIR [-receipt-key BASE64] BUNDLE
    testimony-review help

keygen creates a new identity file FILE (mode 0600; an existing file is never
overwritten) and prints its recipient on standard output, one line, ready for
a recipients file. The identity is hybrid post-quantum (age1pq1…) unless
-x25519 is given. With -passphrase the file is encrypted with a passphrase,
asked twice on the terminal (or read from the first line of standard input
when that is not a terminal).

open verifies and decrypts every submission in the bundle directory BUNDLE
into OUTDIR/<id>/: the files, manifest.json and the server's receipt.json.
Nothing is written for a submission unless its receipt signature, ciphertext
size and SHA-256, decryption and envelope all check out. Submissions already
in OUTDIR are skipped. -i may be repeated; a passphrase-protected identity
file asks for its passphrase (or reads one line of standard input per
protected file). -receipt-key pins the organisation's receipt key; it must
equal the key in the bundle.

Examples:

    $ testimony-review keygen -o alice.key >> recipients.txt
    $ testimony-review keygen -passphrase -o bob.key >> recipients.txt
    $ testimony-review open -i alice.key -o cases /media/usb/bundle-2026-11-27
    ID                                CASE         FILES  SIZE      STATUS
    6f1c2a9e0b8d4f3a5c7e9b1d2f4a6c8e  NK-2026-014  3      41.0 MiB  opened
    0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d  -            1      2.0 KiB   opened (no manifest)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, so tests and
// the testscript harness drive the same code the binary runs.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ui := &ui{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ui.fail(&cliError{msg: "missing command", hints: []string{"run \"testimony-review keygen -o reviewer.key\" or \"testimony-review open -i reviewer.key -o OUTDIR BUNDLE\""}})
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "keygen":
		err = ui.keygen(rest)
	case "open":
		err = ui.open(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = &cliError{msg: fmt.Sprintf("unknown command %q", cmd), hints: []string{"the commands are keygen and open; run \"testimony-review help\""}}
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		return ui.fail(err)
	}
	return 0
}

// newFlagSet returns a flag set that reports errors to run instead of
// printing Go's generated usage, so every error has the same shape.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageErrorf(fs.Name(), "%v", err)
}
