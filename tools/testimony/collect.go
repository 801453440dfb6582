package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/collect"
)

const collectUsage = `Usage:
    testimony collect -server URL [-ca FILE | -pin SHA256] [-token-file FILE] -o DIR

Downloads every submission the server has not yet handed out into the
bundle directory DIR, for the reviewer's air-gapped machine: each
ciphertext as <id>.age, its signed receipt as <id>.receipt.json, and the
list in bundle.json. Every download is checked against its receipt before
the server is told it was collected. Running collect again after an
interruption loses nothing and duplicates nothing.

Options:
    -server URL              The intake server (https://…, or http:// for a .onion).
    -ca FILE                 Trust only this PEM CA or self-signed certificate.
    -pin SHA256              Trust only the certificate with this SHA-256 fingerprint.
    -token-file FILE         Read the collect token from FILE (default: $TESTIMONY_TOKEN).
    -o DIR                   The bundle directory; created if missing.
    -accept-new-recipients   Accept server keys that differ from the pinned ones,
                             after verifying them with your organisation.

Example:
    $ testimony collect -server https://intake.example.org -o /media/usb/bundle-2026-11-27
`

func (c *cli) collect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var (
		dir    = fs.String("o", "", "")
		accept = fs.Bool("accept-new-recipients", false, "")
	)
	if err := c.parseFlags(fs, collectUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("collect takes no arguments")
	}
	if *dir == "" {
		return usageErrorf("missing -o DIR")
	}
	u, err := cf.serverURL(true)
	if err != nil {
		return err
	}
	tlsOpt, _, err := cf.tlsOptions()
	if err != nil {
		return err
	}
	tok, err := c.token(cf.tokenFile)
	if err != nil {
		return err
	}
	h, err := c.openHome(true)
	if err != nil {
		return err
	}
	cl, err := newClient(u, tok, tlsOpt)
	if err != nil {
		return err
	}
	keys, err := c.fetchKeys(ctx, h, cl, u, nil, *accept)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return errorf("failed to create bundle directory: %v", err)
	}
	col := &collect.Collector{
		Server:     cl,
		Dir:        *dir,
		ReceiptKey: keys.keyString,
		VerifyReceipt: func(raw []byte, s api.Submission) error {
			r, err := verifyReceipt(raw, keys.receiptKey, s.ID, s.Size, s.SHA256)
			if err == nil && s.Received != "" && r.Received != s.Received {
				err = fmt.Errorf("%w: it says received %s, the list says %s", errBadReceipt, r.Received, api.Sanitize(s.Received, 20))
			}
			return err
		},
		Progress: func(id string, done, total int64) { c.progress(id[:8], done, total) },
		Now:      c.now,
		Retry:    c.retry,
		Sleep:    c.sleep,
	}
	sum, err := col.Run(ctx)
	c.progressClear()
	if err != nil {
		if sum == nil {
			return explain(err, u, "run 'testimony collect' again")
		}
		return err
	}
	fmt.Fprintf(c.stdout, "collected %d new submission(s) into %s (%d already there); bundle.json lists %d\n",
		sum.Downloaded, *dir, sum.Present, sum.Bundle)
	if len(sum.Failed) > 0 {
		for _, id := range slices.Sorted(maps.Keys(sum.Failed)) {
			printError(c.stderr, "", prefixed("submission "+id+": ", explain(sum.Failed[id], u, "run 'testimony collect' again")))
		}
		return errorf("%d submission(s) were not collected and stay pending on the server", len(sum.Failed)).
			hint("if the errors above are about receipts or hashes, report them to your organisation: the server may be misbehaving")
	}
	return nil
}
