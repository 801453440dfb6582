package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

const witnessUsage = `Usage:
    testimony-server witness add -data DIR NAME VKEY
    testimony-server witness list -data DIR
    testimony-server witness remove -data DIR NAME

A witness is a reviewer's air-gapped machine. Its key (VKEY, printed there by
"testimony-review log witness-key") signs acknowledgements of the
submissions it decrypted; a collector brings each one back with "testimony
ack", and the server then deletes the ciphertext of exactly those
submissions, keeping their log leaves (docs/operator.md). Register only keys
handed over in person from the reviewer's machine: a registered key can
have ciphertext deleted. remove forgets a key; what it acknowledged stays
deleted.

These commands work while testimony-server serve runs: they talk to it over
DIR/admin.sock, and open the database directly only when no server answers.

Example:
    testimony-server witness add -data /var/lib/testimony reviewer-1 testimony-witness+1a2b3c4d+BAx…
`

func (c *cli) witness(args []string) error {
	const hint = "use witness add, witness list or witness remove"
	if len(args) == 0 {
		return cmdline.Errorf("missing witness subcommand").Hint(hint)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "add":
		return c.witnessAdd(rest)
	case "list":
		return c.witnessList(rest)
	case "remove":
		return c.witnessRemove(rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, witnessUsage)
		return errHelpShown
	default:
		return cmdline.Errorf("unknown witness subcommand %q", sub).Hint(hint)
	}
}

func (c *cli) witnessAdd(args []string) error {
	data, rest, err := c.dataFlag("witness add", witnessUsage, args, true)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return cmdline.Errorf("witness add takes a NAME and the witness VKEY").Hint("on the reviewer's machine, \"testimony-review log witness-key\" prints the key; then: testimony-server witness add -data %s reviewer-1 VKEY", data)
	}
	info, err := withAdmin(data, func(a server.Admin) (server.WitnessInfo, error) { return a.AddWitness(rest[0], rest[1]) })
	if err != nil {
		return err
	}
	c.note("registered witness %s (%s); its acknowledgements now delete ciphertext", info.Name, info.Key)
	return nil
}

func (c *cli) witnessList(args []string) error {
	data, _, err := c.dataFlag("witness list", witnessUsage, args, false)
	if err != nil {
		return err
	}
	ws, err := withAdmin(data, server.Admin.Witnesses)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		c.note("no witnesses yet; register a reviewer's key with: testimony-server witness add -data %s NAME VKEY", data)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDED\tKEY")
	for _, w := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", w.Name, w.Added.UTC().Format("2006-01-02"), w.Key)
	}
	return tw.Flush()
}

func (c *cli) witnessRemove(args []string) error {
	data, rest, err := c.dataFlag("witness remove", witnessUsage, args, true)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return cmdline.Errorf("witness remove takes exactly one witness NAME").Hint("list them with: testimony-server witness list -data %s", data)
	}
	_, err = withAdmin(data, func(a server.Admin) (struct{}, error) { return struct{}{}, a.RemoveWitness(rest[0]) })
	if err != nil {
		return err
	}
	c.note("removed witness %s", rest[0])
	return nil
}
