//go:build unix

package pin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUpdateFloorsLocked: while fn runs (between reading and writing the
// floors), the floors lock is held, so another command's update waits
// instead of saving over this one. flock conflicts between two opens of
// the file also within one process, so the test can check it directly.
func TestUpdateFloorsLocked(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "pins")}
	name := filepath.Join(dir, "recipients-versions.json")
	err := s.UpdateFloors(name, func(*Floors) (bool, error) {
		f, err := os.OpenFile(name+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
			t.Errorf("the floors lock is free while the floors are updated (flock: %v)", err)
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
