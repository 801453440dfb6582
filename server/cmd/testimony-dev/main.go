// Command testimony-dev runs a throw-away demo deployment of testimony on
// one machine, to try the whole loop: submit, collect, open.
//
// Usage:
//
//	testimony-dev [-addr 127.0.0.1:8443] [-data DIR]
//	testimony-dev version
//
// It creates a fresh data directory (a new temporary one unless -data names
// an empty or missing directory), makes a demo reviewer key, a submit token
// and a collect token in a separate temporary directory outside the data
// directory, serves the API with a self-signed certificate on a loopback
// address, and prints the commands that submit a file, collect it and open
// it. It runs until SIGINT or SIGTERM. version prints the program's name,
// version (internal/version), Go version and system, as the other
// programs' version commands do.
//
// It is not a command of testimony-server because it makes a reviewer's
// private key: the operator's binary runs on an exposed server and links no
// key generation (TestNoKeyGeneration in server/cmd/testimony-server proves
// it). In real use reviewers make their keys on the air-gapped machine with
// testimony-review keygen.
//
// Files in the demo directory (mode 0600):
//
//	reviewer.key    the demo reviewer identity (a private key)
//	recipients.txt  its public recipient, given to the server
//	submit.token    a submit token
//	collect.token   a collect token
//
// The data directory is laid out as for testimony-server serve, so
// testimony-server token and recipients commands work on it while the demo
// runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/server"
)

const usage = `Usage:
    testimony-dev [-addr 127.0.0.1:8443] [-data DIR]
    testimony-dev version

Runs a throw-away demo deployment: a fresh data directory (a new temporary
one unless -data names an empty or missing directory), a demo reviewer key
in a separate directory OUTSIDE the data directory, self-signed TLS on
127.0.0.1, a submit token and a collect token. It prints the commands that
submit a file, collect it and open it.

In real use the reviewer's private key never touches the server: it is made
with testimony-review keygen on the air-gapped machine.

Flags:
    -addr HOST:PORT   loopback address to listen on (default 127.0.0.1:8443)
    -data DIR         data directory to use instead of a temporary one

"testimony-dev version" prints which testimony-dev this is.

Example:
    go run ./server/cmd/testimony-dev
`

const progName = "testimony-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is what the command writes to: errors and hints go to stderr as
// "testimony-dev: error: …" and "testimony-dev: hint: …" (internal/cmdline),
// the demo's addresses and commands to stdout.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
}

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr}
	if len(args) > 0 && args[0] == "version" {
		if err := cmdline.Version(stdout, progName, args[1:]); err != nil {
			c.report(err)
			return 1
		}
		return 0
	}
	fs := cmdline.NewFlagSet("")
	addr := fs.String("addr", "127.0.0.1:8443", "")
	data := fs.String("data", "", "")
	err := cmdline.Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case err != nil:
	case fs.NArg() > 0:
		err = cmdline.Errorf("unexpected argument %q", fs.Arg(0)).Usage("")
	default:
		err = c.dev(*addr, *data)
	}
	if err != nil {
		c.report(err)
		return 1
	}
	return 0
}

func (c *cli) report(err error) { cmdline.Print(c.stderr, progName, "", err) }

// memoryLimit is the Go runtime's soft memory limit while serving, as
// testimony-server serve sets it, so the demo behaves like a deployment.
const memoryLimit = 128 << 20

// runServer runs the server until c.ctx ends, printing how to reach it;
// ready is called after that with the listening address.
func (c *cli) runServer(cfg server.RunConfig, ready func(server.ReadyInfo)) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.stderr, nil))
	cfg.Version = version.String(progName)
	cfg.Ready = func(info server.ReadyInfo) {
		fmt.Fprintf(c.stdout, "TLS certificate SHA-256 fingerprint: %s\n", info.Fingerprint)
		fmt.Fprintf(c.stdout, "clients: -ca %s or -pin %s\n", server.SelfSignedCertPath(cfg.DataDir), info.Fingerprint)
		fmt.Fprintf(c.stdout, "listening on https://%s (admin socket %s)\n", info.Addr, server.AdminSocketPath(cfg.DataDir))
		ready(info)
	}
	return server.Run(c.ctx, cfg)
}
