package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const childEnv = "TESTENV_SKIP_CHILD"

// TestSkipOrFail runs a test that calls SkipOrFail in a child process, once
// without CI and once with it: the first skips, the second fails.
func TestSkipOrFail(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		SkipOrFail(t, "no %s here", "tool")
		t.Fatal("SkipOrFail returned")
	}
	for _, tt := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestSkipOrFail"},
		{"1", true, "--- FAIL: TestSkipOrFail"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipOrFail$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail {
			t.Errorf("CI=%q: child failed = %v, want %v\n%s", tt.ci, failed, tt.wantFail, out)
		}
		if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "no tool here") {
			t.Errorf("CI=%q: child output lacks %q and the reason:\n%s", tt.ci, tt.want, out)
		}
	}
}
