package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

const tokenUsage = `Usage:
    testimony-server token create -data DIR -role submit|collect -name NAME
                                  [-enrol FILE -url URL [-pin SHA256 | -ca FILE]]
    testimony-server token list -data DIR
    testimony-server token revoke -data DIR ID|NAME

create prints the new token, and nothing else, on stdout; it is shown only
this once and only its hash is stored. A submit token uploads, a collect
token downloads; neither can do the other's job. list shows id, name, role,
creation time and whether a token is revoked, never the token, and, while
serve runs, what each submit token uses against its limits (serve -h): its
unfinished uploads (OPEN), the bytes it sent today, UTC (TODAY) and the
bytes of its submissions not yet collected (UNREVIEWED), counted since the
server started. revoke takes a token's id or name.

With -enrol, create writes the token into a new enrolment file (mode 0600,
never overwriting a file) instead of printing it: the one file a
caseworker imports with "testimony init -enrol FILE -org-key KEY". It also
holds -url (the server's address as caseworkers reach it), the log key,
the name of the organisation key (the deployment needs init -org-key), and
how to check the server's certificate: -pin SHA256, -ca FILE (a PEM CA
certificate), or by default the fingerprint of DIR/tls/cert.pem that
serve -tls-self-signed made; with none of these, clients use their
system's CAs (right for a certificate from a public CA). Hand the file over
in person with the organisation key card, then delete your copy.

These commands work while testimony-server serve runs: they talk to it over
DIR/admin.sock, and open the database directly only when no server answers.

Example:
    testimony-server token create -data /var/lib/testimony -role submit -name laptop-3 > laptop-3.token
    testimony-server token create -data /var/lib/testimony -role submit -name laptop-4 \
        -enrol laptop-4.enrol -url https://intake.example.org
    testimony-server token revoke -data /var/lib/testimony laptop-3
`

func (c *cli) token(args []string) error {
	if len(args) == 0 {
		return cmdline.Errorf("missing token subcommand").Hint("use token create, token list or token revoke")
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
		return cmdline.Errorf("unknown token subcommand %q", sub).Hint("use token create, token list or token revoke")
	}
}

func (c *cli) tokenCreate(args []string) error {
	fs := cmdline.NewFlagSet("token create")
	data := fs.String("data", "", "")
	role := fs.String("role", "", "")
	name := fs.String("name", "", "")
	var ef enrolFlags
	fs.StringVar(&ef.file, "enrol", "", "")
	fs.StringVar(&ef.url, "url", "", "")
	fs.StringVar(&ef.pin, "pin", "", "")
	fs.StringVar(&ef.ca, "ca", "", "")
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
	var plan *enrolPlan
	if ef.file != "" {
		if plan, err = planEnrolment(*data, ef); err != nil {
			return err
		}
	} else if ef.url != "" || ef.pin != "" || ef.ca != "" {
		return cmdline.Errorf("-url, -pin and -ca need -enrol FILE").Hint("add -enrol FILE to write an enrolment file for the new token")
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
	if plan != nil {
		return c.writeEnrolment(*data, ef.file, plan, made.token, made.info)
	}
	fmt.Fprintln(c.stdout, made.token)
	c.note("created %s token %s (%s); it is shown only this once", made.info.Role, made.info.ID, made.info.Name)
	return nil
}

func (c *cli) tokenList(args []string) error {
	data, _, err := c.dataFlag("token list", tokenUsage, args, false)
	if err != nil {
		return err
	}
	tokens, err := withAdmin(data, server.Admin.Tokens)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		c.note("no tokens yet; create one with: testimony-server token create -data %s -role submit -name NAME", data)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED\tOPEN\tTODAY\tUNREVIEWED")
	running := false
	for _, t := range tokens {
		revoked := "no"
		if t.Revoked {
			revoked = "yes"
		}
		open, today, unreviewed := "-", "-", "-"
		if t.Usage != nil {
			running = true
			open, today, unreviewed = strconv.Itoa(t.Usage.OpenUploads), strconv.FormatInt(t.Usage.BytesToday, 10), strconv.FormatInt(t.Usage.UnreviewedBytes, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.UTC().Format(time.RFC3339), revoked, open, today, unreviewed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !running {
		c.note("OPEN, TODAY and UNREVIEWED (a submit token's unfinished uploads, bytes sent today and bytes not yet collected) are counted by the running server; no server runs")
	}
	return nil
}

func (c *cli) tokenRevoke(args []string) error {
	data, rest, err := c.dataFlag("token revoke", tokenUsage, args, true)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return cmdline.Errorf("token revoke takes exactly one token id or name").Hint("list the tokens with: testimony-server token list -data %s", data)
	}
	_, err = withAdmin(data, func(a server.Admin) (struct{}, error) { return struct{}{}, a.RevokeToken(rest[0]) })
	if err != nil {
		return err
	}
	c.note("revoked token %s", rest[0])
	return nil
}
