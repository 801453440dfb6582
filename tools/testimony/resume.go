package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

const resumeUsage = `Usage:
    testimony resume [-server URL] [-ca FILE | -pin SHA256] [-token-file FILE] [-limit-rate RATE]
                     [-give-up-after DURATION] [-stall-timeout DURATION]

Finishes every upload left in the outbox: after a lost connection, a
server outage or a killed client. Uploads continue where they stopped; an
upload the server has expired starts again from the encrypted copy. Prints
one submission id per line. Ciphertext whose encryption was interrupted
(outbox/*.age.part) is discarded: submit those files again.

Each entry goes to the server it was submitted to, checked the way it was
submitted (-ca or -pin), unless flags say otherwise.

Options:
    -server URL        Only resume entries for this server.
    -ca FILE           Trust only this PEM CA or self-signed certificate.
    -pin SHA256        Trust only the certificate with this SHA-256 fingerprint.
    -token-file FILE   Read the submit token from FILE (default: $TESTIMONY_TOKEN).
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
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var rate rateFlag
	fs.Var(&rate, "limit-rate", "")
	c.link.register(fs)
	if err := c.parseFlags(fs, resumeUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("resume takes no arguments")
	}
	only, err := cf.serverURL(false)
	if err != nil {
		return err
	}
	tlsFlags, tlsSet, err := cf.tlsOptions()
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
	unlock, err := h.lockOutbox()
	if err != nil {
		return err
	}
	defer unlock()
	t, err := c.trust(h, trustFlags{})
	if err != nil {
		return err
	}

	ob := h.outbox()
	l, err := ob.List()
	if err != nil {
		return err
	}
	if n := len(l.Partial); n > 0 {
		if err := ob.Discard(l); err != nil {
			return err
		}
		c.notef("discarded %d submission(s) whose encryption was interrupted; they were never sent", n)
		c.hintf("run 'testimony submit' again for the files you were submitting then")
	}
	failed := 0
	for _, name := range slices.Sorted(maps.Keys(l.Broken)) {
		c.notef("skipping outbox entry %s: %v", name, l.Broken[name])
		failed++
	}
	for i := range l.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &l.Entries[i]
		u, err := api.ParseServer(e.Meta.Server)
		if err != nil {
			c.notef("skipping outbox entry %s: %v", e.Name, err)
			failed++
			continue
		}
		if only != nil && u.String() != only.String() {
			continue
		}
		opt := api.TLSOptions{CAPEM: []byte(e.Meta.CAPEM), Pin: e.Meta.TLSPin}
		if e.Meta.CAPEM == "" {
			opt.CAPEM = nil
		}
		if tlsSet {
			opt = tlsFlags
		}
		id, err := c.resumeOne(ctx, h, t, u, tok, opt, e, int64(rate))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			printError(c.stderr, "", prefixed("outbox entry "+e.Name+": ", err))
			failed++
			continue
		}
		fmt.Fprintln(c.stdout, id)
	}
	if failed > 0 {
		return errorf("%d submission(s) are still in the outbox", failed).
			hint("run 'testimony resume' again once the problem above is solved; 'testimony status' lists them")
	}
	return nil
}

func (c *cli) resumeOne(ctx context.Context, h *home, t *pin.Trust, u *url.URL, tok string, opt api.TLSOptions, e *outbox.Entry, rate int64) (string, error) {
	key, err := pinnedLogKey(h, t, u)
	if err != nil {
		return "", err
	}
	cl, err := newClient(u, tok, opt)
	if err != nil {
		return "", err
	}
	return c.send(ctx, h, cl, u, key, e, rate)
}
