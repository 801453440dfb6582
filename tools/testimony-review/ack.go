package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	wkey "github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// ack writes a signed acknowledgement of the submissions of BUNDLE that
// this machine opened: its witness key cosigns the newest checkpoint it
// verified (log.json) and signs the list of their log indexes. Only this
// machine's own records count (opened.json, the very leaf by index and
// leaf hash); bundle.json only narrows them to that bundle. A submission
// that failed to open, waived or not, is never acknowledged.
func (u *ui) ack(args []string) error {
	flags := cmdline.NewFlagSet("ack")
	out := flags.String("o", "", "acknowledgement `FILE` to write")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	const example = prog + " ack -o /media/usb/reviewed.ack /media/usb/bundle-2026-11-27"
	switch {
	case flags.NArg() == 0:
		return cmdline.Errorf("ack: missing the BUNDLE directory").Hint("%s", example)
	case flags.NArg() > 1:
		return cmdline.Errorf("ack: too many arguments: %q", flags.Args()).Hint("%s", "flags go before BUNDLE: "+example)
	case *out == "":
		return cmdline.Errorf("ack: missing -o FILE").Hint("%s", example)
	}
	if _, err := os.Lstat(*out); err == nil {
		return cmdline.Errorf("ack: %s already exists", *out).Hint("choose another file name, or remove the old acknowledgement once the server has it")
	}
	w, err := loadWitness("ack", "")
	if err != nil {
		return err
	}
	if w.log.Checkpoint == "" {
		return cmdline.Errorf("ack: this machine has not verified the log yet").Hint("%s", "open a bundle first: "+prog+" open -i IDENTITY -o OUTDIR BUNDLE")
	}
	stored, err := intakelog.OpenCheckpoint([]byte(w.log.Checkpoint), w.key)
	if err != nil {
		return stateError("ack", fmt.Errorf("%w: %s: %v", state.ErrCorrupt, w.store.Path(state.LogFile), err))
	}
	dir := flags.Arg(0)
	b, err := bundle.Read(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return cmdline.Errorf("ack: %s holds no %s", dir, bundle.FileName).Hint("BUNDLE is the directory the collector wrote, holding bundle.json")
	}
	if err != nil {
		return cmdline.Errorf("ack: %v", err)
	}
	if b.LogKey != w.key {
		return cmdline.Errorf("ack: the bundle is of the log with key %s, not of the pinned log", b.LogKey)
	}
	indexes, skipped := w.openedFrom(b, stored.Size)
	if len(indexes) == 0 {
		return cmdline.Errorf("ack: no submission of %s is recorded as opened on this machine", dir).Hint("%s", "open the bundle first: "+prog+" open -i IDENTITY -o OUTDIR "+dir)
	}
	k, err := u.loadWitnessKey("ack", w.store.Path(witnessKeyFile))
	if err != nil {
		return err
	}
	data, err := wkey.Sign(k, []byte(w.log.Checkpoint), w.key, indexes, time.Now())
	if err != nil {
		return cmdline.Errorf("ack: %v", err)
	}
	if err := safefile.Write(*out, data, 0o644); err != nil {
		return cmdline.Errorf("ack: %v", err)
	}
	u.notef("acknowledged %d submission(s) opened from %s, at log size %d, as witness %s", len(indexes), dir, stored.Size, k.Name())
	if skipped > 0 {
		u.notef("%d submission(s) of the bundle are not acknowledged: they were not opened on this machine (failed, waived or not yet opened), and stay on the server", skipped)
	}
	u.notef("the collector sends it: testimony ack -server URL %s", *out)
	return nil
}

// openedFrom returns the log indexes of the bundle's leaves that this
// machine opened, per its own record of the very leaf (index and leaf
// hash), below size; and how many leaves of the bundle it left out.
func (w *witness) openedFrom(b *bundle.Bundle, size int64) (indexes []int64, skipped int) {
	for _, l := range b.Leaves {
		rec, ok := w.opened.Entries[l.ID]
		leaf := intakelog.Leaf{ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date}
		if ok && rec.Index == l.Index && rec.LeafHash != "" && rec.LeafHash == review.LeafHash(leaf) && l.Index < size {
			indexes = append(indexes, l.Index)
			continue
		}
		skipped++
	}
	return indexes, skipped
}
