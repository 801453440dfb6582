package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

const ackUsage = `Usage:
    testimony ack -server URL [-ca FILE | -pin SHA256] [-token-file FILE] ACK

Sends ACK, the acknowledgement a reviewer wrote on the air-gapped machine
with "testimony-review ack", to the server, with the collect token. The
server checks that a witness key it has registered signed it, over a
checkpoint of its own log, and then deletes the ciphertext of exactly the
submissions the reviewer opened; their log entries stay, so receipts and
later bundles still verify. ACK holds no secret. Sending it again is
harmless.

Options:
    -server URL              The intake server (https://…, also for a .onion).
    -ca FILE                 Trust only this PEM CA or self-signed certificate.
    -pin SHA256              Trust only the certificate with this SHA-256 fingerprint.
    -replace-pin             Replace the -pin or -ca remembered for this server.
    -token-file FILE         Read the collect token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL               Connect through this SOCKS5 proxy (default: $TESTIMONY_PROXY).

Example:
    $ testimony ack -server https://intake.example.org /media/usb/reviewed.ack
    deleted the ciphertext of 2 of 2 acknowledged submission(s) (witness reviewer-1, log size 42), 2026-12-07
`

func (c *cli) ack(ctx context.Context, args []string) error {
	fs := cmdline.NewFlagSet("ack")
	var cf caseworker.Conn
	registerConn(fs, &cf)
	if err := c.parseFlags(fs, ackUsage, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cmdline.Errorf(`ack takes one ACK file, written by "testimony-review ack"`).Usage("")
	}
	data, err := bounded.ReadFile(fs.Arg(0), witness.MaxAckSize)
	switch {
	case errors.Is(err, bounded.ErrTooLarge):
		return cmdline.Errorf("%s is larger than %d bytes: not an acknowledgement", fs.Arg(0), witness.MaxAckSize)
	case err != nil:
		return cmdline.Errorf("%v", err).Hint(`ACK is the file "testimony-review ack -o ACK BUNDLE" wrote on the reviewer's machine`)
	}
	r, err := c.client().Ack(ctx, cf, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted the ciphertext of %d of %d acknowledged submission(s) (witness %s, log size %d), %s\n",
		r.Deleted, r.Acknowledged, api.Sanitize(r.Witness, 64), r.CheckpointSize, api.Sanitize(r.Date, 10))
	if r.Deleted < r.Acknowledged {
		c.notef("the other %d were deleted before", r.Acknowledged-r.Deleted)
	}
	return nil
}
