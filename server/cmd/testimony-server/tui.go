package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/server"
)

// All of the command's own output rules are here: errors and hints go to
// stderr as "testimony-server: error: …" and "testimony-server: hint: …",
// data (tokens, lists) to stdout.

const progName = "testimony-server"

// errHelpShown ends a command after -h printed its usage.
var errHelpShown = errors.New("help shown")

// hintError attaches the command that fixes an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

func (c *cli) report(err error) {
	fmt.Fprintf(c.stderr, "%s: error: %v\n", progName, err)
	var he *hintError
	if errors.As(err, &he) && he.hint != "" {
		fmt.Fprintf(c.stderr, "%s: hint: %s\n", progName, he.hint)
	}
}

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
		return withHint(err, "init never replaces recipients or the log key; use a new -data directory for a new deployment, and \"testimony-server recipients show -data %s\" to see this one", dataDir)
	case errors.Is(err, server.ErrNotInitialized):
		return withHint(err, "create the deployment first: testimony-server init -data %s -recipients FILE", dataDir)
	case errors.Is(err, server.ErrLocked):
		return withHint(err, "another process has %s open; if it is testimony-server serve, check that %s exists", server.DBPath(dataDir), server.AdminSocketPath(dataDir))
	case errors.Is(err, recipients.ErrPrivateKey):
		return withHint(err, "give the server the public keys only: \"testimony-review keygen\" prints them (age1…); the key file stays on the reviewer's machine")
	case errors.Is(err, recipients.ErrMixedTypes):
		return withHint(err, "a deployment uses one recipient type: all hybrid (age1pq1…, the default) or all X25519 (age1…)")
	case errors.Is(err, server.ErrTokenNotFound):
		return withHint(err, "list the tokens with: testimony-server token list -data %s", dataDir)
	case errors.Is(err, server.ErrTokenNameTaken):
		return withHint(err, "choose another -name; the names of revoked tokens stay taken, so a name always means one token")
	case errors.Is(err, server.ErrWitnessNotFound):
		return withHint(err, "list the witnesses with: testimony-server witness list -data %s", dataDir)
	case errors.Is(err, server.ErrWitnessNameTaken):
		return withHint(err, "a witness key is registered once, under one name; \"testimony-server witness list -data %s\" shows them", dataDir)
	case errors.Is(err, server.ErrInvalidWitnessKey):
		return withHint(err, "on the reviewer's machine, \"testimony-review log witness-key\" prints the key, e.g. testimony-witness+5c0ffee1+BHk…")
	case errors.Is(err, server.ErrBadOrgKey):
		return withHint(err, "give the line \"testimony-review org init\" printed, e.g. -org-key 'testimony-org+1a2b3c4d+AbC…'")
	case errors.Is(err, server.ErrBadOrigin):
		return withHint(err, "use a short name without spaces or '+', e.g. -origin example.org/testimony")
	case errors.Is(err, server.ErrRecipientsVersion):
		return withHint(err, "sign the recipients again with a higher version: testimony-review recipients sign -org FILE -version N RECIPIENTS; \"testimony-server recipients show -data %s\" shows the current one", dataDir)
	case errors.Is(err, server.ErrRecipientsType):
		return withHint(err, "a deployment keeps its recipient type for ever; for another type, set up a new deployment")
	case errors.Is(err, server.ErrRecipientsSignature):
		return withHint(err, "sign the note with the organisation key given to init -org-key (testimony-review recipients sign -org FILE …); a note signed by any other key is refused")
	case errors.Is(err, server.ErrRecipientsNote):
		return withHint(err, "give the file that \"testimony-review recipients sign\" printed, unchanged")
	}
	return err
}

// newFlags returns a flag set that reports errors through the command's own
// error format instead of printing them itself.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args with flags allowed before and after positional
// arguments, which it returns. -h prints usage to stdout.
func (c *cli) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, usage)
				return nil, errHelpShown
			}
			return nil, withHint(err, "run \"testimony-server %s -h\" for its usage", fs.Name())
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// required fails unless every named flag has a value.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return withHint(fmt.Errorf("missing -%s", n), "run \"testimony-server %s -h\" for its usage", fs.Name())
		}
	}
	return nil
}

func noArgs(fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return withHint(fmt.Errorf("unexpected argument %q", args[0]), "run \"testimony-server %s -h\" for its usage", fs.Name())
	}
	return nil
}
