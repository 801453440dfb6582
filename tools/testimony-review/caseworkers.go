package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// maxCaseworkerName bounds a caseworker's name, which appears in the table
// and in custody records.
const maxCaseworkerName = 64

func (u *ui) caseworkers(args []string) error {
	if isHelp(args) {
		return flag.ErrHelp
	}
	const hint = "the caseworkers subcommands are add, remove and list; run \"" + prog + " help\""
	if len(args) == 0 {
		return cmdline.Errorf("caseworkers: missing subcommand").Hint("%s", hint)
	}
	switch args[0] {
	case "add":
		return u.caseworkersAdd(args[1:])
	case "remove":
		return u.caseworkersRemove(args[1:])
	case "list":
		return u.caseworkersList(args[1:])
	}
	return cmdline.Errorf("caseworkers: unknown subcommand %q", args[0]).Hint("%s", hint)
}

func (u *ui) caseworkersAdd(args []string) error {
	fs := cmdline.NewFlagSet("caseworkers add")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + " caseworkers add \"Kim Ji-won\" tdk1…"
	if fs.NArg() != 2 {
		return cmdline.Errorf("caseworkers add: want NAME and KEY, got %d arguments", fs.NArg()).
			Hint("the caseworker's device key is what \"testimony init\" printed on their laptop: %s", example)
	}
	name, keyStr := fs.Arg(0), fs.Arg(1)
	if err := checkCaseworkerName(name); err != nil {
		return cmdline.Errorf("caseworkers add: %v", err).Hint("use a short name without control characters, e.g. %s", example)
	}
	pub, err := envelope.ParseDeviceKey(keyStr)
	if err != nil {
		return cmdline.Errorf("caseworkers add: %q is not a caseworker device key", keyStr).
			Hint("the key is the tdk1… line \"testimony init\" printed on the caseworker's device; copy it exactly")
	}
	key := envelope.DeviceKeyString(pub)
	st, err := openStore("caseworkers add")
	if err != nil {
		return err
	}
	list, err := st.Caseworkers()
	if err != nil {
		return stateError("caseworkers add", err)
	}
	for _, c := range list {
		switch {
		case c.Key == key:
			return cmdline.Errorf("caseworkers add: this key is already registered as %q", c.Name).Hint("each device key belongs to one caseworker")
		case c.Name == name:
			return cmdline.Errorf("caseworkers add: a caseworker named %q is already registered, with another key", name).Hint("choose a distinct name, e.g. add a team or a number")
		}
	}
	list = append(list, state.Caseworker{Name: name, Key: key, Added: time.Now().UTC().Format(time.DateOnly)})
	if err := st.SaveCaseworkers(list); err != nil {
		return cmdline.Errorf("caseworkers add: %v", err)
	}
	fmt.Fprintf(u.stdout, "added %s, key fingerprint %s\n", displayText(name), envelope.Fingerprint(pub))
	return nil
}

// caseworkersRemove stops trusting a caseworker's device key, for example
// when the laptop was lost or seized: what it signs from then on is shown as
// signed by an unknown key.
func (u *ui) caseworkersRemove(args []string) error {
	fs := cmdline.NewFlagSet("caseworkers remove")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cmdline.Errorf("caseworkers remove: want NAME, got %d arguments", fs.NArg()).
			Hint("name the caseworker as \"%s caseworkers list\" shows it: %s caseworkers remove \"Kim Ji-won\"", prog, prog)
	}
	name := fs.Arg(0)
	st, err := openStore("caseworkers remove")
	if err != nil {
		return err
	}
	list, err := st.Caseworkers()
	if err != nil {
		return stateError("caseworkers remove", err)
	}
	kept := list[:0]
	var removed *state.Caseworker
	for _, c := range list {
		if c.Name == name {
			removed = &c
			continue
		}
		kept = append(kept, c)
	}
	if removed == nil {
		return cmdline.Errorf("caseworkers remove: no caseworker named %q is registered", name).Hint("\"%s caseworkers list\" shows the registered names", prog)
	}
	if err := st.SaveCaseworkers(kept); err != nil {
		return cmdline.Errorf("caseworkers remove: %v", err)
	}
	fp := "?"
	if pub, err := envelope.ParseDeviceKey(removed.Key); err == nil {
		fp = envelope.Fingerprint(pub)
	}
	fmt.Fprintf(u.stdout, "removed %s, key fingerprint %s: submissions it signs now show as signed by an unknown key\n", displayText(name), fp)
	return nil
}

func checkCaseworkerName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("the name is not valid UTF-8")
	case utf8.RuneCountInString(name) > maxCaseworkerName:
		return fmt.Errorf("the name is longer than %d characters", maxCaseworkerName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("the name starts or ends with a space")
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return fmt.Errorf("the name has control or invisible characters")
	}
	return nil
}

func (u *ui) caseworkersList(args []string) error {
	fs := cmdline.NewFlagSet("caseworkers list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("caseworkers list", "unexpected argument %q", fs.Arg(0))
	}
	st, err := openStore("caseworkers list")
	if err != nil {
		return err
	}
	list, err := st.Caseworkers()
	if err != nil {
		return stateError("caseworkers list", err)
	}
	if len(list) == 0 {
		u.hintf("no caseworkers are registered; add one with: %s caseworkers add NAME tdk1…", prog)
		return nil
	}
	tw := tabwriter.NewWriter(u.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFINGERPRINT\tADDED\tKEY")
	for _, c := range list {
		fp := "?"
		if pub, err := envelope.ParseDeviceKey(c.Key); err == nil {
			fp = envelope.Fingerprint(pub)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", displayText(c.Name), fp, c.Added, c.Key)
	}
	if err := tw.Flush(); err != nil {
		return cmdline.Errorf("caseworkers list: failed to print: %v", err)
	}
	return nil
}

// caseworkerNames maps known device keys to names, for open.
func caseworkerNames(list []state.Caseworker) map[string]string {
	m := make(map[string]string, len(list))
	for _, c := range list {
		m[c.Key] = c.Name
	}
	return m
}
