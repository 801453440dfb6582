package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// TestWaiveText refuses -by and -reason that would garble the record or
// the terminal, before looking at the state.
func TestWaiveText(t *testing.T) {
	t.Setenv(state.EnvHome, filepath.Join(t.TempDir(), "home"))
	for _, tc := range []struct{ by, reason, want string }{
		{"Lee", "x\x1b[2J", "waive: -reason holds control characters or invalid UTF-8"},
		{"Lee\n", "x", ""}, // trimmed: only the id is unknown
		{"Le\xffe", "x", "waive: -by holds control characters or invalid UTF-8"},
		{"Lee", strings.Repeat("x", maxWaiverText+1), "waive: -reason is longer than 1000 bytes"},
		{"  ", "x", "waive: missing -by"},
	} {
		var stderr bytes.Buffer
		code := run([]string{"waive", "-by", tc.by, "-reason", tc.reason, "0123456789abcdef0123456789abcdef"}, nil, &bytes.Buffer{}, &stderr)
		want := tc.want
		if want == "" {
			want = "waive: no submission 0123456789abcdef0123456789abcdef failed to open on this machine"
		}
		if code != 1 || !strings.Contains(stderr.String(), want) {
			t.Errorf("-by %q -reason %q: exit %d\n%s", tc.by, tc.reason, code, stderr.String())
		}
	}
}
