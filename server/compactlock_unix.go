//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// holdShared takes a shared flock on the database file for the whole of a
// compaction, the lock bbolt's read-only open also takes. A server that
// starts meanwhile wants bbolt's exclusive lock and fails with "in use"
// instead of opening the old file that compaction is about to replace and
// overwrite. It fails with ErrServerRunning if a server holds the file.
func holdShared(path string) (func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked; stop the server first", ErrServerRunning, path)
		}
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
