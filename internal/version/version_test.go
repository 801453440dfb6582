package version

import (
	"regexp"
	"runtime"
	"testing"
)

// TestVersionFile: VERSION holds one release number, as the package doc
// says, so that a bump cannot slip a space, a "v" or a second line into
// every binary's version and every custody record.
func TestVersionFile(t *testing.T) {
	if !regexp.MustCompile(`\A(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-dev)?\n\z`).MatchString(file) {
		t.Errorf("VERSION is %q, want one line like 0.9.0 or 0.10.0-dev", file)
	}
}

func TestString(t *testing.T) {
	want := "testimony-review " + Version + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got := String("testimony-review"); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
