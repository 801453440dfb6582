package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
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
	fs := flag.NewFlagSet("ack", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	if err := c.parseFlags(fs, ackUsage, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("ack takes one ACK file, written by 'testimony-review ack'")
	}
	data, err := readAck(fs.Arg(0))
	if err != nil {
		return err
	}
	sess, err := c.connect(cf, trustFlags{})
	if err != nil {
		return err
	}
	r, err := sess.cl.PostAck(ctx, data)
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && (se.Code == 403 || se.Code == 400) {
			return errorf("%v", err).hint("nothing was deleted; check that the operator registered the reviewer's key ('testimony-server witness add') and that ACK is the file 'testimony-review ack' wrote")
		}
		return explain(err, sess.u, "run 'testimony ack' again; sending it twice is harmless")
	}
	if err := c.connected(sess); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted the ciphertext of %d of %d acknowledged submission(s) (witness %s, log size %d), %s\n",
		r.Deleted, r.Acknowledged, api.Sanitize(r.Witness, 64), r.CheckpointSize, api.Sanitize(r.Date, 10))
	if r.Deleted < r.Acknowledged {
		c.notef("the other %d were deleted before", r.Acknowledged-r.Deleted)
	}
	return nil
}

// readAck reads an acknowledgement file, bounded.
func readAck(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, errorf("%v", err).hint("ACK is the file 'testimony-review ack -o ACK BUNDLE' wrote on the reviewer's machine")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, witness.MaxAckSize+1))
	if err != nil {
		return nil, errorf("failed to read %s: %v", name, err)
	}
	if len(data) > witness.MaxAckSize {
		return nil, errorf("%s is larger than %d bytes: not an acknowledgement", name, witness.MaxAckSize)
	}
	return data, nil
}
