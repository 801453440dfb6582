package logclient

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/internal/filelock"
)

// File is an intakelog.Store in one file (logs/<host_port> in the state
// directory) holding the signed checkpoint note as the server sent it, a
// C2SP tlog-checkpoint, which is versioned by its own format. Swap holds
// an exclusive lock on Path+".lock" from reading to writing, so two
// commands run at once cannot both replace the checkpoint they read; the
// write itself is atomic.
type File struct {
	Path string
	// LogKey is the pinned log key; File uses it only for ReplaceOtherKey.
	LogKey string
	// ReplaceOtherKey treats a checkpoint that does not verify with LogKey
	// as none, so that the next Swap replaces it: for starting again after
	// the log key was replaced on purpose. Otherwise such a checkpoint is
	// returned as it is, and the client refuses it (intakelog.ErrStored).
	ReplaceOtherKey bool
}

// Latest returns the saved checkpoint, or nil if there is none.
func (f *File) Latest() ([]byte, error) {
	fh, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the saved checkpoint: %w", err)
	}
	defer fh.Close()
	msg, err := bounded.ReadAll(fh, intakelog.MaxCheckpointSize)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("the saved checkpoint %s is larger than %d bytes", f.Path, intakelog.MaxCheckpointSize)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the saved checkpoint: %w", err)
	}
	if f.ReplaceOtherKey {
		if _, err := intakelog.OpenCheckpoint(msg, f.LogKey); err != nil {
			return nil, nil
		}
	}
	return msg, nil
}

// Swap saves new if the file still holds old (nil for none).
func (f *File) Swap(old, new []byte) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("failed to save checkpoint: %w", err)
	}
	unlock, err := filelock.Lock(f.Path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := f.Latest()
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return fmt.Errorf("failed to save checkpoint to %s: %w", f.Path, intakelog.ErrWriteConflict)
	}
	return safefile.Write(f.Path, new, 0o600)
}
