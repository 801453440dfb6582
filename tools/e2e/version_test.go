package e2e

import (
	"os/exec"
	"testing"

	"github.com/testimony-ngo/testimony/internal/version"
)

// TestVersion: each of the four binaries, built as a user builds it,
// answers "version" with its own name and the version embedded from
// internal/version/VERSION, on standard output, with exit status 0.
func TestVersion(t *testing.T) {
	for _, name := range []string{"testimony", "testimony-review", "testimony-server", "testimony-dev"} {
		cmd := exec.Command(bin(name), "version")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s version: %v", name, err)
			continue
		}
		if want := version.String(name) + "\n"; string(out) != want {
			t.Errorf("%s version printed %q, want %q", name, out, want)
		}
	}
}
