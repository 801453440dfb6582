package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

const initUsage = `Usage:
    testimony init [-org-key VKEY] [-log-key VKEY] [-replace]
                   [-server URL [-ca FILE | -pin SHA256 [-replace-pin]] [-token-file FILE]]
    testimony init -enrol FILE -org-key VKEY [-delete-enrol] [-replace] [-replace-pin]

Sets up this device: creates the state directory, creates the device's
signing key (device.key) if there is none, and pins the keys your
organisation gave you out of band (on paper, in person; never through the
server) in trust.json. Prints the device's public key, which your
reviewers register to recognise what this device submits.

With -server, it then connects to the server and checks its recipients
and log key against what is pinned, without submitting anything, and
remembers -ca or -pin for the server: later commands need neither. A
server whose certificate no longer matches is refused, and so is a -pin
or -ca that differs from the remembered one, unless -replace-pin is given.

With -enrol, the server, its certificate check, the log key and the
access token come from the enrolment file your operator gave you, as if
given with -server, -pin or -ca, -log-key and -token-file; the
organisation key still comes from your organisation's card (-org-key),
and a file that names another organisation key is refused. Once the
server answered, the token is kept in the state directory for this
server, so later commands need neither TESTIMONY_TOKEN nor -token-file.
The file still holds the token: delete it (-delete-enrol does).

Options:
    -org-key VKEY      Your organisation's verifier key: submit then encrypts
                       only to recipients signed with it.
    -log-key VKEY      The intake log's verifier key: receipts must be signed with it.
    -replace           Replace pinned keys that differ, after you confirmed the
                       change with your organisation out of band.
    -server URL        Check this server's keys now.
    -ca FILE           Trust only this PEM CA or self-signed certificate.
    -pin SHA256        Trust only the certificate with this SHA-256 fingerprint
                       (64 hex digits, colons allowed: AB:CD:…).
    -replace-pin       Replace the -pin or -ca remembered for this server, after
                       the operator confirmed the new certificate out of band.
    -token-file FILE   Read the access token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL         Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                       for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -enrol FILE        Take the server, certificate, log key and token from this
                       enrolment file (testimony-server token create -enrol).
    -delete-enrol      Delete the enrolment file once it was imported.

Example:
    $ testimony init -org-key 'testimony-org+2f1c9a0b+AaBbCc…' -log-key 'testimony-log-1a2b3c4d+7d3e0f21+AdEeFf…' \
          -server https://intake.example.org -pin 82:85:3B:BF:…:51:E5 -token-file ~/testimony.token
    tdk1P8m0qV3x…
    $ testimony init -enrol laptop-3.enrol -org-key 'testimony-org+2f1c9a0b+AaBbCc…' -delete-enrol
    tdk1P8m0qV3x…
`

func (c *cli) init(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var tf trustFlags
	fs.StringVar(&tf.orgKey, "org-key", "", "")
	fs.StringVar(&tf.logKey, "log-key", "", "")
	replace := fs.Bool("replace", false, "")
	enrolFile := fs.String("enrol", "", "")
	deleteEnrol := fs.Bool("delete-enrol", false, "")
	if err := c.parseFlags(fs, initUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("init takes no arguments")
	}
	var en *enrol.Enrolment
	if *enrolFile != "" {
		var err error
		if en, err = c.readEnrolment(*enrolFile, &cf, &tf); err != nil {
			return err
		}
	} else if *deleteEnrol {
		return usageErrorf("-delete-enrol needs -enrol FILE")
	}
	u, err := cf.serverURL(false)
	if err != nil {
		return err
	}
	_, tlsSet, err := cf.tlsOptions()
	if err != nil {
		return err
	}
	if u == nil && (tlsSet || cf.tokenFile != "" || cf.replacePin) {
		return usageErrorf("-ca, -pin, -replace-pin and -token-file need -server")
	}
	h, err := c.openHome(true)
	if err != nil {
		return err
	}
	// A -pin that contradicts the remembered one is refused before
	// anything is pinned.
	var ch *tlsChoice
	if u != nil {
		if ch, err = c.chooseTLS(h, u, cf); err != nil {
			return err
		}
	}
	t, err := pin.LoadTrust(h.trustPath())
	if err != nil {
		return errorf("%v", err).
			Hint("the trust file may be damaged or tampered with; restore it from a backup, or delete it and run 'testimony init' again with the keys your organisation gave you")
	}
	if en != nil {
		org := tf.orgKey
		if org == "" {
			org = t.OrgKey
		}
		if err := checkEnrolmentOrg(*enrolFile, en, org); err != nil {
			return err
		}
	}
	changed, err := c.applyTrust(h, t, tf, *replace)
	if err != nil {
		return err
	}
	if changed {
		if err := pin.SaveTrust(h.trustPath(), t); err != nil {
			return err
		}
	}
	priv, err := c.deviceKey(h)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, envelope.DeviceKeyString(priv.Public().(ed25519.PublicKey)))
	if t.OrgKey == "" && u == nil {
		c.notef("warning: no organisation key is pinned")
		c.hintf("ask your organisation for its key and run 'testimony init -org-key KEY'; until then a compromised server could hand out its own recipients")
	}
	if u == nil {
		return nil
	}
	var tok string
	if en != nil {
		tok = en.Token
	} else if tok, err = c.token(cf.tokenFile, u); err != nil {
		return err
	}
	cl, err := newClientTLS(u, tok, ch)
	if err != nil {
		return err
	}
	keys, err := c.fetchKeys(ctx, h, t, cl, u, nil, false, false)
	if err != nil {
		return err
	}
	if err := c.rememberTLS(h, ch); err != nil {
		return err
	}
	c.notef("%s is ready: %d %s recipient(s), log key %s", u.Host, len(keys.recipients.Strings), keys.recipients.Type, keyID(keys.logKey))
	if en != nil {
		return c.finishEnrolment(h, u, en, *enrolFile, *deleteEnrol)
	}
	return nil
}
