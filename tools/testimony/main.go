// Command testimony is the caseworker's and collector's client for a
// testimony intake server. It encrypts and signs files on this device,
// uploads only ciphertext, resumes interrupted uploads, keeps and re-checks
// the receipts the server's intake log issues, and collects the log and
// its submissions into bundles for the air-gapped reviewer.
//
// Usage:
//
//	testimony init [-org-key VKEY] [-log-key VKEY] [-replace]
//	               [-server URL [-ca FILE | -pin SHA256 [-replace-pin]] [-token-file FILE]]
//	testimony init -enrol FILE -org-key VKEY [-delete-enrol] [-replace] [-replace-pin]
//	testimony submit -server URL [-ca FILE | -pin SHA256] [-recipients FILE]
//	                 [-meta FILE|-] [-case REF] [-lang CODE] [-date YYYY-MM-DD]
//	                 [-consent TEXT] [-allow-empty] [-org-key VKEY] [-log-key VKEY]
//	                 [-accept-new-recipients] [-token-file FILE] [-limit-rate RATE]
//	                 [-give-up-after DURATION] [-stall-timeout DURATION] [FILE...]
//	testimony resume [-server URL] [-ca FILE | -pin SHA256] [-token-file FILE]
//	                 [-limit-rate RATE] [-give-up-after DURATION] [-stall-timeout DURATION]
//	testimony status
//	testimony receipts verify -server URL [-ca FILE | -pin SHA256] [-token-file FILE]
//	                 [-log-key VKEY]
//	testimony ack -server URL [-ca FILE | -pin SHA256] [-token-file FILE] ACK
//	testimony collect -server URL [-ca FILE | -pin SHA256] [-log-key VKEY]
//	                  [-token-file FILE] [-since N] -o DIR
//	testimony app [-no-browser] [-limit-rate RATE]
//	testimony wipe [-yes]
//	testimony version
//
// The commands parse their flags here and print what package
// internal/caseworker, which holds their logic, reports.
//
// app starts the caseworker's app (package internal/app): a Korean and
// English web UI on 127.0.0.1 that calls the same package for submit,
// resume, init and receipts as the commands, holding the outbox lock
// while it runs.
//
// wipe overwrites and removes the whole state directory.
//
// version prints the program's name, version (internal/version) and the
// Go version and system it was built for.
//
// init creates the device's signing key and pins the organisation's key
// and the intake log's key, given out of band, in trust.json. It prints the
// device's public key (tdk1…) for the reviewers to register. With -enrol it
// takes the server, its certificate check, the log key and the token from
// the operator's enrolment file (the organisation key still comes from
// -org-key, and must be the one the file names), checks the server, and
// keeps the token for that server in tokens/.
//
// submit packs FILE... (and the files a -meta file lists) with a manifest signed by the device key into one
// envelope, encrypts it with age to the reviewers' recipients (those
// signed by the organisation's key, if it is pinned), stores the
// ciphertext in the outbox, uploads it in resumable 1 MiB chunks, verifies
// the receipt (a log checkpoint signed by the pinned log key and the proof
// that it includes the submission) and prints the submission id as the
// last line of standard output.
//
// resume finishes every upload left in the outbox (after a lost connection
// or a killed client) and prints one submission id per line. An entry
// encrypted to an organisation-signed recipients list older than the
// newest verified is not uploaded without -send-superseded (testimony
// resume -send-superseded).
//
// status lists the outbox and the saved receipts.
//
// receipts verify re-checks every saved receipt against the log's newest
// checkpoint: consistency with the receipt's checkpoint, and inclusion.
//
// collect writes into the bundle directory DIR the log's newest checkpoint,
// the consistency proof from where the last bundle ended (or from -since
// N), every log entry in between with its inclusion proof (bundle.json),
// and each entry's ciphertext (<id>.age), after verifying all of it; then
// it marks the submissions collected on the server.
//
// Flags:
//
//	-server URL            the intake server, https://… (also for a .onion)
//	-ca FILE               trust only this PEM CA or self-signed certificate
//	-pin SHA256            trust only the certificate with this SHA-256 (hex, of the DER;
//	                       colons and either case accepted, as browsers and openssl print it)
//	-replace-pin           replace the -pin or -ca remembered for the server
//	-token-file FILE       read the access token from FILE instead of $TESTIMONY_TOKEN
//	-proxy URL             connect through a SOCKS5 proxy (socks5h://127.0.0.1:9050 for
//	                       Tor); the proxy resolves the server's name, so .onion works
//	-enrol FILE            (init) take server, pin or CA, log key and token from an enrolment file
//	-delete-enrol          (init) delete the enrolment file once imported
//	-org-key VKEY          the organisation's note verifier key (pinned in trust.json)
//	-log-key VKEY          the intake log's note verifier key (pinned in trust.json)
//	-replace               (init) replace pinned keys that differ
//	-recipients FILE       encrypt to the recipients in FILE, not to the server's list
//	-meta FILE             (submit) case, lang, date, consent and file names from FILE
//	                       (mode 0600 or stricter; - for standard input), so that
//	                       nothing identifying is on the command line, where other
//	                       users can see it and the shell keeps it in its history
//	-allow-empty           (submit) send a file of 0 bytes
//	-case REF              case reference recorded in the encrypted manifest
//	-lang CODE             language of the testimony (for example ko)
//	-date YYYY-MM-DD       interview date
//	-consent TEXT          the consent given, and for what use
//	-accept-new-recipients (submit) accept keys that differ from the ones pinned on
//	                       first use; a replaced log key is pinned with
//	                       init -replace -log-key, never accepted from a server
//	-send-superseded       (resume) also upload entries encrypted to a replaced
//	                       list of reviewers' keys
//	-limit-rate RATE       upload at most RATE bytes per second (like 64K or 2M)
//	-give-up-after DURATION  stop an upload that made no progress for this long
//	                       (default 24h; 0: never)
//	-stall-timeout DURATION  abandon and retry a chunk on which nothing moved
//	                       for this long (default 60s)
//	-since N               (collect) start the bundle at log size N
//	-o DIR                 bundle directory to collect into
//
// Environment:
//
//	TESTIMONY_TOKEN   the access token (a submit token, or a collect token for collect);
//	                  without it and -token-file, the token init -enrol stored for the server
//	TESTIMONY_HOME    the state directory; default os.UserConfigDir()/testimony
//	TESTIMONY_PROXY   the SOCKS5 proxy when -proxy is not given
//
// Files, inside the state directory (mode 0700):
//
//	device.key                the device's Ed25519 signing key (mode 0600)
//	trust.json                the organisation key and log key given out of band
//	pins/<host>_<port>.json   per server: the recipients in use (and the version of
//	                          the organisation-signed list), and the log key
//	recipients-versions.json  per organisation key: the highest version of its signed
//	                          recipients verified at any server (the rollback floor)
//	outbox/<name>.age         ciphertext waiting for its receipt, with <name>.json
//	outbox/<name>.age.part    ciphertext being written; discarded by resume
//	receipts/<id>.json        receipts of completed submissions
//	tls/<host>_<port>.json    per server: the -pin or -ca remembered after the first
//	                          successful init -server, submit, collect or receipts verify
//	logs/<host>_<port>        the newest checkpoint of the server's log verified on
//	                          this device, by "receipts verify" or "collect" (made
//	                          from checkpoints/<host>_<port> and the collector state
//	                          of older versions on first use)
//	collect/<host>_<port>.json the checkpoints at which collected bundles ended
//	tokens/<host>_<port>      per server: the access token from init -enrol or
//	                          the app's enrolment (mode 0600)
//	app.json                  the app's language, server, labels and confirmed receipts
//	.app-spool/               files the app is reading from the browser, encrypted
//	                          to a key held only in its memory
//	launch-*.html             the page the app gives the browser, which leads to its
//	                          one-time address; removed once used (mode 0600)
//
// -ca or -pin is remembered per server origin (https://host:port) after
// the first successful connection, so later commands need neither. A
// server whose certificate no longer matches the remembered check is
// refused, and so is a -pin or -ca that differs from it, unless
// -replace-pin states the change.
//
// With the organisation's key pinned, submit encrypts only to recipients
// in a note signed with it, and refuses a missing note, a bad signature,
// and a version older than one already verified at any server address
// (the floor is kept per organisation key, so an old list served at an
// onion address or a new host name is refused too); a newer version is a
// key rotation, accepted and shown. Without it, the client pins the server's
// recipients on first use and refuses any later change until it is
// confirmed out of band and accepted with -accept-new-recipients.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/app"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

const usage = `Usage:
    testimony init [-org-key VKEY] [-log-key VKEY]
    testimony init -enrol FILE -org-key VKEY
    testimony submit -server URL [-ca FILE | -pin SHA256] [options] FILE...
    testimony resume [-server URL] [-ca FILE | -pin SHA256]
    testimony status
    testimony receipts verify -server URL [-ca FILE | -pin SHA256]
    testimony collect -server URL [-ca FILE | -pin SHA256] [-since N] -o DIR
    testimony ack -server URL [-ca FILE | -pin SHA256] ACK
    testimony app [-no-browser] [-limit-rate RATE]
    testimony wipe [-yes]
    testimony version

Commands:
    init       Create this device's signing key and pin your organisation's keys.
    submit     Encrypt FILE... into one submission, upload it and keep its receipt.
    resume     Finish the uploads left in the outbox.
    status     List the outbox and the saved receipts.
    receipts   Re-check the saved receipts against the server's log ("receipts verify").
    collect    Collect the log and its submissions into a bundle directory.
    app        Start the caseworker's app in your web browser (Korean or English).
    wipe       Remove everything testimony keeps on this laptop.
    version    Print which testimony this is, to quote when you ask for help.

Run "testimony COMMAND -h" for the flags of a command.

-ca or -pin is remembered for each server after the first successful
connection; later commands need neither (-replace-pin changes it).

The access token is read from $TESTIMONY_TOKEN or from -token-file FILE,
or else is the one "init -enrol" kept for the server; it is never
accepted as a command-line argument, where other users of the machine
could see it. State lives in $TESTIMONY_HOME, by default in
testimony/ under your configuration directory. To reach an onion service,
run Tor and add -proxy socks5h://127.0.0.1:9050 (or set TESTIMONY_PROXY).

Examples:
    $ export TESTIMONY_TOKEN="$(cat ~/token.txt)"
    $ testimony init -org-key 'testimony-org+2f1c9a0b+AaBbCc…' -log-key 'testimony-log-1a2b3c4d+7d3e0f21+AdEeFf…' \
          -server https://intake.example.org -pin 82:85:3B:BF:…:51:E5
    tdk1P8m0qV3x…
    $ testimony submit -server https://intake.example.org -meta interview.meta
    7c0e2c5f8f3a4b0d9e1a6b2c3d4e5f60
    $ testimony resume
    $ testimony receipts verify -server https://intake.example.org
    $ testimony collect -server https://intake.example.org -o /media/usb/bundle-2026-11-27
`

// cli is one invocation's environment, so tests can run commands in-process.
type cli struct {
	stdout, stderr io.Writer
	// stdin is read by -meta -; nil reads as empty.
	stdin  io.Reader
	getenv func(string) string
	// terminal is whether stderr is a terminal, which enables the progress bar.
	terminal bool
	now      func() time.Time
	// retry and sleep govern every network retry; tests shorten them.
	retry retry.Policy
	sleep retry.SleepFunc
	// uploadRetry is the backoff of uploads (link.go); zero means retry.
	uploadRetry retry.Policy
	link        linkFlags

	lastDraw time.Time
	drawn    bool

	// appConfig, if set, adjusts the app's configuration (tests).
	appConfig func(*app.Config)
}

// client returns the caseworker package's client for one command, which
// reports to this terminal.
func (c *cli) client() *caseworker.Client {
	return &caseworker.Client{
		Getenv:       c.getenv,
		Now:          c.now,
		Retry:        c.retry,
		Sleep:        c.sleep,
		UploadRetry:  c.uploadRetry,
		GiveUpAfter:  c.link.giveUpAfter.d,
		StallTimeout: c.link.stall.d,
		Events:       c.event,
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main without the exit, for testscript.
func run(args []string) int {
	c := &cli{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: term.IsTerminal(int(os.Stderr.Fd())),
		now:      time.Now,
		retry:    retry.Default,
		sleep:    retry.Sleep,
	}
	c.retry.Waiting = c.retryWait
	c.uploadRetry = retry.Upload
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
		cmdline.Print(c.stderr, "testimony", "", cmdline.Errorf("missing command").Usage(""))
		return 1
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "init":
		err = c.init(ctx, args)
	case "receipts":
		err = c.receiptsCmd(ctx, args)
	case "submit":
		err = c.submit(ctx, args)
	case "resume":
		err = c.resume(ctx, args)
	case "status":
		err = c.status(args)
	case "collect":
		err = c.collect(ctx, args)
	case "ack":
		err = c.ack(ctx, args)
	case "app":
		err = c.appCmd(ctx, args)
	case "wipe":
		err = c.wipe(args)
	case "version":
		err = cmdline.Version(c.stdout, "testimony", args)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, usage)
		return 0
	default:
		err = cmdline.Errorf("unknown command %q", cmd).Usage("")
		cmd = ""
	}
	c.progressClear()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = cmdline.Errorf("interrupted").Hint(`run "testimony resume" to finish what is in the outbox`)
		}
		cmdline.Print(c.stderr, "testimony", cmd, err)
		return 1
	}
	return 0
}

// parseFlags parses args with fs by the rules of package cmdline: flags
// before the arguments. On -h, wherever it is, it prints page to stdout
// and returns flag.ErrHelp.
func (c *cli) parseFlags(fs *flag.FlagSet, page string, args []string) error {
	err := cmdline.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.stdout, page)
	}
	return err
}
