// Command testimony-server runs testimony's intake server and manages its
// data directory.
//
// Usage:
//
//	testimony-server init -data DIR -recipients FILE [-origin NAME] [-org-key VKEY]
//	testimony-server serve -data DIR -addr HOST:PORT (-tls-cert FILE -tls-key FILE | -tls-self-signed)
//	                       [-max-size BYTES] [-upload-expiry DURATION] [-stall-timeout DURATION]
//	                       [-compact-at-start] [-max-open-uploads N] [-max-bytes-per-day BYTES]
//	                       [-max-unreviewed BYTES] [-retain-uncollected DURATION]
//	testimony-server token create -data DIR -role submit|collect -name NAME
//	                              [-enrol FILE -url URL [-pin SHA256 | -ca FILE]]
//	testimony-server token list -data DIR
//	testimony-server token revoke -data DIR ID|NAME
//	testimony-server recipients show -data DIR
//	testimony-server recipients set -data DIR NOTEFILE
//	testimony-server witness add -data DIR NAME VKEY
//	testimony-server witness list -data DIR
//	testimony-server witness remove -data DIR NAME
//	testimony-server compact -data DIR
//	testimony-server backup -data DIR -o FILE
//	testimony-server check (-data DIR | -file BACKUP)
//	testimony-server version
//
// init creates DIR (mode 0700) with the reviewers' age recipients (public
// keys only: a file holding a private key is refused) and a new intake log
// key, and prints its verifier key. serve runs the HTTPS API; the token and
// recipients commands work whether or not it runs, through its admin socket
// when it does. token create -enrol writes the new token into an enrolment
// file (internal/enrol) for "testimony init -enrol" instead of printing it.
// witness add registers a reviewer machine's witness key, whose
// acknowledgements (POST /v1/ack) delete the ciphertext of the submissions
// they name. recipients set replaces the served recipients with an
// organisation-signed recipients note of a higher version. compact
// rewrites a stopped server's database without the pages of deleted data;
// backup copies the database, also while serve runs; check verifies a
// database or a backup (docs/operator.md). version prints the program's
// name, version (internal/version), Go version and system; serve logs the
// same line when it starts, and never serves it: the API does not help
// anyone fingerprint the server's build.
//
// Flags come before the arguments; COMMAND -h prints a command's page;
// errors and hints follow internal/cmdline.
//
// The throw-away demo deployment is the separate command testimony-dev
// (server/cmd/testimony-dev): it makes a reviewer's private key, and this
// binary, which runs on an exposed server, links no key generation
// (TestNoKeyGeneration). "testimony-server dev" only says so.
//
// Files in DIR:
//
//	testimony.db    submissions, intake log, uploads, token hashes, recipients
//	                (and the signed recipients note), log key
//	admin.sock      the admin socket while serve runs
//	testimony.db.compact, testimony.db.old
//	                only while compact runs (or after it crashed; the next
//	                compact removes them)
//	tls/cert.pem    the -tls-self-signed certificate (clients: -ca or -pin)
//	tls/key.pem     its key
//
// docs/api.md describes the HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

const usage = `Usage:
    testimony-server init -data DIR -recipients FILE [-origin NAME] [-org-key VKEY]
    testimony-server serve -data DIR -addr HOST:PORT (-tls-cert FILE -tls-key FILE | -tls-self-signed)
                           [-max-size BYTES] [-upload-expiry DURATION] [-stall-timeout DURATION]
                           [-compact-at-start] [-max-open-uploads N] [-max-bytes-per-day BYTES]
                           [-max-unreviewed BYTES] [-retain-uncollected DURATION]
    testimony-server token create -data DIR -role submit|collect -name NAME
                                  [-enrol FILE -url URL [-pin SHA256 | -ca FILE]]
    testimony-server token list -data DIR
    testimony-server token revoke -data DIR ID|NAME
    testimony-server recipients show -data DIR
    testimony-server recipients set -data DIR NOTEFILE
    testimony-server witness add -data DIR NAME VKEY
    testimony-server witness list -data DIR
    testimony-server witness remove -data DIR NAME
    testimony-server compact -data DIR
    testimony-server backup -data DIR -o FILE
    testimony-server check (-data DIR | -file BACKUP)
    testimony-server version

Run "testimony-server COMMAND -h" for a command's flags. For a throw-away
demo on one machine, run "go run ./server/cmd/testimony-dev" from a checkout.

Example:
    testimony-server init -data /var/lib/testimony -recipients recipients.txt
    testimony-server token create -data /var/lib/testimony -role submit -name laptop-3 > laptop-3.token
    testimony-server serve -data /var/lib/testimony -addr 0.0.0.0:443 -tls-self-signed
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errDevMoved answers the old "testimony-server dev", so that notes and
// scripts written for it fail with the new command's name rather than with
// "unknown command". It is one line: no hint follows it.
var errDevMoved = errors.New(`"testimony-server dev" is now its own command, so that the server's binary cannot make private keys: run "go run ./server/cmd/testimony-dev" from a checkout`)

// cli is what every command writes to.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
}

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		c.report(cmdline.Errorf("missing command").Usage(""))
		return 1
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "init":
		err = c.init(rest)
	case "serve":
		err = c.serve(rest)
	case "token":
		err = c.token(rest)
	case "recipients":
		err = c.recipients(rest)
	case "witness":
		err = c.witness(rest)
	case "compact":
		err = c.compact(rest)
	case "backup":
		err = c.backup(rest)
	case "check":
		err = c.check(rest)
	case "version":
		err = cmdline.Version(stdout, progName, rest)
	case "dev":
		err = errDevMoved
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		err = cmdline.Errorf("unknown command %q", cmd).Hint(`run "testimony-server -h" for the list of commands`)
	}
	if errors.Is(err, errHelpShown) {
		return 0
	}
	if err != nil {
		c.report(err)
		return 1
	}
	return 0
}
