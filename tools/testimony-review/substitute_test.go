package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// TestOpenSubstitutedValidCiphertext puts in a bundle, in place of a logged
// ciphertext, another one of the same size that decrypts with the
// reviewer's own key. open hashes each ciphertext in the pass that decrypts
// it, so by the time the substitution shows, earlier submissions (or this
// one) are already extracted: the bundle must still be refused with the
// error Verify gives when it hashes first, with nothing left in OUTDIR (not
// even a work directory) and the machine's records unchanged.
func TestOpenSubstitutedValidCiphertext(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	t.Setenv(state.EnvHome, home)
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
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	encrypt := func(to age.Recipient, body string) []byte {
		t.Helper()
		ct, err := fixture.Encrypt([]age.Recipient{to}, fixture.Tar(fixture.Entry{Name: "interview.txt", Body: body}), false)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	_, logKey := fixture.LogKey()
	open := func(out, bundleDir string) (string, error) {
		var stdout, stderr bytes.Buffer
		u := &ui{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, now: time.Now}
		err := u.open([]string{"-i", keyPath, "-o", out, "-log-key", logKey, bundleDir})
		return stdout.String(), err
	}

	// A first bundle leaves records behind: a checkpoint, an opened
	// submission and one that failed to open (encrypted to a stranger).
	l := fixture.NewLog()
	id := func(n int) string { return fmt.Sprintf("%032x", n) }
	l.Append(id(1), encrypt(r, "first testimony"))
	l.Append(id(2), encrypt(stranger.Recipient(), "not for this reviewer"))
	first := filepath.Join(dir, "first")
	if err := l.WriteBundle(first, 0, 2, fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := open(out, first); err == nil {
		t.Fatal("the first bundle opened without the failure of its second submission")
	}
	for n := 3; n <= 5; n++ {
		l.Append(id(n), encrypt(r, fmt.Sprintf("testimony number %d", n)))
	}

	for _, tc := range []struct {
		name   string
		sub    int // the submission whose ciphertext is substituted
		newOut bool
	}{
		{"first of the bundle", 3, false},
		{"last of the bundle", 5, false},
		{"last of the bundle, new OUTDIR", 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := filepath.Join(t.TempDir(), "bundle")
			if err := l.WriteBundle(b, 2, 5, fixture.BundleOptions{}); err != nil {
				t.Fatal(err)
			}
			// Same length as the logged plaintext: only the hash tells.
			p := filepath.Join(b, bundle.CiphertextName(id(tc.sub)))
			substitute := encrypt(r, fmt.Sprintf("forged testimony %d", tc.sub))
			if logged, err := os.ReadFile(p); err != nil || len(logged) != len(substitute) {
				t.Fatalf("logged ciphertext: %d bytes, %v; substitute: %d bytes", len(logged), err, len(substitute))
			}
			if err := os.WriteFile(p, substitute, 0o644); err != nil {
				t.Fatal(err)
			}

			w, err := loadWitness("open", logKey)
			if err != nil {
				t.Fatal(err)
			}
			// What Verify says when it hashes every ciphertext first, as
			// open did before hashing while it decrypts.
			_, want := review.Verify(b, w.reviewWitness())
			if !errors.Is(want, review.ErrAltered) {
				t.Fatalf("Verify: %v, want ErrAltered", want)
			}

			o := out
			if tc.newOut {
				o = filepath.Join(t.TempDir(), "out")
			}
			outBefore, homeBefore := snapshot(t, o), snapshot(t, home)
			stdout, err := open(o, b)
			if err == nil || err.Error() != want.Error() {
				t.Fatalf("open: %v\nwant: %v", err, want)
			}
			if stdout != "" {
				t.Errorf("open printed a table: %q", stdout)
			}
			if got := snapshot(t, o); !slices.Equal(got, outBefore) {
				t.Errorf("OUTDIR holds %q, it held %q", got, outBefore)
			}
			if got := snapshot(t, home); !slices.Equal(got, homeBefore) {
				t.Errorf("the records changed:\n%q\nwere\n%q", got, homeBefore)
			}
		})
	}
}

// snapshot lists every path under dir, hidden ones too, with the hash of
// each file's contents; nil if dir does not exist.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s sha256 %x", rel, sha256.Sum256(data)))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}
