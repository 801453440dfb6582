package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

// All of the command's own output rules are here, in internal/cmdline's
// convention: errors and hints go to stderr as "testimony-server: error: …"
// and "testimony-server: hint: …", data (tokens, lists) to stdout.

const progName = "testimony-server"

// errHelpShown ends a command after -h printed its usage.
var errHelpShown = errors.New("help shown")

func (c *cli) report(err error) { cmdline.Print(c.stderr, progName, "", err) }

func (c *cli) note(format string, args ...any) {
	fmt.Fprintf(c.stderr, "%s: "+format+"\n", append([]any{progName}, args...)...)
}

// explain adds the hint for the errors of package server that an operator
// can fix, given the data directory the command was run on.
func explain(err error, dataDir string) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, server.ErrAlreadyInitialized):
		return cmdline.Errorf("%w", err).Hint("init never replaces recipients or the log key; use a new -data directory for a new deployment, and \"testimony-server recipients show -data %s\" to see this one", dataDir)
	case errors.Is(err, server.ErrNotInitialized):
		return cmdline.Errorf("%w", err).Hint("create the deployment first: testimony-server init -data %s -recipients FILE", dataDir)
	case errors.Is(err, server.ErrLocked):
		return cmdline.Errorf("%w", err).Hint("another process has %s open; if it is testimony-server serve, check that %s exists", server.DBPath(dataDir), server.AdminSocketPath(dataDir))
	case errors.Is(err, recipients.ErrPrivateKey):
		return cmdline.Errorf("%w", err).Hint("give the server the public keys only: \"testimony-review keygen\" prints them (age1…); the key file stays on the reviewer's machine")
	case errors.Is(err, recipients.ErrMixedTypes):
		return cmdline.Errorf("%w", err).Hint("a deployment uses one recipient type: all hybrid (age1pq1…, the default) or all X25519 (age1…)")
	case errors.Is(err, server.ErrTokenNotFound):
		return cmdline.Errorf("%w", err).Hint("list the tokens with: testimony-server token list -data %s", dataDir)
	case errors.Is(err, server.ErrTokenNameTaken):
		return cmdline.Errorf("%w", err).Hint("choose another -name; the names of revoked tokens stay taken, so a name always means one token")
	case errors.Is(err, server.ErrWitnessNotFound):
		return cmdline.Errorf("%w", err).Hint("list the witnesses with: testimony-server witness list -data %s", dataDir)
	case errors.Is(err, server.ErrWitnessNameTaken):
		return cmdline.Errorf("%w", err).Hint("a witness key is registered once, under one name; \"testimony-server witness list -data %s\" shows them", dataDir)
	case errors.Is(err, server.ErrInvalidWitnessKey):
		return cmdline.Errorf("%w", err).Hint("on the reviewer's machine, \"testimony-review log witness-key\" prints the key, e.g. testimony-witness+5c0ffee1+BHk…")
	case errors.Is(err, server.ErrBadOrgKey):
		return cmdline.Errorf("%w", err).Hint("give the line \"testimony-review org init\" printed, e.g. -org-key 'testimony-org+1a2b3c4d+AbC…'")
	case errors.Is(err, server.ErrBadOrigin):
		return cmdline.Errorf("%w", err).Hint("use a short name without spaces or '+', e.g. -origin example.org/testimony")
	case errors.Is(err, server.ErrRecipientsVersion):
		return cmdline.Errorf("%w", err).Hint("sign the recipients again with a higher version: testimony-review recipients sign -org FILE -version N RECIPIENTS; \"testimony-server recipients show -data %s\" shows the current one", dataDir)
	case errors.Is(err, server.ErrRecipientsType):
		return cmdline.Errorf("%w", err).Hint("a deployment keeps its recipient type for ever; for another type, set up a new deployment")
	case errors.Is(err, server.ErrRecipientsSignature):
		return cmdline.Errorf("%w", err).Hint("sign the note with the organisation key given to init -org-key (testimony-review recipients sign -org FILE …); a note signed by any other key is refused")
	case errors.Is(err, server.ErrRecipientsNote):
		return cmdline.Errorf("%w", err).Hint("give the file that \"testimony-review recipients sign\" printed, unchanged")
	}
	return err
}

// parseFlags parses the flags, which come before the arguments, and
// returns the arguments. -h prints usage to stdout.
func (c *cli) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	err := cmdline.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.stdout, usage)
		return nil, errHelpShown
	}
	if err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// required fails unless every named flag has a value.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return cmdline.Errorf("missing -%s", n).Usage(fs.Name())
		}
	}
	return nil
}

func noArgs(fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return cmdline.Errorf("unexpected argument %q", args[0]).Usage(fs.Name())
	}
	return nil
}

// dataFlag parses the flags of a command whose one flag is the required
// -data DIR, and returns DIR and the arguments; unless args is true, an
// argument is refused.
func (c *cli) dataFlag(name, usage string, argv []string, args bool) (string, []string, error) {
	fs := cmdline.NewFlagSet(name)
	data := fs.String("data", "", "")
	rest, err := c.parseFlags(fs, usage, argv)
	if err != nil {
		return "", nil, err
	}
	if !args {
		if err := noArgs(fs, rest); err != nil {
			return "", nil, err
		}
	}
	if err := required(fs, "data"); err != nil {
		return "", nil, err
	}
	return *data, rest, nil
}
