package main

import (
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

const statusUsage = `Usage:
    testimony status

Lists the submissions waiting in the outbox (encrypted, not yet
acknowledged by the server) and the receipts of completed submissions.
It does not contact any server. An entry encrypted to a list of
reviewers' keys your organisation has since replaced is marked
"superseded": resume does not upload it (see "testimony resume -help").

Example:
    $ testimony status
`

func (c *cli) status(args []string) error {
	fs := cmdline.NewFlagSet("status")
	if err := c.parseFlags(fs, statusUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("status takes no arguments").Usage("")
	}
	st, err := c.client().Status()
	if err != nil {
		return err
	}
	l, receipts, broken := st.Outbox, st.Receipts, st.BrokenReceipts

	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	n := len(l.Entries) + len(l.Partial) + len(l.Broken)
	if n == 0 {
		fmt.Fprintln(w, "outbox: empty")
	} else {
		fmt.Fprintf(w, "outbox: %d\n", n)
		fmt.Fprintln(w, "  NAME\tSIZE\tSTATE\tSERVER")
		for _, e := range l.Entries {
			state := "encrypted, not uploaded"
			if e.Meta.UploadID != "" {
				state = "upload " + e.Meta.UploadID + " started"
			}
			if cur, ok := st.Superseded[e.Name]; ok {
				state = fmt.Sprintf("superseded: encrypted to reviewers' keys version %d, now %d; submit the files again", e.Meta.RecipientsVersion, cur)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", e.Name, formatSize(e.Meta.Size), state, e.Meta.Server)
		}
		for _, name := range l.Partial {
			fmt.Fprintf(w, "  %s\t-\t%s\t-\n", name, "encryption interrupted; resume discards it")
		}
		for _, name := range slices.Sorted(maps.Keys(l.Broken)) {
			fmt.Fprintf(w, "  %s\t-\tunreadable: %v\t-\n", name, l.Broken[name])
		}
	}
	if len(receipts)+len(broken) == 0 {
		fmt.Fprintln(w, "receipts: none")
	} else {
		fmt.Fprintf(w, "receipts: %d\n", len(receipts)+len(broken))
		fmt.Fprintln(w, "  ID\tSIZE\tRECEIVED\tLOG ENTRY")
		for _, r := range receipts {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%d\n", r.ID, formatSize(r.Size), r.Received, r.Index)
		}
		for _, name := range slices.Sorted(maps.Keys(broken)) {
			fmt.Fprintf(w, "  %s\t-\tunreadable: %v\t-\n", name, broken[name])
		}
	}
	return w.Flush()
}
