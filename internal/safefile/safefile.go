// Package safefile writes small files so that a crash or kill -9 at any
// moment leaves either the old or the new content, never a torn file.
package safefile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces name with data: it writes a temporary file in the same
// directory, syncs it, renames it over name and syncs the directory.
func Write(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	done = true
	return SyncDir(dir)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether a directory entry name is a leftover temporary
// file of Write, which listings must ignore.
func IsTemp(name string) bool {
	return len(name) > 0 && name[0] == '.' && filepath.Ext(name) == ".tmp"
}
