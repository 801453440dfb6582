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
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	sendSuperseded := fs.Bool("send-superseded", false, "")
	var rate rateFlag
	fs.Var(&rate, "limit-rate", "")
	c.link.register(fs)
	if err := c.parseFlags(fs, resumeUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("resume takes no arguments")
	}
	if cf.replacePin {
		return usageErrorf("resume does not take -replace-pin").
			Hint("replace the remembered certificate check first: 'testimony init -server URL -pin SHA256 -replace-pin'")
	}
	only, err := cf.serverURL(false)
	if err != nil {
		return err
	}
	_, tlsSet, err := cf.tlsOptions()
	if err != nil {
		return err
	}
	// A token from -token-file or the environment serves every entry;
	// without one, each entry's server's stored token (init -enrol).
	var tok string
	if cf.tokenFile != "" || c.getenv("TESTIMONY_TOKEN") != "" || only != nil {
		if tok, err = c.token(cf.tokenFile, only); err != nil {
			return err
		}
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
	floors, _, err := h.pins().LoadFloors(h.floorsPath())
	if err != nil {
		return errorf("%v", err).
			Hint("the file may be damaged or tampered with; restore it from a backup. Without it, resume cannot tell ciphertext encrypted to a replaced list of reviewers' keys")
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
		if cur, ok := superseded(floors, e.Meta); ok {
			if !*sendSuperseded {
				printError(c.stderr, "", errorf("outbox entry %s was encrypted to version %d of your organisation's list of reviewers' keys, which the organisation has since replaced (version %d is current), possibly because a key was compromised: not uploading it", e.Name, e.Meta.RecipientsVersion, cur).
					Hint("submit the files again: they are then encrypted to the current reviewers' keys").
					Hint("only if you no longer have the files and your organisation agrees, upload the old ciphertext with 'testimony resume -send-superseded'"))
				failed++
				continue
			}
			c.notef("warning: uploading outbox entry %s, encrypted to the replaced version %d of your organisation's list of reviewers' keys (version %d is current), as -send-superseded asks", e.Name, e.Meta.RecipientsVersion, cur)
		}
		// The certificate check: the flags' (which must agree with the
		// one remembered for the server, as for every command), else the
		// remembered one (it may have been replaced since the
		// submission), else the one the submission was made with.
		ch := &tlsChoice{opt: api.TLSOptions{CAPEM: []byte(e.Meta.CAPEM), Pin: e.Meta.TLSPin}}
		if e.Meta.CAPEM == "" {
			ch.opt.CAPEM = nil
		}
		rem, err := c.chooseTLS(h, u, cf)
		if err != nil {
			printError(c.stderr, "", prefixed("outbox entry "+e.Name+": ", err))
			failed++
			continue
		}
		if tlsSet || rem.fromMemory {
			ch = rem
		}
		etok := tok
		if etok == "" {
			if etok, err = c.token("", u); err != nil {
				printError(c.stderr, "", prefixed("outbox entry "+e.Name+": ", err))
				failed++
				continue
			}
		}
		id, err := c.resumeOne(ctx, h, t, u, etok, ch, e, int64(rate))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			printError(c.stderr, "", prefixed("outbox entry "+e.Name+": ", err))
			failed++
			continue
		}
		if err := c.rememberTLS(h, ch); err != nil {
			printError(c.stderr, "", err)
		}
		fmt.Fprintln(c.stdout, id)
	}
	if failed > 0 {
		return errorf("%d submission(s) are still in the outbox", failed).
			Hint("run 'testimony resume' again once the problem above is solved; 'testimony status' lists them")
	}
	return nil
}

// superseded reports whether m was encrypted to an organisation-signed
// list older than the floor for its organisation key, and the floor.
// Entries without a recorded version (encrypted to pinned or local
// recipients, or written before versions were recorded) cannot be told.
func superseded(floors *pin.Floors, m outbox.Meta) (current uint64, ok bool) {
	if m.OrgKey == "" {
		return 0, false
	}
	current = floors.Get(m.OrgKey).Version
	return current, m.RecipientsVersion < current
}

func (c *cli) resumeOne(ctx context.Context, h *home, t *pin.Trust, u *url.URL, tok string, ch *tlsChoice, e *outbox.Entry, rate int64) (string, error) {
	key, err := pinnedLogKey(h, t, u)
	if err != nil {
		return "", err
	}
	cl, err := newClientTLS(u, tok, ch)
	if err != nil {
		return "", err
	}
	return c.send(ctx, h, cl, u, key, e, rate)
}
