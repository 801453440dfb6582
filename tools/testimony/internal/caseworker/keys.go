package caseworker

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// TrustKeys are trust anchors given out of band: -org-key and -log-key.
type TrustKeys struct {
	OrgKey string
	LogKey string
}

// serverKeys are the keys the client uses with one server, after pinning.
type serverKeys struct {
	// recipients is nil when only the log key was asked for.
	recipients *recipients.Set
	logKey     string
	// orgKey and version name the organisation-signed list recipients
	// is, if it is one, so that an outbox entry records what it was
	// encrypted to.
	orgKey  string
	version uint64
}

// keyID names a note verifier key in messages: its name and key hash. The
// key may come from the server, so it is sanitized for the terminal.
func keyID(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) < 3 {
		return api.Sanitize(vkey, 100)
	}
	return api.Sanitize(parts[0]+"+"+parts[1], 100)
}

// trust loads trust.json and applies -org-key and -log-key: a key that is
// not pinned yet is pinned (and saved) now; one that differs from the
// pinned key is refused, because a flag must never silently replace what
// the organisation handed over.
func (c *Client) trust(h *home, tf TrustKeys) (*pin.Trust, error) {
	t, err := pin.LoadTrust(h.trustPath())
	if err != nil {
		return nil, cmdline.Errorf("%v", err).
			Hint(`the trust file may be damaged or tampered with; restore it from a backup, or delete it and run "testimony init" with the keys your organisation gave you`)
	}
	changed, err := c.applyTrust(h, t, tf, false)
	if err != nil {
		return nil, err
	}
	if changed {
		if err := pin.SaveTrust(h.trustPath(), t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// applyTrust sets the keys of tf in t. It reports whether t changed.
func (c *Client) applyTrust(h *home, t *pin.Trust, tf TrustKeys, replace bool) (bool, error) {
	// A pinned key is compared with only when the flags do not replace it,
	// so that "init -replace" can put swapped keys back in their places.
	pinnedOrg, pinnedLog := t.OrgKey, t.LogKey
	if tf.OrgKey != "" {
		pinnedOrg = ""
	}
	if tf.LogKey != "" {
		pinnedLog = ""
	}
	if err := checkKeyKinds(tf.OrgKey, tf.LogKey, pinnedOrg, pinnedLog); err != nil {
		return false, err
	}
	changed := false
	for _, k := range []struct {
		flag, what string
		val        string
		dst        *string
	}{
		{"-org-key", "organisation key", tf.OrgKey, &t.OrgKey},
		{"-log-key", "log key", tf.LogKey, &t.LogKey},
	} {
		if k.val == "" || k.val == *k.dst {
			continue
		}
		if err := pin.CheckKey(k.val); err != nil {
			return false, cmdline.Errorf("%s: %v", k.flag, err).Usage("")
		}
		if *k.dst != "" && !replace {
			return false, cmdline.Errorf("%s %s differs from the %s pinned in %s (%s)", k.flag, keyID(k.val), k.what, h.trustPath(), keyID(*k.dst)).
				Hint("a changed key may mean someone is trying to make you trust theirs; confirm the new key with your organisation out of band").
				Hint(`if it was really replaced, run "testimony init -replace %s KEY"`, k.flag)
		}
		if *k.dst == "" {
			c.notef("pinned the %s %s in %s", k.what, keyID(k.val), h.trustPath())
		} else {
			c.notef("replaced the %s %s with %s in %s", k.what, keyID(*k.dst), keyID(k.val), h.trustPath())
		}
		*k.dst = k.val
		changed = true
	}
	return changed, nil
}

// keyOptions say which keys fetchKeys wants and what it accepts.
type keyOptions struct {
	// local, if set, are the recipients to use (-recipients FILE).
	local *recipients.Set
	// accept accepts recipients that differ from the pinned ones.
	accept bool
	// logOnly wants only the log key: the server is not asked if
	// trust.json has one.
	logOnly bool
}

// fetchKeys returns the keys to use with the session's server. The log key
// comes from trust.json, or is pinned on first use. The recipients come
// from the organisation-signed note if an organisation key is pinned, from
// o.local if set, and otherwise are pinned on first use.
func (c *Client) fetchKeys(ctx context.Context, s *session, o keyOptions) (*serverKeys, error) {
	h, t, cl, u := s.h, s.t, s.cl, s.u
	local, accept, logOnly := o.local, o.accept, o.logOnly
	if logOnly && t.LogKey != "" {
		return &serverKeys{logKey: t.LogKey}, nil
	}
	var got *api.Recipients
	err := c.Retry.Do(ctx, c.Sleep, api.Retryable, func(ctx context.Context) error {
		var err error
		got, err = cl.Recipients(ctx)
		return err
	})
	if err != nil {
		if ctx.Err() == nil && api.Retryable(err) {
			return nil, unreachableError{explain(err, u, "run the command again")}
		}
		return nil, explain(err, u, "run the command again")
	}
	if err := pin.CheckKey(got.LogKey); err != nil {
		return nil, cmdline.Errorf("the server published a malformed log key: %v", err).
			Hint("report this to the operator; do not submit until it is fixed")
	}
	if e := swappedWithServer(t.OrgKey, t.LogKey, got); e != nil {
		return nil, e
	}
	hp := api.HostPort(u)
	if t.LogKey != "" && got.LogKey != t.LogKey {
		return nil, cmdline.Errorf("the server's log key %s is not the log key pinned in %s (%s); a different log key may mean the server was replaced or compromised, and its receipts would prove nothing",
			keyID(got.LogKey), h.trustPath(), keyID(t.LogKey)).
			Hint("confirm the log key with your organisation out of band (not through this server)").
			Hint(`if it was really replaced, run "testimony init -replace -log-key KEY"`)
	}

	// Without an organisation key the recipients are pinned on first use,
	// together with the log key; otherwise only the log key is.
	var set *recipients.Set
	tofu := !logOnly && local == nil && t.OrgKey == ""
	keys := pin.Keys{LogKey: got.LogKey}
	if tofu {
		set, err = recipients.Parse(strings.NewReader(strings.Join(got.Recipients, "\n")))
		if err != nil {
			return nil, cmdline.Errorf("the server published unusable recipients: %v", err).
				Hint("report this to the operator; do not submit until it is fixed")
		}
		if set.Type != got.Type {
			return nil, cmdline.Errorf("the server says its recipients are of type %s, but they are of type %s", api.Sanitize(got.Type, 40), set.Type).
				Hint("report this to the operator; do not submit until it is fixed")
		}
		keys.Type, keys.Recipients = set.Type, set.Strings
	}
	if t.LogKey != "" {
		// trust.json is the authority on the log key: bring the pin in
		// line with it, and only then compare the rest as usual.
		_, _, err := h.pins().Check(hp, pin.Keys{LogKey: t.LogKey}, pin.CheckOptions{
			Accept: true, LogKeyOnly: true, Server: u.String(), Now: c.Now(),
		})
		if err != nil {
			return nil, cmdline.Errorf("%v", err).
				Hint("the pin file may be damaged or tampered with; restore it from a backup, or delete it and confirm the keys with your organisation when they are pinned again")
		}
	}
	p, res, err := h.pins().Check(hp, keys, pin.CheckOptions{
		Accept: accept, LogKeyOnly: !tofu, Server: u.String(), Now: c.Now(),
	})
	var changed *pin.ChangedError
	if errors.As(err, &changed) && logOnly {
		return nil, cmdline.Errorf("%v; a changed log key may mean the server was replaced or compromised, and its receipts and bundles would prove nothing", err).
			Hint("confirm the log key with your organisation out of band (not through this server)").
			Hint(`if it was really replaced, run "testimony init -replace -log-key KEY"`)
	}
	if errors.As(err, &changed) {
		return nil, cmdline.Errorf("%v; a changed key may mean the server was compromised, and whoever holds the new key would read everything you submit or be able to fake receipts", err).
			Hint("verify the new keys with your organisation out of band (not through this server), then re-run with -accept-new-recipients").
			Hint("the pinned keys are in %s", h.pinPath(hp))
	}
	if err != nil {
		return nil, cmdline.Errorf("%v", err).
			Hint("the pin file may be damaged or tampered with; restore it from a backup, or delete it and confirm the keys with your organisation when they are pinned again")
	}
	switch {
	case res == pin.FirstUse && tofu:
		c.notef("first connection to %s: pinned its %d %s recipient(s) and log key %s", u.Host, len(p.Recipients), p.Type, keyID(p.LogKey))
		c.hintf("confirm these keys with your organisation out of band; they are saved in %s", h.pinPath(hp))
	case res == pin.FirstUse && t.LogKey == "":
		c.notef("first connection to %s: pinned its log key %s", u.Host, keyID(p.LogKey))
		c.hintf("confirm it with your organisation out of band; it is saved in %s", h.pinPath(hp))
	case res == pin.Replaced:
		c.notef("accepted new keys for %s and replaced the pin in %s", u.Host, h.pinPath(hp))
	}
	k := &serverKeys{recipients: set, logKey: p.LogKey}
	switch {
	case logOnly:
	case local != nil:
		if local.Type != got.Type {
			return nil, cmdline.Errorf("the recipients file is of type %s, but the server accepts only %s", local.Type, api.Sanitize(got.Type, 40)).
				Hint("use a recipients file of type %s, as your organisation publishes it", api.Sanitize(got.Type, 40))
		}
		k.recipients = local
	case t.OrgKey != "":
		ss, err := c.signedRecipients(h, t, hp, p, got)
		if err != nil {
			return nil, err
		}
		k.recipients, k.orgKey, k.version = ss.Set, t.OrgKey, ss.Version
	default:
		c.notef("warning: no organisation key is pinned, so these recipients are trusted only because they match what %s sent the first time", u.Host)
		c.hintf(`ask your organisation for its key (it is printed by "testimony-review org init") and run "testimony init -org-key KEY"; a compromised server can then no longer hand out its own recipients`)
	}
	return k, nil
}

// signedRecipients verifies the organisation-signed recipients note the
// server serves, refuses a rollback to a version older than the one
// verified before, and records the version in the pin p.
func (c *Client) signedRecipients(h *home, t *pin.Trust, hp string, p *pin.Pin, got *api.Recipients) (*recipients.SignedSet, error) {
	org := keyID(t.OrgKey)
	if got.SignedRecipients == "" {
		return nil, cmdline.Errorf("the server offers no recipients signed by your organisation, but you pinned your organisation's key %s: without that signature nothing shows the recipients are your reviewers' keys and not the server's own", org).
			Hint(`do not submit; ask the operator to install the signed recipients ("testimony-server recipients set -data DIR NOTEFILE" with the note from "testimony-review recipients sign")`)
	}
	ss, err := recipients.VerifyNote([]byte(got.SignedRecipients), t.OrgKey)
	if errors.Is(err, recipients.ErrNoteSignature) {
		return nil, cmdline.Errorf("the recipients offered by the server were not signed by your organisation's key %s: the server may be compromised, and whoever holds the keys it offers could read what you submit", org).
			Hint("do not submit; report this to your organisation through another channel than this server").
			Hint(`if your organisation really replaced its key, confirm the new key out of band and run "testimony init -replace -org-key KEY"`)
	}
	if err != nil {
		return nil, cmdline.Errorf("the server's signed recipients are unusable: %v", err).
			Hint("report this to the operator; do not submit until it is fixed")
	}
	if ss.Set.Type != got.Type {
		return nil, cmdline.Errorf("your organisation's recipients are of type %s, but the server accepts only %s", ss.Set.Type, api.Sanitize(got.Type, 40)).
			Hint("report this to the operator: the server must be set up for the type the organisation signed")
	}
	// The floor is per organisation key, not per server address: the
	// same list is valid everywhere, and so is the rollback it allows.
	// It is read, compared and raised under one lock, so a command at
	// another address cannot save a lower version over a higher one.
	// Every pin (this one included) raises it when it is read.
	var prior pin.Floor
	today := c.Now().UTC().Format("2006-01-02")
	err = h.pins().UpdateFloors(h.floorsPath(), func(floors *pin.Floors) (bool, error) {
		prior = floors.Get(t.OrgKey)
		switch {
		case ss.Version < prior.Version:
			return false, cmdline.Errorf("the server offers recipients version %d, but version %d was already verified: refusing a rollback (an older list may hold keys your organisation retired, perhaps because they were compromised)", ss.Version, prior.Version).
				Hint("do not submit; report this to your organisation: the server may be compromised or restored from an old backup").
				Hint("version %d was verified at %s on %s; it is recorded in %s", prior.Version, api.Sanitize(prior.Server, 200), prior.Verified, h.floorsPath())
		case ss.Version == prior.Version && (ss.Set.Type != prior.Type || !pin.SameRecipients(ss.Set.Strings, prior.Recipients)):
			return false, cmdline.Errorf("the server offers recipients version %d that differ from the version %d verified before: two different lists were signed with the same version", ss.Version, prior.Version).
				Hint("do not submit; report this to your organisation: a new list must get a higher version")
		}
		return floors.Raise(t.OrgKey, pin.Floor{Version: ss.Version, Type: ss.Set.Type, Recipients: ss.Set.Strings, Server: p.Server, Verified: today}), nil
	})
	var ce *cmdline.Error
	if errors.As(err, &ce) {
		return nil, err
	}
	if err != nil {
		return nil, cmdline.Errorf("%v", err).
			Hint("the file may be damaged or tampered with; restore it from a backup. Deleting the floors file would let a server roll the recipients back")
	}
	if p.OrgKey == t.OrgKey && p.RecipientsVersion == ss.Version {
		return ss, nil
	}
	p.Type, p.Recipients, p.RecipientsVersion, p.OrgKey = ss.Set.Type, ss.Set.Strings, ss.Version, t.OrgKey
	p.Pinned = today
	if err := h.pins().Save(hp, p); err != nil {
		return nil, err
	}
	switch {
	case ss.Version == prior.Version:
		// A version verified before, at another address: nothing new.
	case prior.Version > 0:
		c.notef("recipients rotated to version %d (was %d): %d %s recipient(s), signed by your organisation's key %s", ss.Version, prior.Version, len(ss.Set.Strings), ss.Set.Type, org)
	default:
		c.notef("verified recipients version %d: %d %s recipient(s), signed by your organisation's key %s", ss.Version, len(ss.Set.Strings), ss.Set.Type, org)
	}
	return ss, nil
}

// pinnedLogKey returns the log key for u, for resume, which does not fetch
// the server's keys.
func pinnedLogKey(h *home, t *pin.Trust, u *url.URL) (string, error) {
	if t.LogKey != "" {
		return t.LogKey, nil
	}
	p, err := h.pins().Load(api.HostPort(u))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", cmdline.Errorf("no log key is pinned for %s", u.Host).
				Hint(`run "testimony init -log-key KEY" with the key your organisation gave you, or "testimony submit" to the same server once to pin it`)
		}
		return "", cmdline.Errorf("%v", err)
	}
	return p.LogKey, nil
}

// KeyID names a note verifier key as messages do: its name and key hash,
// sanitized for a terminal.
func KeyID(vkey string) string { return keyID(vkey) }

// unreachableError is a server that could not be asked for its keys: the
// network or the server is down. It unwraps to the explained error.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// verifiedKeys returns the keys verified on this device for the server at
// u, without asking it: the newest organisation-signed recipients verified
// at any server if an organisation key is pinned, else the recipients
// pinned on first use for u; and the log key. ok is false when there are
// none to use.
func (c *Client) verifiedKeys(h *home, t *pin.Trust, u *url.URL) (k *serverKeys, ok bool) {
	logKey, err := pinnedLogKey(h, t, u)
	if err != nil {
		return nil, false
	}
	var typ string
	var list []string
	var version uint64
	if t.OrgKey != "" {
		floors, _, err := h.pins().LoadFloors(h.floorsPath())
		if err != nil {
			return nil, false
		}
		fl := floors.Get(t.OrgKey)
		if fl.Version == 0 {
			return nil, false
		}
		typ, list, version = fl.Type, fl.Recipients, fl.Version
	} else {
		p, err := h.pins().Load(api.HostPort(u))
		if err != nil || len(p.Recipients) == 0 {
			return nil, false
		}
		typ, list = p.Type, p.Recipients
	}
	set, err := recipients.Parse(strings.NewReader(strings.Join(list, "\n")))
	if err != nil || set.Type != typ {
		return nil, false
	}
	k = &serverKeys{recipients: set, logKey: logKey, version: version}
	if version > 0 {
		k.orgKey = t.OrgKey
	}
	return k, true
}
