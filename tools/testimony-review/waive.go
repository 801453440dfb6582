package main

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// maxWaiverText bounds -by and -reason: a name and a sentence or two, kept
// on the reviewer's machine for as long as the state directory.
const maxWaiverText = 1000

// waive records that a submission that failed to open will not be opened,
// by whom, when and why, so that open stops listing it and failing. The
// record stays in failed.json; opening the submission later still works
// and removes it.
func (u *ui) waive(args []string) error {
	fs := cmdline.NewFlagSet("waive")
	by := fs.String("by", "", "the reviewer's `NAME`")
	reason := fs.String("reason", "", "why it will not be opened (`TEXT`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + ` waive -by "Lee Min-ho" -reason "damaged before upload; the caseworker sent it again as 5c1f…" ID`
	switch {
	case fs.NArg() == 0:
		return cmdline.Errorf("waive: missing the submission ID").Hint("%s", example)
	case fs.NArg() > 1:
		return cmdline.Errorf("waive: too many arguments: %q", fs.Args()).Hint("flags go before ID: %s", example)
	}
	for _, f := range []struct{ name, value string }{{"-by", *by}, {"-reason", *reason}} {
		switch v := strings.TrimSpace(f.value); {
		case v == "":
			return cmdline.Errorf("waive: missing %s: a waiver records who decided and why", f.name).Hint("%s", example)
		case len(v) > maxWaiverText:
			return cmdline.Errorf("waive: %s is longer than %d bytes", f.name, maxWaiverText)
		case !printable(v):
			return cmdline.Errorf("waive: %s holds control characters or invalid UTF-8", f.name)
		}
	}
	id := fs.Arg(0)
	st, err := openStore("waive")
	if err != nil {
		return err
	}
	list, err := st.Failed()
	if err != nil {
		return stateError("waive", err)
	}
	i := -1
	for j, f := range list {
		if f.ID == id {
			i = j
		}
	}
	switch {
	case i < 0:
		return cmdline.Errorf("waive: no submission %s failed to open on this machine (%s)", id, st.Path(state.FailedFile)).
			Hint("open lists the submissions that failed to open, and only those can be waived")
	case list[i].Waiver != nil:
		w := list[i].Waiver
		return cmdline.Errorf("waive: submission %s was already waived by %s on %s: %s", id, w.By, w.At, w.Reason)
	}
	list[i].Waiver = &state.Waiver{
		By:     strings.TrimSpace(*by),
		Reason: strings.TrimSpace(*reason),
		At:     time.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
		Tool:   version.String(prog),
	}
	if err := st.SaveFailed(list); err != nil {
		return cmdline.Errorf("waive: %v", err)
	}
	fmt.Fprint(u.stdout, waiverText(list[i]))
	return nil
}

// waiverText is the record of a waiver for people, in the manner of
// custody.txt: what the submission was, why it did not open, and who
// decided not to open it.
func waiverText(f state.Failed) string {
	var b strings.Builder
	fmt.Fprintf(&b, "WAIVER RECORD\ntestimony submission %s\n\n", f.ID)
	b.WriteString("The submission is in the server's intake log and its ciphertext matched\n")
	b.WriteString("its log leaf, but it failed to open on this machine. It was not opened,\n")
	b.WriteString("and the reviewer below decided that it will not be.\n\n")
	logKey := f.LogKey
	if logKey == "" {
		logKey = "(not recorded)"
	}
	for _, kv := range [][2]string{
		{"Log key", logKey},
		{"Leaf index", fmt.Sprint(f.Index)},
		{"Leaf hash", f.LeafHash},
		{"Ciphertext SHA-256", f.SHA256},
		{"Ciphertext size", fmt.Sprintf("%d bytes", f.Size)},
		{"Bundle ended at", fmt.Sprintf("log size %d", f.BundleSize)},
		{"Failed to open", f.Failed},
		{"Failure", f.Reason},
		{"Waived by", f.Waiver.By},
		{"Waived at", f.Waiver.At},
		{"Reason", f.Waiver.Reason},
		{"Recorded by", f.Waiver.Tool},
	} {
		fmt.Fprintf(&b, "%-22s %s\n", kv[0], kv[1])
	}
	b.WriteString("\nThe same record is kept in failed.json in the state directory.\n")
	return b.String()
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
