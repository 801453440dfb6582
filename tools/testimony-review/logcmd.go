package main

import (
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

func (u *ui) logCmd(args []string) error {
	if isHelp(args) {
		return flag.ErrHelp
	}
	const hint = "the log subcommands are trust, verify and witness-key; run \"" + prog + " help\""
	if len(args) == 0 {
		return cmdline.Errorf("log: missing subcommand").Hint("%s", hint)
	}
	switch args[0] {
	case "trust":
		return u.logTrust(args[1:])
	case "verify":
		return u.logVerify(args[1:])
	case "witness-key":
		return u.logWitnessKey(args[1:])
	}
	return cmdline.Errorf("log: unknown subcommand %q", args[0]).Hint("%s", hint)
}

// logTrust pins the intake log's verifier key. Replacing a pinned key
// forgets the stored checkpoint and the opened submissions, since they
// belong to the old log, but not the submissions that failed to open.
// Pinning a key where none is pinned (log.json lost, or never made) keeps
// opened.json only if it names this very key: a new log can put a new
// submission under an old id at its old index, and must not find it
// recorded as opened.
func (u *ui) logTrust(args []string) error {
	fs := cmdline.NewFlagSet("log trust")
	replace := fs.Bool("replace", false, "replace a pinned key with a different one (starts a new log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + " log trust testimony-log-0a1b2c3d+5055fc05+AWsok8…"
	switch {
	case fs.NArg() == 0:
		return cmdline.Errorf("log trust: missing the log KEY (printed by testimony-server init)").Hint("%s", example)
	case fs.NArg() > 1:
		return cmdline.Errorf("log trust: too many arguments: %q", fs.Args()).Hint("flags go before KEY: %s", example)
	}
	key := fs.Arg(0)
	if err := checkLogKey("log trust: KEY", key); err != nil {
		return err
	}
	st, err := openStore("log trust")
	if err != nil {
		return err
	}
	l, err := st.Log()
	if err != nil {
		return stateError("log trust", err)
	}
	switch {
	case l.LogKey == key:
		fmt.Fprintf(u.stdout, "log key already pinned: %s\n", key)
		return nil
	case l.LogKey != "" && !*replace:
		return cmdline.Errorf("log trust: a different log key is pinned in %s (%s)", st.Path(state.LogFile), l.LogKey).
			Hint("a new log key means a new log: check the key with the operator out of band, then run \"%s log trust -replace KEY\"", prog)
	}
	if l.LogKey != "" {
		// The old log's opened ids and indexes must not account for
		// leaves of the new one.
		if err := st.SaveOpened(&state.Opened{LogKey: key}); err != nil {
			return cmdline.Errorf("log trust: %v", err)
		}
		u.warnf("replaced the pinned log key %s; the verified checkpoint and the record of opened submissions were reset", l.LogKey)
		// Submissions that failed to open are testimony nobody has read:
		// a new log does not make them less so. They stay listed until
		// waived.
		if failed, err := st.Failed(); err == nil {
			n := 0
			for _, f := range failed {
				if f.Waiver == nil {
					n++
				}
			}
			if n > 0 {
				u.warnf("%d submission(s) of the old log that failed to open stay listed in %s until opened or waived", n, st.Path(state.FailedFile))
			}
		}
	}
	if l.LogKey == "" {
		o, err := st.Opened()
		if err != nil {
			return stateError("log trust", err)
		}
		if len(o.Entries) > 0 && o.LogKey != key {
			if err := st.SaveOpened(&state.Opened{LogKey: key}); err != nil {
				return cmdline.Errorf("log trust: %v", err)
			}
			of := "a log it did not name"
			if o.LogKey != "" {
				of = "another log (key " + o.LogKey + ")"
			}
			u.warnf("%s recorded %d submission(s) opened from %s; the record was reset, since they say nothing about the leaves of this log", st.Path(state.OpenedFile), len(o.Entries), of)
		}
	}
	if err := st.SaveLog(&state.Log{LogKey: key}); err != nil {
		return cmdline.Errorf("log trust: %v", err)
	}
	fmt.Fprintf(u.stdout, "log key pinned: %s\n", key)
	return nil
}

// logVerify checks a bundle against the pinned key and the stored
// checkpoint without decrypting and without changing any state.
func (u *ui) logVerify(args []string) error {
	fs := cmdline.NewFlagSet("log verify")
	keyFlag := fs.String("log-key", "", "log verifier `KEY` (if none is pinned yet)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + " log verify /media/usb/bundle"
	switch {
	case fs.NArg() == 0:
		return cmdline.Errorf("log verify: missing the BUNDLE directory").Hint("%s", example)
	case fs.NArg() > 1:
		return cmdline.Errorf("log verify: too many arguments: %q", fs.Args()).Hint("flags go before BUNDLE: %s", example)
	}
	w, err := loadWitness("log verify", *keyFlag)
	if err != nil {
		return err
	}
	u.warnStale(w)
	w.progress = u.startProgress("verifying")
	v, err := w.verify("log verify", fs.Arg(0))
	u.clearProgress()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(u.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "log\t%s\n", v.Checkpoint.Origin)
	switch {
	case v.Rerun:
		fmt.Fprintf(tw, "checkpoint\tsize %d, the one this machine already verified\n", v.Checkpoint.Size)
	case v.Stored == 0:
		fmt.Fprintf(tw, "checkpoint\tsize %d, from the start of the log\n", v.Checkpoint.Size)
	default:
		fmt.Fprintf(tw, "checkpoint\tsize %d, consistent with size %d verified on this machine\n", v.Checkpoint.Size, v.Stored)
	}
	// Entries are numbered from 0 and the range is inclusive, as collect
	// prints it.
	if v.Checkpoint.Size > v.From.Size {
		fmt.Fprintf(tw, "leaves\t%d to %d: %d in the bundle, %d opened earlier\n", v.From.Size, v.Checkpoint.Size-1, len(v.Submissions), v.Earlier)
	} else {
		fmt.Fprintf(tw, "leaves\tnone new\n")
	}
	fmt.Fprintf(tw, "ciphertexts\t%d, each matching its log leaf\n", len(v.Submissions))
	if err := tw.Flush(); err != nil {
		return cmdline.Errorf("log verify: failed to print the result: %v", err)
	}
	fmt.Fprintln(u.stdout, "bundle verified; nothing was decrypted and nothing on this machine was changed")
	return nil
}
