package caseworker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/collect"
)

// CollectOptions are what "testimony collect" is given.
type CollectOptions struct {
	Conn Conn
	// LogKey is -log-key: pinned in trust.json if none is yet.
	LogKey string
	// Dir is the bundle directory (-o).
	Dir string
	// Since is the log size to start at; -1 is where the last bundle
	// collected on this device ended.
	Since int64
}

// Collect writes into o.Dir everything the server's log received since
// the last bundle (or o.Since), verified, and tells the server what was
// collected. The summary's numbers are what the CLI prints.
func (c *Client) Collect(ctx context.Context, o CollectOptions) (*collect.Summary, error) {
	cf, tf := o.Conn, TrustKeys{LogKey: o.LogKey}
	sess, err := c.connect(cf, tf)
	if err != nil {
		return nil, err
	}
	u, h, cl := sess.u, sess.h, sess.cl
	// A collector has no recipients to accept; a replaced log key is
	// pinned with "testimony init -replace -log-key", never accepted from
	// the server.
	keys, err := c.fetchKeys(ctx, sess, keyOptions{logOnly: true})
	if err != nil {
		return nil, err
	}
	hp := api.HostPort(u)
	statePath := h.collectStatePath(hp)
	state, err := collect.LoadState(statePath, keys.logKey)
	if err != nil {
		if o.Since != 0 {
			return nil, cmdline.Errorf("%v", err).
				Hint(`if the log key was replaced on purpose, run "testimony collect -since 0" to start again from the beginning of the log`)
		}
		state = &collect.State{Version: collect.StateVersion, LogKey: keys.logKey, Checkpoints: []string{}}
	}
	lastRaw, last, err := state.Last()
	if err != nil {
		return nil, cmdline.Errorf("%v", err).Hint(`the collector state %s may be damaged; run "testimony collect -since 0" to start again`, statePath)
	}
	from, fromRaw := last, lastRaw
	switch {
	case o.Since == 0:
		from, fromRaw = 0, nil
	case o.Since > 0 && o.Since != last:
		fromRaw = state.Find(o.Since)
		if fromRaw == nil {
			known := "none"
			if sizes := state.Sizes(); len(sizes) > 0 {
				known = strings.Join(sizes, ", ")
			}
			return nil, cmdline.Errorf("no bundle collected on this device ended at log size %d, so there is no signed checkpoint to start from", o.Since).Usage("").
				Hint("-since takes 0 (everything) or a size at which an earlier bundle ended: %s", known)
		}
		from = o.Since
	}
	// -since 0 after a replaced log key starts again: the checkpoint saved
	// for the old key is replaced, as the collector state is.
	_, logFile, err := c.logState(ctx, h, u, keys.logKey, cl, `run "testimony collect" again`, o.Since == 0)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, cmdline.Errorf("failed to create bundle directory: %v", err)
	}
	col := &collect.Collector{
		Server:         cl,
		Dir:            o.Dir,
		LogKey:         keys.logKey,
		From:           from,
		FromCheckpoint: fromRaw,
		Store:          logFile,
		Seen:           state,
		Progress:       func(id string, done, total int64) { c.progress(id[:8], done, total) },
		Now:            c.Now,
		Retry:          c.Retry,
		Sleep:          c.Sleep,
	}
	sum, err := col.Run(ctx)
	switch {
	case errors.Is(err, intakelog.ErrStored):
		return nil, cmdline.Errorf("the last verified checkpoint in %s does not verify with the log key: %s", logFile.Path,
			strings.TrimPrefix(errors.Unwrap(err).Error(), intakelog.ErrStored.Error()+": ")).
			Hint(`if the log key was replaced on purpose, run "testimony collect -since 0" to start again from the beginning of the log`)
	case errors.Is(err, collect.ErrLog), errors.Is(err, collect.ErrMismatch):
		return nil, cmdline.Errorf("%v", err).Hint("no bundle was written; " + serverSuspect)
	case errors.Is(err, collect.ErrOtherKey):
		return nil, cmdline.Errorf("%v", err).Hint("collect into a new directory")
	case errors.Is(err, collect.ErrNotBundleDir):
		return nil, cmdline.Errorf("%v", err).Hint("nothing was written; -o takes an empty or new directory (or one holding an earlier bundle of this log), e.g. -o %s", filepath.Join(o.Dir, "bundle-"+c.Now().UTC().Format("2006-01-02")))
	case err != nil:
		return nil, explain(err, u, `run "testimony collect" again; what was downloaded is kept`)
	}
	if err := c.connected(sess); err != nil {
		return nil, err
	}
	state.Record(sum.Checkpoint)
	if err := state.Save(statePath); err != nil {
		return nil, cmdline.Errorf("the bundle was written, but the collector state was not: %v", err).
			Hint("the next collect would start at log size %d again; pass -since %d once the state directory is writable", from, sum.Size)
	}
	if r := sum.Replaced; r != nil {
		c.notef("replaced the bundle.json in %s, which covered log entries %d to %d", o.Dir, r.From, r.To-1)
		c.hintf(`if the reviewer has not opened that bundle yet, run "testimony collect -since %d" so that the new bundle covers those entries too`, r.From)
	}
	return sum, nil
}
