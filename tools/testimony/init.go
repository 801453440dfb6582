package main

import (
	"context"
	"fmt"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
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
	fs := cmdline.NewFlagSet("init")
	var cf caseworker.Conn
	registerConn(fs, &cf)
	var tf caseworker.TrustKeys
	fs.StringVar(&tf.OrgKey, "org-key", "", "")
	fs.StringVar(&tf.LogKey, "log-key", "", "")
	replace := fs.Bool("replace", false, "")
	enrolFile := fs.String("enrol", "", "")
	deleteEnrol := fs.Bool("delete-enrol", false, "")
	if err := c.parseFlags(fs, initUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("init takes no arguments").Usage("")
	}
	key, err := c.client().Init(ctx, caseworker.InitOptions{Conn: cf, Keys: tf, Replace: *replace, Enrol: *enrolFile, DeleteEnrol: *deleteEnrol})
	if key != "" {
		fmt.Fprintln(c.stdout, key)
	}
	return err
}
