package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// serverKeys are the keys the client uses with one server, after pinning.
type serverKeys struct {
	recipients *recipients.Set
	receiptKey ed25519.PublicKey
	keyString  string
}

// fetchKeys gets the server's recipients and receipt key, validates them,
// and checks them against the pin (pinning them on first use). If local is
// set, the client encrypts to those recipients instead and only the receipt
// key is pinned and compared.
func (c *cli) fetchKeys(ctx context.Context, h *home, cl *api.Client, u *url.URL, local *recipients.Set, accept bool) (*serverKeys, error) {
	var got *api.Recipients
	err := c.retry.Do(ctx, c.sleep, api.Retryable, func(ctx context.Context) error {
		var err error
		got, err = cl.Recipients(ctx)
		return err
	})
	if err != nil {
		return nil, explain(err, u, "run the command again")
	}
	set, err := recipients.Parse(strings.NewReader(strings.Join(got.Recipients, "\n")))
	if err != nil {
		return nil, errorf("the server published unusable recipients: %v", err).
			hint("report this to the operator; do not submit until it is fixed")
	}
	if set.Type != got.Type {
		return nil, errorf("the server says its recipients are of type %s, but they are of type %s", api.Sanitize(got.Type, 40), set.Type).
			hint("report this to the operator; do not submit until it is fixed")
	}
	key, err := receipt.ParseKey(got.ReceiptKey)
	if err != nil {
		return nil, errorf("the server published a malformed receipt key: %v", err).
			hint("report this to the operator; do not submit until it is fixed")
	}
	hp := api.HostPort(u)
	p, res, err := h.pins().Check(hp, pin.Keys{Type: set.Type, Recipients: set.Strings, ReceiptKey: receipt.KeyString(key)},
		pin.CheckOptions{Accept: accept, ReceiptKeyOnly: local != nil, Server: u.String(), Now: c.now()})
	var changed *pin.ChangedError
	if errors.As(err, &changed) {
		return nil, errorf("%v; a changed key may mean the server was compromised, and whoever holds the new key would read everything you submit or be able to fake receipts", err).
			hint("verify the new keys with your organisation out of band (not through this server), then re-run with -accept-new-recipients").
			hint("the pinned keys are in %s", h.pinPath(hp))
	}
	if err != nil {
		return nil, errorf("%v", err).
			hint("the pin file may be damaged or tampered with; restore it from a backup, or delete it and confirm the keys with your organisation when they are pinned again")
	}
	switch res {
	case pin.FirstUse:
		c.notef("first connection to %s: pinned its %d %s recipient(s) and receipt key %s", u.Host, len(p.Recipients), p.Type, p.ReceiptKey)
		c.hintf("confirm these keys with your organisation out of band; they are saved in %s", h.pinPath(hp))
	case pin.Replaced:
		c.notef("accepted new keys for %s and replaced the pin in %s", u.Host, h.pinPath(hp))
	}
	pinnedKey, err := receipt.ParseKey(p.ReceiptKey)
	if err != nil {
		return nil, fmt.Errorf("failed to read pinned receipt key: %w", err)
	}
	k := &serverKeys{recipients: set, receiptKey: pinnedKey, keyString: p.ReceiptKey}
	if local != nil {
		if local.Type != set.Type {
			return nil, errorf("the recipients file is of type %s, but the server accepts only %s", local.Type, set.Type).
				hint("use a recipients file of type %s, as your organisation publishes it", set.Type)
		}
		k.recipients = local
	}
	return k, nil
}

// pinnedReceiptKey returns the receipt key pinned for u, for resume, which
// does not need the recipients.
func pinnedReceiptKey(h *home, u *url.URL) (ed25519.PublicKey, error) {
	p, err := h.pins().Load(api.HostPort(u))
	if err != nil {
		return nil, errorf("no pinned receipt key for %s: %v", u.Host, err).
			hint("the pin is written by 'testimony submit'; if it was deleted, run 'testimony submit' to the same server once to pin the keys again")
	}
	return receipt.ParseKey(p.ReceiptKey)
}
