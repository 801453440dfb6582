package main

import (
	"context"
	"fmt"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

const resumeUsage = `Usage:
    testimony resume [-send-superseded] [options below]
    testimony resume [-server URL] [-ca FILE | -pin SHA256] [-token-file FILE] [-limit-rate RATE]
                     [-give-up-after DURATION] [-stall-timeout DURATION]

Finishes every upload left in the outbox: after a lost connection, a
server outage or a killed client. Uploads continue where they stopped; an
upload the server has expired starts again from the encrypted copy. Prints
one submission id per line. Ciphertext whose encryption was interrupted
(outbox/*.age.part) is discarded: submit those files again.

Each entry goes to the server it was submitted to, with the certificate
check given by -ca or -pin, else the one remembered for that server, else
the one it was submitted with.

An entry encrypted to an older version of your organisation's list of
reviewers' keys than the newest one verified on this device is not
uploaded: the organisation has since replaced that list, possibly because
a key was compromised, and whoever holds the retired key could read it.
Submit those files again instead (they are then encrypted to the current
list); only if you no longer have them, and your organisation agrees,
upload the old ciphertext with -send-superseded.

Options:
    -server URL        Only resume entries for this server.
    -ca FILE           Trust only this PEM CA or self-signed certificate.
    -pin SHA256        Trust only the certificate with this SHA-256 fingerprint.
    -token-file FILE   Read the submit token from FILE (default: $TESTIMONY_TOKEN).
    -send-superseded   Also upload entries encrypted to a replaced list of reviewers' keys.
    -proxy URL         Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                       for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -limit-rate RATE   Upload at most RATE bytes per second on average (like 64K or 2M).
    -give-up-after DURATION  Stop an upload that made no progress for this long
                       (default 24h; 0: keep trying while running).
    -stall-timeout DURATION  Abandon and retry a request on which nothing
                       moved for this long (default 60s).

Example:
    $ testimony resume
    7c0e2c5f8f3a4b0d9e1a6b2c3d4e5f60
`

func (c *cli) resume(ctx context.Context, args []string) error {
	fs := cmdline.NewFlagSet("resume")
	var cf caseworker.Conn
	registerConn(fs, &cf)
	sendSuperseded := fs.Bool("send-superseded", false, "")
	var rate rateFlag
	fs.Var(&rate, "limit-rate", "")
	c.link.register(fs)
	if err := c.parseFlags(fs, resumeUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("resume takes no arguments").Usage("")
	}
	cw := c.client()
	cw.Events = func(e caseworker.Event) {
		if s, ok := e.(caseworker.Sent); ok {
			c.progressClear()
			fmt.Fprintln(c.stdout, s.ID)
		}
		c.event(e)
	}
	return cw.Resume(ctx, caseworker.ResumeOptions{Conn: cf, SendSuperseded: *sendSuperseded, RateLimit: int64(rate)})
}
