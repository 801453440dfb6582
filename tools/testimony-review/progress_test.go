package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// TestOpenProgress opens a real bundle as on a terminal (with a clock that
// advances 300 ms per reading) and checks the progress line: bytes and rate
// while decrypting, erased before the table. The ciphertext is read once,
// hashed as it is decrypted, so there is no verifying phase. Without a
// terminal nothing is drawn (also pinned by testdata/open.txt).
func TestOpenProgress(t *testing.T) {
	dir := t.TempDir()
	contents, recipient, err := keyfile.New(true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "key.txt")
	if err := keyfile.Create(keyPath, contents); err != nil {
		t.Fatal(err)
	}
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 3<<20)
	rand.Read(body)
	ct, err := fixture.Encrypt([]age.Recipient{r}, fixture.Tar(fixture.Entry{Name: "interview.m4a", Body: string(body)}), false)
	if err != nil {
		t.Fatal(err)
	}
	l := fixture.NewLog()
	l.Append(fmt.Sprintf("%032x", 0xab), ct)
	bundleDir := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundleDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteBundle(bundleDir, 0, 1, fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	_, logKey := fixture.LogKey()

	for _, terminal := range []bool{true, false} {
		t.Run(fmt.Sprint("terminal=", terminal), func(t *testing.T) {
			t.Setenv(state.EnvHome, filepath.Join(t.TempDir(), "home"))
			var stdout, stderr bytes.Buffer
			clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			u := &ui{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, terminal: terminal,
				now: func() time.Time { clock = clock.Add(300 * time.Millisecond); return clock }}
			out := filepath.Join(t.TempDir(), "out")
			if err := u.open([]string{"-i", keyPath, "-o", out, "-log-key", logKey, bundleDir}); err != nil {
				t.Fatalf("open: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "opened") {
				t.Fatalf("table:\n%s", stdout.String())
			}
			got := stderr.String()
			if !terminal {
				if got != "" {
					t.Fatalf("progress drawn without a terminal: %q", got)
				}
				return
			}
			size := regexp.QuoteMeta(humanSize(int64(len(ct))))
			// The last drawing: the whole file, and a rate.
			re := regexp.MustCompile(`\rdecrypting 00000000  ` + size + ` / ` + size + `  [0-9.]+ [KMG]?i?B/s\x1b\[K`)
			if !re.MatchString(got) {
				t.Errorf("no complete decrypting line with a rate in %q", got)
			}
			if strings.Contains(got, "verifying") {
				t.Errorf("the ciphertext was read before decrypting: %q", got)
			}
			if !strings.HasSuffix(got, "\r\x1b[K") {
				t.Errorf("progress line not erased at the end: %q", got)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("progress wrote whole lines: %q", got)
			}
		})
	}
}
