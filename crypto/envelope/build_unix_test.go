//go:build unix

package envelope

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

func TestBuildRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		testenv.SkipOrFail(t, "mkfifo: %v", err)
	}
	// Opening a FIFO would block until a writer appears, so Build must
	// refuse it before opening.
	if _, err := Build(&bytes.Buffer{}, Meta{}, []string{fifo}, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Build(FIFO) = %v", err)
	}
	if _, err := Build(&bytes.Buffer{}, Meta{}, []string{"/dev/null"}, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Build(/dev/null) = %v", err)
	}
	// A symbolic link to a regular file is followed, as a shell user expects.
	target := writeFile(t, dir, "target.txt", []byte("x"))
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	m, err := Build(&bytes.Buffer{}, Meta{}, []string{link}, nil)
	if err != nil || m.Files[0].Name != "link.txt" || m.Files[0].Size != 1 {
		t.Errorf("Build(symlink) = %+v, %v", m, err)
	}
}
