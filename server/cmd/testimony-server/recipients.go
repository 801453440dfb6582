package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

const recipientsUsage = `Usage:
    testimony-server recipients show -data DIR
    testimony-server recipients set -data DIR NOTEFILE

show prints the deployment's recipients as an age recipients file, with the
recipient type, the log key and the recipients note version as comments.

set replaces the served recipients with those of NOTEFILE, a recipients
note signed with the organisation key on the air-gapped machine
(testimony-review recipients sign). Its version must be higher than the
one served now and its recipient type the deployment's. If init was given
-org-key, the note must be signed by that key. The server cannot forge a
note: caseworkers who pinned the organisation key check the signature
themselves.

Both work while the server runs.

Example:
    testimony-server recipients show -data /var/lib/testimony
    testimony-server recipients set -data /var/lib/testimony recipients-v2.note
`

func (c *cli) recipients(args []string) error {
	const usageHint = "use: testimony-server recipients show -data DIR, or recipients set -data DIR NOTEFILE"
	switch {
	case len(args) == 0:
		return cmdline.Errorf("missing recipients subcommand").Hint(usageHint)
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(c.stdout, recipientsUsage)
		return errHelpShown
	case args[0] == "show":
		return c.recipientsShow(args[1:])
	case args[0] == "set":
		return c.recipientsSet(args[1:])
	}
	return cmdline.Errorf("unknown recipients subcommand %q", args[0]).Hint(usageHint)
}

func (c *cli) recipientsShow(args []string) error {
	data, _, err := c.dataFlag("recipients show", recipientsUsage, args, false)
	if err != nil {
		return err
	}
	info, err := withAdmin(data, server.Admin.Recipients)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "# recipient type: %s\n", info.Type)
	fmt.Fprintf(c.stdout, "# log key: %s\n", info.LogKey)
	if info.OrgKey != "" {
		fmt.Fprintf(c.stdout, "# organisation key: %s\n", info.OrgKey)
	}
	if info.Version > 0 {
		fmt.Fprintf(c.stdout, "# signed recipients note: version %d\n", info.Version)
	} else {
		fmt.Fprintf(c.stdout, "# signed recipients note: none (recipients from init)\n")
	}
	for _, r := range info.Recipients {
		fmt.Fprintln(c.stdout, r)
	}
	return nil
}

func (c *cli) recipientsSet(args []string) error {
	data, rest, err := c.dataFlag("recipients set", recipientsUsage, args, true)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return cmdline.Errorf("recipients set takes exactly one NOTEFILE").Usage("recipients set")
	}
	note, err := readNote(rest[0])
	if err != nil {
		return err
	}
	info, err := withAdmin(data, func(a server.Admin) (*server.DeploymentInfo, error) { return a.SetRecipients(note) })
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "recipients set to version %d: %d %s recipients\n", info.Version, len(info.Recipients), info.Type)
	if info.OrgKey == "" {
		c.note("hint: this server has no organisation key, so it checked the note's form but not its signature; caseworkers who pinned the organisation key check it")
	}
	return nil
}

// readNote reads a recipients note file, refusing anything larger than a
// note can be before reading it all.
func readNote(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open the recipients note: %w", err)
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, recipients.MaxNoteSize)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, cmdline.Errorf("%s is larger than a recipients note can be (%d bytes)", path, recipients.MaxNoteSize).Hint("give the file that \"testimony-review recipients sign\" printed")
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the recipients note: %w", err)
	}
	return data, nil
}
