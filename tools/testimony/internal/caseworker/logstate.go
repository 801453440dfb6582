package caseworker

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/collect"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/logclient"
)

// logStatePath is the one record per server of the newest checkpoint of
// its log this device verified, by "receipts verify" or "collect".
func (h *home) logStatePath(hp string) string { return filepath.Join(h.dir, "logs", hp) }

// logState returns the client of the server's log and its saved
// checkpoint, made from the files of older versions on first use.
// replaceOtherKey treats a checkpoint saved for another log key as none
// (collect -since 0, starting again after a replaced log key).
//
// The old files were checkpoints/<host_port> ("receipts verify") and the
// last checkpoint in collect/<host_port>.json ("collect"); the first is
// removed once migrated, the second stays, as it also records where
// bundles ended and which ids were collected.
func (c *Client) logState(ctx context.Context, h *home, u *url.URL, logKey string, cl *api.Client, again string, replaceOtherKey bool) (*intakelog.Client, *logclient.File, error) {
	hp := api.HostPort(u)
	f := &logclient.File{Path: h.logStatePath(hp), LogKey: logKey, ReplaceOtherKey: replaceOtherKey}
	ops := &logclient.Ops{API: cl, Retry: c.Retry, Sleep: c.Sleep}
	lc, err := intakelog.NewClient(logKey, ops, f)
	if err != nil {
		return nil, nil, err
	}
	old := h.checkpointPath(hp)
	legacy := []logclient.Legacy{{Name: old, Remove: true}}
	if data, err := readSmall(old, intakelog.MaxCheckpointSize); err == nil {
		legacy[0].Note = data
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, cmdline.Errorf("failed to read %s: %v", old, err)
	}
	statePath := h.collectStatePath(hp)
	// A damaged collector state is reported by collect, which reads it
	// anyway; it holds nothing to migrate.
	if raw, err := collect.LastCheckpoint(statePath); err == nil && raw != nil {
		legacy = append(legacy, logclient.Legacy{Name: statePath, Note: raw})
	}
	err = logclient.Migrate(ctx, f, ops, legacy)
	switch {
	case errors.Is(err, intakelog.ErrStored):
		return nil, nil, cmdline.Errorf("%v", err).
			Hint("if the log key was replaced on purpose, delete that file and run the command again")
	case intakelog.IsLogError(err):
		return nil, nil, cmdline.Errorf("%v", err).Hint(serverSuspect)
	case err != nil:
		return nil, nil, explain(err, u, again)
	}
	return lc, f, nil
}

// storedError explains a saved checkpoint that does not verify.
func storedError(f *logclient.File, err error) error {
	if !errors.Is(err, intakelog.ErrStored) {
		return cmdline.Errorf("failed to read the last verified checkpoint: %v", err)
	}
	return cmdline.Errorf("the last verified checkpoint in %s does not verify with the log key: %s", f.Path,
		strings.TrimPrefix(err.Error(), intakelog.ErrStored.Error()+": ")).
		Hint("if the log key was replaced on purpose, delete that file and run the command again")
}
