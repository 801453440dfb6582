package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

const receiptsUsage = `Usage:
    testimony receipts verify -server URL [-ca FILE | -pin SHA256] [-token-file FILE] [-log-key VKEY]

Re-checks every saved receipt of this server's log against the log's
newest checkpoint: the checkpoint must be signed by the pinned log key and
consistent with the checkpoint in each receipt (the server proves that its
log only grew since), and must still include each submission. A server
that dropped, swapped or rewrote a submission after acknowledging it
cannot pass. The newest verified checkpoint is kept, so the next run also
catches a server that rolls its log back or shows another history; it is
the same record "testimony collect" keeps, in logs/<host>_<port> in the
state directory.

Any access token (submit or collect) may read the log.

-ca or -pin is remembered for the server (https://host:port) after the
first successful connection, so later commands need neither; a server
whose certificate no longer matches is refused, and so is a -pin or -ca
that differs from the remembered one, unless -replace-pin is given.

Options:
    -server URL        The intake server (https://…, also for a .onion).
    -ca FILE           Trust only this PEM CA or self-signed certificate.
    -pin SHA256        Trust only the certificate with this SHA-256 fingerprint
                       (64 hex digits, colons allowed: AB:CD:…).
    -replace-pin       Replace the -pin or -ca remembered for this server, after
                       the operator confirmed the new certificate out of band.
    -token-file FILE   Read the access token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL         Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                       for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -log-key VKEY      The log's verifier key, as given by your organisation
                       (pinned in trust.json if none is yet).

Example:
    $ testimony receipts verify -server https://intake.example.org
    ok      7c0e2c5f8f3a4b0d9e1a6b2c3d4e5f60  leaf 41, received 2026-11-27
    verified 1 receipt(s) against the log's checkpoint of size 57
`

func (c *cli) receiptsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return cmdline.Errorf("missing receipts command").Usage("").Hint(`the only one is "testimony receipts verify"`)
	}
	switch args[0] {
	case "verify":
		return c.receiptsVerify(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, receiptsUsage)
		return flag.ErrHelp
	}
	return cmdline.Errorf("unknown receipts command %q", args[0]).Usage("").Hint(`the only one is "testimony receipts verify"`)
}

func (c *cli) receiptsVerify(ctx context.Context, args []string) error {
	fs := cmdline.NewFlagSet("receipts verify")
	var cf caseworker.Conn
	registerConn(fs, &cf)
	var tf caseworker.TrustKeys
	fs.StringVar(&tf.LogKey, "log-key", "", "")
	if err := c.parseFlags(fs, receiptsUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("receipts verify takes no arguments").Usage("")
	}
	cw := c.client()
	cw.Events = func(e caseworker.Event) {
		if rc, ok := e.(caseworker.ReceiptChecked); ok {
			c.progressClear()
			r := rc.Receipt
			if rc.Err != nil {
				fmt.Fprintf(c.stdout, "FAILED  %s  leaf %d, received %s: %v\n", r.ID, r.Index, r.Received, rc.Err)
			} else {
				fmt.Fprintf(c.stdout, "ok      %s  leaf %d, received %s%s\n", r.ID, r.Index, r.Received, rc.Reviewed)
			}
		}
		c.event(e)
	}
	v, err := cw.VerifyReceipts(ctx, caseworker.VerifyOptions{Conn: cf, LogKey: tf.LogKey})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("verified %d receipt(s) against the log's checkpoint of size %d", v.Verified, v.Size)
	if v.Other > 0 {
		msg += fmt.Sprintf(" (%d receipt(s) of other logs skipped)", v.Other)
	}
	fmt.Fprintln(c.stdout, msg)
	return nil
}
