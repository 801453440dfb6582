//go:build unix

package filelock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock waits for an exclusive lock on the file name. The operating system
// drops it when the process dies, so a killed command leaves no stale lock.
func Lock(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to lock %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
