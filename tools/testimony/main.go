// Command testimony is the caseworker's and collector's client for a
// testimony intake server. It encrypts files on this device, uploads only
// ciphertext, resumes interrupted uploads, keeps the server's signed
// receipts, and collects submissions into bundles for the air-gapped
// reviewer.
//
// Usage:
//
//	testimony submit -server URL [-ca FILE | -pin SHA256] [-recipients FILE]
//	                 [-case REF] [-lang CODE] [-date YYYY-MM-DD] [-consent TEXT]
//	                 [-accept-new-recipients] [-token-file FILE] [-limit-rate RATE] FILE...
//	testimony resume [-server URL] [-ca FILE | -pin SHA256] [-token-file FILE]
//	                 [-limit-rate RATE]
//	testimony status
//	testimony collect -server URL [-ca FILE | -pin SHA256] [-accept-new-recipients]
//	                  [-token-file FILE] -o DIR
//
// submit packs FILE... with a manifest into one envelope, encrypts it with
// age to the reviewers' recipients, stores the ciphertext in the outbox,
// uploads it in resumable 1 MiB chunks, verifies the signed receipt and
// prints the submission id as the last line of standard output.
//
// resume finishes every upload left in the outbox (after a lost connection
// or a killed client) and prints one submission id per line.
//
// status lists the outbox and the saved receipts.
//
// collect downloads pending submissions into the bundle directory DIR
// (bundle.json, <id>.age, <id>.receipt.json), verifying each against its
// signed receipt, and then marks them collected on the server.
//
// Flags:
//
//	-server URL            the intake server, https://… (http:// only for .onion)
//	-ca FILE               trust only this PEM CA or self-signed certificate
//	-pin SHA256            trust only the certificate with this SHA-256 (hex, of the DER)
//	-token-file FILE       read the access token from FILE instead of $TESTIMONY_TOKEN
//	-recipients FILE       encrypt to the recipients in FILE, not to the server's list
//	-case REF              case reference recorded in the encrypted manifest
//	-lang CODE             language of the testimony (for example ko)
//	-date YYYY-MM-DD       interview date
//	-consent TEXT          the consent given, and for what use
//	-accept-new-recipients accept keys that differ from the pinned ones
//	-limit-rate RATE       upload at most RATE bytes per second (like 64K or 2M)
//	-o DIR                 bundle directory to collect into
//
// Environment:
//
//	TESTIMONY_TOKEN   the access token (a submit token, or a collect token for collect)
//	TESTIMONY_HOME    the state directory; default os.UserConfigDir()/testimony
//
// Files, inside the state directory (mode 0700):
//
//	pins/<host>_<port>.json   recipients, type and receipt key pinned on first use
//	outbox/<name>.age         ciphertext waiting for its receipt, with <name>.json
//	outbox/<name>.age.part    ciphertext being written; discarded by resume
//	receipts/<id>.json        signed receipts of completed submissions
//
// The first time the client talks to a server it pins the server's
// recipients and receipt key. If they change later, submit and collect
// refuse to continue: a changed key may mean the server was compromised.
// Verify the new keys with your organisation out of band, then run again
// with -accept-new-recipients.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

const usage = `Usage:
    testimony submit -server URL [-ca FILE | -pin SHA256] [options] FILE...
    testimony resume [-server URL] [-ca FILE | -pin SHA256]
    testimony status
    testimony collect -server URL [-ca FILE | -pin SHA256] -o DIR

Commands:
    submit    Encrypt FILE... into one submission, upload it and keep its receipt.
    resume    Finish the uploads left in the outbox.
    status    List the outbox and the saved receipts.
    collect   Download pending submissions into a bundle directory.

Run 'testimony COMMAND -h' for the flags of a command.

The access token is read from $TESTIMONY_TOKEN or from -token-file FILE;
it is never accepted as a command-line argument, where other users of the
machine could see it. State lives in $TESTIMONY_HOME, by default in
testimony/ under your configuration directory.

Examples:
    $ export TESTIMONY_TOKEN="$(cat ~/token.txt)"
    $ testimony submit -server https://intake.example.org -case NK-2026-041 \
          -lang ko -date 2026-11-27 -consent "research and publication" interview.m4a notes.pdf
    7c0e2c5f8f3a4b0d9e1a6b2c3d4e5f60
    $ testimony resume
    $ testimony collect -server https://intake.example.org -o /media/usb/bundle-2026-11-27
`

// cli is one invocation's environment, so tests can run commands in-process.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal is whether stderr is a terminal, which enables the progress bar.
	terminal bool
	now      func() time.Time
	// retry and sleep govern every network retry; tests shorten them.
	retry retry.Policy
	sleep retry.SleepFunc

	lastDraw time.Time
	drawn    bool
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main without the exit, for testscript.
func run(args []string) int {
	c := &cli{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: term.IsTerminal(int(os.Stderr.Fd())),
		now:      time.Now,
		retry:    retry.Default,
		sleep:    retry.Sleep,
	}
	// The first interrupt stops work cleanly (the outbox keeps what was
	// encrypted); after that the default handling is back, so a second
	// interrupt kills the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return c.main(ctx, args)
}

// main runs one command and returns the exit status.
func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		printError(c.stderr, "", usageErrorf("missing command"))
		return 1
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "submit":
		err = c.submit(ctx, args)
	case "resume":
		err = c.resume(ctx, args)
	case "status":
		err = c.status(args)
	case "collect":
		err = c.collect(ctx, args)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, usage)
		return 0
	default:
		err = usageErrorf("unknown command %q", cmd)
		cmd = ""
	}
	c.progressClear()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errorf("interrupted").hint("run 'testimony resume' to finish what is in the outbox")
		}
		printError(c.stderr, cmd, err)
		return 1
	}
	return 0
}

// parseFlags parses args with fs. On -h it prints help to stdout and
// returns flag.ErrHelp. The flag package's own messages are replaced by
// errors in the house format.
func (c *cli) parseFlags(fs *flag.FlagSet, help string, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, help)
			return err
		}
		return usageErrorf("%s", err.Error())
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return usageErrorf("flag %s comes after the first file name", a).
				hint("put all flags before the file names")
		}
	}
	return nil
}
