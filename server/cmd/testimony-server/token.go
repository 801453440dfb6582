package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/testimony-ngo/testimony/server"
)

const tokenUsage = `Usage:
    testimony-server token create -data DIR -role submit|collect -name NAME
    testimony-server token list -data DIR
    testimony-server token revoke -data DIR ID|NAME

create prints the new token, and nothing else, on stdout; it is shown only
this once and only its hash is stored. A submit token uploads, a collect
token downloads; neither can do the other's job. list shows id, name, role,
creation time and whether a token is revoked, never the token. revoke takes
a token's id or name.

These commands work while testimony-server serve runs: they talk to it over
DIR/admin.sock, and open the database directly only when no server answers.

Example:
    testimony-server token create -data /var/lib/testimony -role submit -name laptop-3 > laptop-3.token
    testimony-server token revoke -data /var/lib/testimony laptop-3
`

func (c *cli) token(args []string) error {
	if len(args) == 0 {
		return withHint(errors.New("missing token subcommand"), "use token create, token list or token revoke")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create":
		return c.tokenCreate(rest)
	case "list":
		return c.tokenList(rest)
	case "revoke":
		return c.tokenRevoke(rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, tokenUsage)
		return errHelpShown
	default:
		return withHint(fmt.Errorf("unknown token subcommand %q", sub), "use token create, token list or token revoke")
	}
}

func (c *cli) tokenCreate(args []string) error {
	fs := newFlags("token create")
	data := fs.String("data", "", "")
	role := fs.String("role", "", "")
	name := fs.String("name", "", "")
	rest, err := c.parseFlags(fs, tokenUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data", "role", "name"); err != nil {
		return err
	}
	type created struct {
		token string
		info  server.TokenInfo
	}
	made, err := withAdmin(*data, func(a server.Admin) (created, error) {
		token, info, err := a.CreateToken(*role, *name)
		return created{token, info}, err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, made.token)
	c.note("created %s token %s (%s); it is shown only this once", made.info.Role, made.info.ID, made.info.Name)
	return nil
}

func (c *cli) tokenList(args []string) error {
	fs := newFlags("token list")
	data := fs.String("data", "", "")
	rest, err := c.parseFlags(fs, tokenUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	tokens, err := withAdmin(*data, server.Admin.Tokens)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		c.note("no tokens yet; create one with: testimony-server token create -data %s -role submit -name NAME", *data)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
	for _, t := range tokens {
		revoked := "no"
		if t.Revoked {
			revoked = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.UTC().Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func (c *cli) tokenRevoke(args []string) error {
	fs := newFlags("token revoke")
	data := fs.String("data", "", "")
	rest, err := c.parseFlags(fs, tokenUsage, args)
	if err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	if len(rest) != 1 {
		return withHint(errors.New("token revoke takes exactly one token id or name"), "list the tokens with: testimony-server token list -data %s", *data)
	}
	_, err = withAdmin(*data, func(a server.Admin) (struct{}, error) { return struct{}{}, a.RevokeToken(rest[0]) })
	if err != nil {
		return err
	}
	c.note("revoked token %s", rest[0])
	return nil
}
