package main

import (
	"errors"
	"fmt"

	"github.com/testimony-ngo/testimony/server"
)

const recipientsUsage = `Usage: testimony-server recipients show -data DIR

Prints the deployment's recipients as an age recipients file, with the
recipient type and the receipt key as comments. Works while the server runs.

Example:
    testimony-server recipients show -data /var/lib/testimony
`

func (c *cli) recipients(args []string) error {
	switch {
	case len(args) == 0:
		return withHint(errors.New("missing recipients subcommand"), "use: testimony-server recipients show -data DIR")
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(c.stdout, recipientsUsage)
		return errHelpShown
	case args[0] != "show":
		return withHint(fmt.Errorf("unknown recipients subcommand %q", args[0]), "use: testimony-server recipients show -data DIR")
	}
	fs := newFlags("recipients show")
	data := fs.String("data", "", "")
	rest, err := c.parseFlags(fs, recipientsUsage, args[1:])
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	admin, err := server.OpenAdmin(*data)
	if err != nil {
		return explain(err, *data)
	}
	defer admin.Close()
	info, err := admin.Recipients()
	if err != nil {
		return explain(err, *data)
	}
	fmt.Fprintf(c.stdout, "# recipient type: %s\n", info.Type)
	fmt.Fprintf(c.stdout, "# receipt key: %s\n", info.ReceiptKey)
	for _, r := range info.Recipients {
		fmt.Fprintln(c.stdout, r)
	}
	return nil
}
