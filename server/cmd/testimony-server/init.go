package main

import (
	"fmt"
	"os"

	"github.com/testimony-ngo/testimony/server"
)

const initUsage = `Usage: testimony-server init -data DIR -recipients FILE

Creates a deployment in DIR (mode 0700): stores the reviewers' age
recipients from FILE (public keys only, one type: all age1pq1… or all
age1…) and a new Ed25519 receipt signing key, and prints that key for the
reviewers. A file holding a private key is refused and nothing is written.
An initialized DIR is never initialized again.

Flags:
    -data DIR          data directory to create
    -recipients FILE   age recipients file, as printed by testimony-review keygen

Example:
    testimony-server init -data /var/lib/testimony -recipients recipients.txt
`

func (c *cli) init(args []string) error {
	fs := newFlags("init")
	data := fs.String("data", "", "")
	recipientsFile := fs.String("recipients", "", "")
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
	res, err := server.Init(*data, f)
	if err != nil {
		return explain(err, *data)
	}
	fmt.Fprintf(c.stdout, "initialized %s\n", *data)
	fmt.Fprintf(c.stdout, "recipient type: %s\n", res.RecipientType)
	fmt.Fprintf(c.stdout, "recipients: %d\n", len(res.Recipients))
	fmt.Fprintf(c.stdout, "receipt key: %s\n", res.ReceiptKey)
	c.note("hint: give the receipt key to the reviewers; it verifies every receipt this server signs")
	c.note("hint: next, create tokens: testimony-server token create -data %s -role submit -name NAME", *data)
	return nil
}
