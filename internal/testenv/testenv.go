// Package testenv holds what tests share about the machine they run on.
// Only tests import it.
//
// A test that needs a tool or a kernel feature the machine may lack skips
// on a developer's machine, but fails in CI (the environment variable CI
// set, as .ci/run does): a check that silently did not run is a check CI
// did not make.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI: the environment variable CI is
// set to anything but the empty string.
func InCI() bool { return os.Getenv("CI") != "" }

// SkipOrFail skips t with the reason given by format and args, or fails it
// in CI.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI is set, so this fails instead of skipping)", msg)
	}
	t.Skip(msg)
}

// GoTool returns the path of the go command, skipping t (failing it in CI)
// when there is none. go test puts its own GOROOT/bin first on PATH, so in
// practice only a test binary run by hand can lack it.
func GoTool(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("go")
	if err != nil {
		SkipOrFail(t, "the go command is not on PATH: %v", err)
	}
	return path
}
