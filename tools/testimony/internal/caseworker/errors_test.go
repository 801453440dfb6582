package caseworker

import (
	"errors"
	"testing"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

// TestMessage: the app shows an error with its hints, one per line, and
// the pointer to the usage text the CLI adds to a usage error.
func TestMessage(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{errors.New("failed to open: denied"), "failed to open: denied"},
		{cmdline.Errorf("no access token").Hint("set TESTIMONY_TOKEN").Hint("or ask the operator"), "no access token\nset TESTIMONY_TOKEN\nor ask the operator"},
		{cmdline.Errorf("missing -server URL").Usage(""), "missing -server URL\nrun \"testimony -h\" for its usage"},
		{cmdline.Errorf("outbox entry %s: %w", "x", cmdline.Errorf("refused").Hint("run resume")), "outbox entry x: refused\nrun resume"},
	} {
		if got := Message(tt.err); got != tt.want {
			t.Errorf("Message(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
