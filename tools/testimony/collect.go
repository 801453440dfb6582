package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/collect"
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
                                 on this device, shared with 'testimony
                                 receipts verify': the log may only grow
    tls/<host>_<port>.json       the remembered -pin or -ca

Example:
    $ testimony collect -server https://intake.example.org -pin 82:85:3B:BF:…:51:E5 \
          -log-key 'testimony-log-1a2b3c4d+7d3e0f21+AdEeFf…' -o /media/usb/bundle-2026-11-27
    $ testimony collect -server https://intake.example.org -o /media/usb/bundle-2026-12-04
`

func (c *cli) collect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var (
		dir   = fs.String("o", "", "")
		since = fs.Int64("since", -1, "")
		tf    trustFlags
	)
	fs.StringVar(&tf.logKey, "log-key", "", "")
	if err := c.parseFlags(fs, collectUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("collect takes no arguments")
	}
	if *dir == "" {
		return usageErrorf("missing -o DIR")
	}
	if *since < -1 {
		return usageErrorf("-since must be a log size, 0 or more")
	}
	sess, err := c.connect(cf, tf)
	if err != nil {
		return err
	}
	u, h, t, cl := sess.u, sess.h, sess.t, sess.cl
	// A collector has no recipients to accept; a replaced log key is
	// pinned with 'testimony init -replace -log-key', never accepted from
	// the server.
	keys, err := c.fetchKeys(ctx, h, t, cl, u, nil, false, true)
	if err != nil {
		return err
	}
	hp := api.HostPort(u)
	statePath := h.collectStatePath(hp)
	state, err := collect.LoadState(statePath, keys.logKey)
	if err != nil {
		if *since != 0 {
			return errorf("%v", err).
				Hint("if the log key was replaced on purpose, run 'testimony collect -since 0' to start again from the beginning of the log")
		}
		state = &collect.State{Version: collect.StateVersion, LogKey: keys.logKey, Checkpoints: []string{}}
	}
	lastRaw, last, err := state.Last()
	if err != nil {
		return errorf("%v", err).Hint("the collector state %s may be damaged; run 'testimony collect -since 0' to start again", statePath)
	}
	from, fromRaw := last, lastRaw
	switch {
	case *since == 0:
		from, fromRaw = 0, nil
	case *since > 0 && *since != last:
		fromRaw = state.Find(*since)
		if fromRaw == nil {
			known := "none"
			if sizes := state.Sizes(); len(sizes) > 0 {
				known = strings.Join(sizes, ", ")
			}
			return usageErrorf("no bundle collected on this device ended at log size %d, so there is no signed checkpoint to start from", *since).
				Hint("-since takes 0 (everything) or a size at which an earlier bundle ended: %s", known)
		}
		from = *since
	}
	// -since 0 after a replaced log key starts again: the checkpoint saved
	// for the old key is replaced, as the collector state is.
	_, logFile, err := c.logState(ctx, h, u, keys.logKey, cl, "run 'testimony collect' again", *since == 0)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return errorf("failed to create bundle directory: %v", err)
	}
	col := &collect.Collector{
		Server:         cl,
		Dir:            *dir,
		LogKey:         keys.logKey,
		From:           from,
		FromCheckpoint: fromRaw,
		Store:          logFile,
		Seen:           state,
		Progress:       func(id string, done, total int64) { c.progress(id[:8], done, total) },
		Now:            c.now,
		Retry:          c.retry,
		Sleep:          c.sleep,
	}
	sum, err := col.Run(ctx)
	c.progressClear()
	switch {
	case errors.Is(err, intakelog.ErrStored):
		return errorf("the last verified checkpoint in %s does not verify with the log key: %s", logFile.Path,
			strings.TrimPrefix(errors.Unwrap(err).Error(), intakelog.ErrStored.Error()+": ")).
			Hint("if the log key was replaced on purpose, run 'testimony collect -since 0' to start again from the beginning of the log")
	case errors.Is(err, collect.ErrLog), errors.Is(err, collect.ErrMismatch):
		return errorf("%v", err).Hint("no bundle was written; " + serverSuspect)
	case errors.Is(err, collect.ErrOtherKey):
		return errorf("%v", err).Hint("collect into a new directory")
	case errors.Is(err, collect.ErrNotBundleDir):
		return errorf("%v", err).Hint("nothing was written; -o takes an empty or new directory (or one holding an earlier bundle of this log), e.g. -o %s", filepath.Join(*dir, "bundle-"+c.now().UTC().Format("2006-01-02")))
	case err != nil:
		return explain(err, u, "run 'testimony collect' again; what was downloaded is kept")
	}
	if err := c.connected(sess); err != nil {
		return err
	}
	state.Record(sum.Checkpoint)
	if err := state.Save(statePath); err != nil {
		return errorf("the bundle was written, but the collector state was not: %v", err).
			Hint("the next collect would start at log size %d again; pass -since %d once the state directory is writable", from, sum.Size)
	}
	if r := sum.Replaced; r != nil {
		c.notef("replaced the bundle.json in %s, which covered log entries %d to %d", *dir, r.From, r.To-1)
		c.hintf("if the reviewer has not opened that bundle yet, run 'testimony collect -since %d' so that the new bundle covers those entries too", r.From)
	}
	n := sum.Downloaded + sum.Present
	if n == 0 {
		fmt.Fprintf(c.stdout, "nothing new in the log since size %d; %s/bundle.json ends at log size %d\n", sum.From, *dir, sum.Size)
	} else {
		fmt.Fprintf(c.stdout, "bundled log entries %d to %d: %d submission(s) in %s (%d downloaded, %d already there); the bundle ends at log size %d\n",
			sum.From, sum.Size-1, n, *dir, sum.Downloaded, sum.Present, sum.Size)
	}
	if len(sum.AckFailed) > 0 {
		for _, id := range slices.Sorted(maps.Keys(sum.AckFailed)) {
			c.notef("warning: submission %s is in the bundle, but the server could not be told: %v", id, sum.AckFailed[id])
		}
		c.hintf("they are safely in the bundle; the server just keeps listing them as pending")
	}
	return nil
}
