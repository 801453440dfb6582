package caseworker

import (
	"context"
	"maps"
	"net/url"
	"slices"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// ResumeOptions are what 'testimony resume' is given.
type ResumeOptions struct {
	// Conn.Server, if set, resumes only the entries for that server;
	// Conn's certificate check and token serve every entry.
	Conn Conn
	// SendSuperseded also uploads entries encrypted to a replaced list of
	// reviewers' keys.
	SendSuperseded bool
	RateLimit      int64
}

// Resume finishes every upload left in the outbox. Each entry sent is a
// Sent event; each entry left in the outbox is a Failure event (or a Note
// when it is skipped unread), and then the error says how many are left.
func (c *Client) Resume(ctx context.Context, o ResumeOptions) error {
	cf := o.Conn
	if cf.ReplacePin {
		return cmdline.Errorf("resume does not take -replace-pin").Usage("").
			Hint(`replace the remembered certificate check first: "testimony init -server URL -pin SHA256 -replace-pin"`)
	}
	only, err := cf.URL(false)
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
	if cf.TokenFile != "" || c.Getenv("TESTIMONY_TOKEN") != "" || only != nil {
		if tok, err = c.token(cf.TokenFile, only); err != nil {
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
	t, err := c.trust(h, TrustKeys{})
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
		c.hintf(`run "testimony submit" again for the files you were submitting then`)
	}
	floors, _, err := h.pins().LoadFloors(h.floorsPath())
	if err != nil {
		return cmdline.Errorf("%v", err).
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
			if !o.SendSuperseded {
				c.emit(Failure{Err: cmdline.Errorf("outbox entry %s was encrypted to version %d of your organisation's list of reviewers' keys, which the organisation has since replaced (version %d is current), possibly because a key was compromised: not uploading it", e.Name, e.Meta.RecipientsVersion, cur).
					Hint("submit the files again: they are then encrypted to the current reviewers' keys").
					Hint(`only if you no longer have the files and your organisation agrees, upload the old ciphertext with "testimony resume -send-superseded"`)})
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
			c.emit(Failure{Err: cmdline.Errorf("outbox entry %s: %w", e.Name, err)})
			failed++
			continue
		}
		if tlsSet || rem.fromMemory {
			ch = rem
		}
		etok := tok
		if etok == "" {
			if etok, err = c.token("", u); err != nil {
				c.emit(Failure{Err: cmdline.Errorf("outbox entry %s: %w", e.Name, err)})
				failed++
				continue
			}
		}
		// The Sent event tells the submission id.
		_, err = c.resumeOne(ctx, h, t, u, etok, ch, e, o.RateLimit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.emit(Failure{Err: cmdline.Errorf("outbox entry %s: %w", e.Name, err)})
			failed++
			continue
		}
		if err := c.rememberTLS(h, ch); err != nil {
			c.emit(Failure{Err: err})
		}
	}
	if failed > 0 {
		return cmdline.Errorf("%d submission(s) are still in the outbox", failed).
			Hint(`run "testimony resume" again once the problem above is solved; "testimony status" lists them`)
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

func (c *Client) resumeOne(ctx context.Context, h *home, t *pin.Trust, u *url.URL, tok string, ch *tlsChoice, e *outbox.Entry, rate int64) (string, error) {
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
