package caseworker

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"time"

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
	for _, a := range l.Abandoned {
		if err := ctx.Err(); err != nil {
			return err
		}
		// With -server, the token is that server's: never show it to
		// another one.
		if u, err := api.ParseServer(a.Meta.Server); err == nil && only != nil && u.String() != only.String() {
			// Kept for a resume of its own server.
			l.Partial = slices.DeleteFunc(l.Partial, func(n string) bool { return n == a.Name })
			continue
		}
		if err := c.deleteAbandoned(ctx, h, cf, tlsSet, tok, a.Meta); err != nil {
			c.notef("could not delete the unfinished upload of the interrupted submission %s: %v", a.Name, err)
			c.hintf("it cannot be finished; the server deletes it when it expires")
		}
	}
	if n := len(l.Partial); n > 0 {
		if err := ob.Discard(l); err != nil {
			return err
		}
		c.notef("discarded %d submission(s) whose encryption was interrupted; none of them was sent in full", n)
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
		ch, etok, err := c.entryAuth(h, u, cf, tlsSet, tok, e.Meta)
		if err != nil {
			c.emit(Failure{Err: cmdline.Errorf("outbox entry %s: %w", e.Name, err)})
			failed++
			continue
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

// entryAuth returns the certificate check and token for the server u of an
// outbox entry with metadata m. The certificate check: the flags' (which
// must agree with the one remembered for the server, as for every
// command), else the remembered one (it may have been replaced since the
// submission), else the one the submission was made with. The token: tok
// if set, else the one stored for the server.
func (c *Client) entryAuth(h *home, u *url.URL, cf Conn, tlsSet bool, tok string, m outbox.Meta) (*tlsChoice, string, error) {
	ch := &tlsChoice{opt: api.TLSOptions{CAPEM: []byte(m.CAPEM), Pin: m.TLSPin}}
	if m.CAPEM == "" {
		ch.opt.CAPEM = nil
	}
	rem, err := c.chooseTLS(h, u, cf)
	if err != nil {
		return nil, "", err
	}
	if tlsSet || rem.fromMemory {
		ch = rem
	}
	if tok == "" {
		if tok, err = c.token("", u); err != nil {
			return nil, "", err
		}
	}
	return ch, tok, nil
}

// deleteAbandoned deletes the upload begun for a submission whose
// encryption was interrupted: it can never be finished, and it would count
// against the token's open uploads until it expired.
func (c *Client) deleteAbandoned(ctx context.Context, h *home, cf Conn, tlsSet bool, tok string, m outbox.Meta) error {
	u, err := api.ParseServer(m.Server)
	if err != nil {
		return err
	}
	ch, tok, err := c.entryAuth(h, u, cf, tlsSet, tok, m)
	if err != nil {
		return err
	}
	cl, err := newClientTLS(u, tok, ch)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, abandonedDeleteTimeout)
	defer cancel()
	return cl.DeleteUpload(dctx, m.UploadID)
}

// abandonedDeleteTimeout bounds the deletion of an abandoned upload, which
// is a courtesy to the server: it expires anyway.
const abandonedDeleteTimeout = 30 * time.Second

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
