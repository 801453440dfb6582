package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

const collectUsage = `Usage:
    testimony collect -server URL [-ca FILE | -pin SHA256] [-token-file FILE] [-since N] -o DIR

Collects everything the server's intake log received since the last
bundle into the bundle directory DIR, for the reviewer's air-gapped
machine: the log's newest signed checkpoint, the proof that it extends the
checkpoint the last bundle ended at, every log entry in between with its
inclusion proof, and every entry's ciphertext as <id>.age, all listed in
bundle.json. Everything is verified against the pinned log key before
bundle.json is written; then the server is told what was collected.
Running collect again after an interruption downloads nothing twice.

Each bundle continues where the last one collected on this device ended,
which is where the reviewer expects the next one to start. DIR must be new,
empty, or hold an earlier bundle of the same log: a directory with other
files (a USB stick's root) is refused, so ciphertext is never mixed with
them. Collecting into a directory that holds a bundle replaces its
bundle.json (ciphertexts already there are kept and not downloaded again):
carry each bundle to the reviewer before collecting the next one into the
same directory, or use a new directory each time.

-ca or -pin is remembered for the server (https://host:port) after the
first successful connection, so later commands need neither; a server
whose certificate no longer matches is refused, and so is a -pin or -ca
that differs from the remembered one, unless -replace-pin is given.

Options:
    -server URL              The intake server (https://…, also for a .onion).
    -ca FILE                 Trust only this PEM CA or self-signed certificate.
    -pin SHA256              Trust only the certificate with this SHA-256 fingerprint
                             (64 hex digits, colons allowed: AB:CD:…).
    -replace-pin             Replace the -pin or -ca remembered for this server,
                             after the operator confirmed the new certificate
                             out of band.
    -token-file FILE         Read the collect token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL               Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                             for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -o DIR                   The bundle directory; created if missing.
    -since N                 Start at log size N instead of where the last bundle
                             ended: 0 (everything), or the size at which an earlier
                             bundle ended, for a reviewer who did not open later ones.
    -log-key VKEY            The log's verifier key (pinned if none is yet).

Files, in the state directory:
    collect/<host>_<port>.json   the checkpoints at which bundles ended and
                                 the ids collected (a server that logs a
                                 second submission under one is refused)
    logs/<host>_<port>           the newest checkpoint of the log verified
                                 on this device, shared with "testimony
                                 receipts verify": the log may only grow
    tls/<host>_<port>.json       the remembered -pin or -ca

Example:
    $ testimony collect -server https://intake.example.org -pin 82:85:3B:BF:…:51:E5 \
          -log-key 'testimony-log-1a2b3c4d+7d3e0f21+AdEeFf…' -o /media/usb/bundle-2026-11-27
    $ testimony collect -server https://intake.example.org -o /media/usb/bundle-2026-12-04
`

func (c *cli) collect(ctx context.Context, args []string) error {
	fs := cmdline.NewFlagSet("collect")
	var cf caseworker.Conn
	registerConn(fs, &cf)
	var (
		dir   = fs.String("o", "", "")
		since = fs.Int64("since", -1, "")
		tf    caseworker.TrustKeys
	)
	fs.StringVar(&tf.LogKey, "log-key", "", "")
	if err := c.parseFlags(fs, collectUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("collect takes no arguments").Usage("")
	}
	if *dir == "" {
		return cmdline.Errorf("missing -o DIR").Usage("")
	}
	if *since < -1 {
		return cmdline.Errorf("-since must be a log size, 0 or more").Usage("")
	}
	sum, err := c.client().Collect(ctx, caseworker.CollectOptions{Conn: cf, LogKey: tf.LogKey, Dir: *dir, Since: *since})
	if err != nil {
		return err
	}
	c.progressClear()
	n := sum.Downloaded + sum.Present
	if n == 0 {
		fmt.Fprintf(c.stdout, "nothing new in the log since size %d; %s/bundle.json ends at log size %d\n", sum.From, *dir, sum.Size)
	} else {
		fmt.Fprintf(c.stdout, "bundled log entries %d to %d: %d submission(s) in %s (%d downloaded, %d already there); the bundle ends at log size %d\n",
			sum.From, sum.Size-1, n, *dir, sum.Downloaded, sum.Present, sum.Size)
	}
	if len(sum.Deleted) > 0 {
		c.notef("%d log entr(ies) are bundled without ciphertext: the server deleted them after a reviewer acknowledged them", len(sum.Deleted))
	}
	if len(sum.AckFailed) > 0 {
		for _, id := range slices.Sorted(maps.Keys(sum.AckFailed)) {
			c.notef("warning: submission %s is in the bundle, but the server could not be told: %v", id, sum.AckFailed[id])
		}
		c.hintf("they are safely in the bundle; the server just keeps listing them as pending")
	}
	return nil
}
