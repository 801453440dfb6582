package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// TestUnreachableServerIsNotSilent is the regression test for the 78 s of
// blank screen while the server could not be reached: every retry prints
// one line that says what failed and when the next try comes, also when
// stderr is not a terminal.
func TestUnreachableServerIsNotSilent(t *testing.T) {
	// A port nobody listens on: connections are refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "interview.txt"), []byte("testimony"))
	var out, errb bytes.Buffer
	home := filepath.Join(dir, "home")
	c := &cli{
		stdout: &out, stderr: &errb, now: time.Now,
		getenv: func(k string) string {
			return map[string]string{"TESTIMONY_HOME": home, "TESTIMONY_TOKEN": "tm1_" + strings.Repeat("a", 32)}[k]
		},
		retry: retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3},
		sleep: func(context.Context, time.Duration) error { return nil },
	}
	c.retry.Waiting = c.retryWait
	if code := c.main(context.Background(), []string{"submit", "-server", "https://" + addr, "-pin", strings.Repeat("ab", 32), file}); code == 0 {
		t.Fatal("submit to a closed port succeeded")
	}
	lines := regexp.MustCompile(`(?m)^testimony: attempt (\d) failed \(.*connection refused\); next try in \S+, at \d\d:\d\d:\d\d$`).FindAllStringSubmatch(errb.String(), -1)
	if len(lines) != 2 || lines[0][1] != "1" || lines[1][1] != "2" {
		t.Fatalf("want a line for each of the 2 waits, got:\n%s", errb.String())
	}
}

// TestUploadWaitLine: the line before each upload wait says what failed,
// how much the server holds, and when the next try comes; a wait of 0 says
// the upload continues.
func TestUploadWaitLine(t *testing.T) {
	var errb bytes.Buffer
	at := time.Date(2026, 11, 27, 14, 3, 0, 0, time.Local)
	c := &cli{stderr: &errb, now: func() time.Time { return at }}
	cut := errors.New("failed to upload chunk 3: connection reset by peer")
	c.uploadWait(cut, 90*time.Second, 3<<20+1<<19, 10<<20)
	c.uploadWait(cut, 0, 4<<20, 10<<20)
	want := "testimony: failed to upload chunk 3: connection reset by peer; 3.5 MiB of 10.0 MiB sent; next try in 1m30s, at 14:04:30\n" +
		"testimony: connection lost (failed to upload chunk 3: connection reset by peer); 4.0 MiB of 10.0 MiB sent, continuing\n"
	if errb.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", errb.String(), want)
	}
}

func TestLinkFlags(t *testing.T) {
	for _, tt := range []struct {
		giveUp, stall string
		ok            bool
	}{
		{"24h", "60s", true},
		{"0", "1s", true},
		{"-1h", "60s", false},
		{"1h", "0", false},
		{"1h", "500ms", false},
		{"soon", "60s", false},
	} {
		var lf linkFlags
		fs := newTestFlagSet()
		lf.register(fs)
		err := fs.Parse([]string{"-give-up-after", tt.giveUp, "-stall-timeout", tt.stall})
		if (err == nil) != tt.ok {
			t.Errorf("-give-up-after %s -stall-timeout %s: %v, want ok=%v", tt.giveUp, tt.stall, err, tt.ok)
		}
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
