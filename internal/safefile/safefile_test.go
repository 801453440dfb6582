package safefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "pin.json")
	for _, content := range []string{"first", "second, longer content"} {
		if err := Write(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("directory holds %v, want only pin.json", des)
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "x")
	if err := Write(name, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory in the way makes the rename fail after the temporary
	// file was written.
	if err := Write(dir, []byte("new"), 0o600); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	got, _ := os.ReadFile(name)
	if string(got) != "old" {
		t.Errorf("content %q after a failed write, want the old content", got)
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if IsTemp(de.Name()) {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".pin.json-123.tmp": true,
		"pin.json":          false,
		"x.tmp":             false,
		".hidden":           false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
}
