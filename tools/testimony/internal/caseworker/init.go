package caseworker

import (
	"context"
	"crypto/ed25519"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// InitOptions are what "testimony init" is given.
type InitOptions struct {
	// Conn, if Conn.Server is set, is the server to check now.
	Conn Conn
	Keys TrustKeys
	// Replace replaces pinned keys that differ (-replace).
	Replace bool
	// Enrol is an enrolment file that gives the server, its certificate
	// check, the log key and the token; Keys.OrgKey must name the key it
	// names. DeleteEnrol deletes it once imported.
	Enrol       string
	DeleteEnrol bool
}

// Init sets up this device: the state directory, the device key, the
// keys pinned in trust.json and, with a server, the check of its keys and
// its remembered certificate check. It returns the device's public key
// (tdk1…) as soon as it exists, also when a later step fails.
func (c *Client) Init(ctx context.Context, o InitOptions) (deviceKey string, err error) {
	cf, tf, enrolFile := o.Conn, o.Keys, o.Enrol
	var en *enrol.Enrolment
	if enrolFile != "" {
		if en, err = c.readEnrolment(enrolFile, &cf, &tf); err != nil {
			return "", err
		}
	} else if o.DeleteEnrol {
		return "", cmdline.Errorf("-delete-enrol needs -enrol FILE").Usage("")
	}
	u, err := cf.URL(false)
	if err != nil {
		return "", err
	}
	_, tlsSet, err := cf.tlsOptions()
	if err != nil {
		return "", err
	}
	if u == nil && (tlsSet || cf.TokenFile != "" || cf.ReplacePin) {
		return "", cmdline.Errorf("-ca, -pin, -replace-pin and -token-file need -server").Usage("")
	}
	h, err := c.openHome(true)
	if err != nil {
		return "", err
	}
	// A -pin that contradicts the remembered one is refused before
	// anything is pinned.
	var ch *tlsChoice
	if u != nil {
		if ch, err = c.chooseTLS(h, u, cf); err != nil {
			return "", err
		}
	}
	t, err := pin.LoadTrust(h.trustPath())
	if err != nil {
		return "", cmdline.Errorf("%v", err).
			Hint(`the trust file may be damaged or tampered with; restore it from a backup, or delete it and run "testimony init" again with the keys your organisation gave you`)
	}
	if en != nil {
		org := tf.OrgKey
		if org == "" {
			org = t.OrgKey
		}
		if err := checkEnrolmentOrg(enrolFile, en, org); err != nil {
			return "", err
		}
	}
	changed, err := c.applyTrust(h, t, tf, o.Replace)
	if err != nil {
		return "", err
	}
	if changed {
		if err := pin.SaveTrust(h.trustPath(), t); err != nil {
			return "", err
		}
	}
	priv, err := c.deviceKey(h)
	if err != nil {
		return "", err
	}
	deviceKey = envelope.DeviceKeyString(priv.Public().(ed25519.PublicKey))
	if t.OrgKey == "" && u == nil {
		c.notef("warning: no organisation key is pinned")
		c.hintf(`ask your organisation for its key and run "testimony init -org-key KEY"; until then a compromised server could hand out its own recipients`)
	}
	if u == nil {
		return deviceKey, nil
	}
	var tok string
	if en != nil {
		tok = en.Token
	} else if tok, err = c.token(cf.TokenFile, u); err != nil {
		return deviceKey, err
	}
	cl, err := newClientTLS(u, tok, ch)
	if err != nil {
		return deviceKey, err
	}
	keys, err := c.fetchKeys(ctx, &session{u: u, tlsc: ch, tls: ch.opt, h: h, t: t, cl: cl}, keyOptions{})
	if err != nil {
		return deviceKey, err
	}
	if err := c.rememberTLS(h, ch); err != nil {
		return deviceKey, err
	}
	c.notef("%s is ready: %d %s recipient(s), log key %s", u.Host, len(keys.recipients.Strings), keys.recipients.Type, keyID(keys.logKey))
	if en != nil {
		return deviceKey, c.finishEnrolment(h, u, en, enrolFile, o.DeleteEnrol)
	}
	return deviceKey, nil
}
