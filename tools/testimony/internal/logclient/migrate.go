package logclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
)

// Legacy is a checkpoint an older version saved for the log in another
// file.
type Legacy struct {
	// Name is the file, for messages.
	Name string
	// Note is the signed checkpoint, nil if the file has none.
	Note []byte
	// Remove deletes the file once its checkpoint is in the new record
	// (false for a file that holds more than the checkpoint).
	Remove bool
}

// Migrate creates f from the legacy checkpoints if f does not exist yet.
// It keeps the largest, after checking through ops that it extends each
// smaller one; two of the same size with different roots are refused
// with an error wrapping intakelog.ErrFork, and nothing is changed.
// A legacy checkpoint that does not verify with f.LogKey is refused
// (wrapping intakelog.ErrStored), unless f.ReplaceOtherKey is set.
func Migrate(ctx context.Context, f *File, ops intakelog.Ops, legacy []Legacy) error {
	if _, err := os.Stat(f.Path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	type found struct {
		Legacy
		cp intakelog.Checkpoint
	}
	var list []found
	for _, l := range legacy {
		if l.Note == nil {
			continue
		}
		cp, err := intakelog.OpenCheckpoint(l.Note, f.LogKey)
		if err != nil {
			if f.ReplaceOtherKey {
				continue
			}
			return fmt.Errorf("the checkpoint in %s: %w: %w", l.Name, intakelog.ErrStored, err)
		}
		list = append(list, found{l, cp})
	}
	if len(list) == 0 {
		return removeLegacy(legacy)
	}
	slices.SortStableFunc(list, func(a, b found) int { return cmp.Compare(a.cp.Size, b.cp.Size) })
	mem := intakelog.NewMemStore(nil)
	c, err := intakelog.NewClient(f.LogKey, ops, mem)
	if err != nil {
		return err
	}
	for i, l := range list {
		if err := c.Accept(ctx, l.cp, l.Note); err != nil {
			if intakelog.IsLogError(err) {
				return fmt.Errorf("the checkpoints in %s (size %d) and %s (size %d) disagree: %w",
					list[i-1].Name, list[i-1].cp.Size, l.Name, l.cp.Size, err)
			}
			return err
		}
	}
	newest, _ := mem.Latest()
	if err := f.Swap(nil, newest); err != nil {
		return err
	}
	return removeLegacy(legacy)
}

func removeLegacy(legacy []Legacy) error {
	for _, l := range legacy {
		if !l.Remove {
			continue
		}
		if err := os.Remove(l.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to remove %s, now kept in one file per log: %w", l.Name, err)
		}
	}
	return nil
}
