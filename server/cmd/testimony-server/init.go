package main

import (
	"fmt"
	"os"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

const initUsage = `Usage: testimony-server init -data DIR -recipients FILE [-origin NAME] [-org-key VKEY]

Creates a deployment in DIR (mode 0700): stores the reviewers' age
recipients from FILE (public keys only, one type: all age1pq1… or all
age1…) and a new intake log key, and prints the log's verifier key for
caseworkers and reviewers to pin. A file holding a private key is refused
and nothing is written. An initialized DIR is never initialized again.

Flags:
    -data DIR          data directory to create
    -recipients FILE   age recipients file, as printed by testimony-review keygen
    -origin NAME       name of the intake log, the first line of every
                       checkpoint (default testimony-log-<8 random hex digits>)
    -org-key VKEY      the organisation's verifier key (testimony-review org
                       init prints it); "recipients set" then accepts only
                       notes signed by it

Example:
    testimony-server init -data /var/lib/testimony -recipients recipients.txt \
        -org-key 'testimony-org+1a2b3c4d+AbC…'
`

func (c *cli) init(args []string) error {
	fs := cmdline.NewFlagSet("init")
	data := fs.String("data", "", "")
	recipientsFile := fs.String("recipients", "", "")
	origin := fs.String("origin", "", "")
	orgKey := fs.String("org-key", "", "")
	rest, err := c.parseFlags(fs, initUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data", "recipients"); err != nil {
		return err
	}
	f, err := os.Open(*recipientsFile)
	if err != nil {
		return fmt.Errorf("failed to open the recipients file: %w", err)
	}
	defer f.Close()
	res, err := server.Init(*data, f, server.InitOptions{Origin: *origin, OrgKey: *orgKey})
	if err != nil {
		return explain(err, *data)
	}
	fmt.Fprintf(c.stdout, "initialized %s\n", *data)
	fmt.Fprintf(c.stdout, "recipient type: %s\n", res.RecipientType)
	fmt.Fprintf(c.stdout, "recipients: %d\n", len(res.Recipients))
	if res.OrgKey != "" {
		fmt.Fprintf(c.stdout, "organisation key: %s\n", res.OrgKey)
	}
	fmt.Fprintf(c.stdout, "log key: %s\n", res.LogKey)
	c.note("hint: give the log key to caseworkers (testimony init -log-key) and reviewers (testimony-review log trust); it verifies every receipt and checkpoint this server signs")
	if res.OrgKey != "" {
		c.note("hint: serve organisation-signed recipients: testimony-review recipients sign on the air-gapped machine, then testimony-server recipients set -data %s NOTEFILE", *data)
	}
	c.note("hint: next, create tokens: testimony-server token create -data %s -role submit -name NAME", *data)
	return nil
}
