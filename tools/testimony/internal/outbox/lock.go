package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked means another testimony process is using the outbox.
var ErrLocked = errors.New("the outbox is in use by another testimony process")

const lockName = ".lock"

// Lock takes an exclusive advisory lock on the outbox, so that a resume never
// discards the half-written file of a submit that is still running, and two
// processes never upload the same entry. The operating system drops the lock
// when the process dies, so a killed client leaves no stale lock.
func (o Outbox) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create outbox: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(o.Dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open outbox lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
