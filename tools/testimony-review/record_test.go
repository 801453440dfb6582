package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// TestRecordOrder makes the saving of log.json fail after a bundle opened:
// opened.json must not then list leaves beyond the stored checkpoint, since
// a fork of that checkpoint could put another submission at such a leaf,
// under the same id, and leave it out of its bundle.
func TestRecordOrder(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	t.Setenv(state.EnvHome, home)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	l := fixture.NewLog()
	ct, err := fixture.Encrypt([]age.Recipient{id.Recipient()}, fixture.Tar(fixture.Entry{Name: "a.txt", Body: "testimony"}), false)
	if err != nil {
		t.Fatal(err)
	}
	l.Append("00000000000000000000000000000001", ct)
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := l.WriteBundle(dir, 0, 1, fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}

	_, key := fixture.LogKey()
	w, err := loadWitness("open", key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := review.Verify(dir, w.reviewWitness())
	if err != nil {
		t.Fatal(err)
	}
	opt := review.Options{Identities: []age.Identity{id}, Limits: envelope.DefaultLimits, Now: time.Now(), Tool: "test"}
	results, err := review.Open(v, filepath.Join(t.TempDir(), "out"), opt)
	if err != nil || len(results) != 1 || results[0].Status != review.Opened {
		t.Fatalf("Open: %+v, %v", results, err)
	}
	// A directory where log.json goes: renaming the new file over it fails.
	if err := os.MkdirAll(filepath.Join(home, state.LogFile, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.record(v, results, opt.Now); err == nil {
		t.Fatal("record succeeded without saving log.json")
	}
	if _, err := os.Stat(filepath.Join(home, state.OpenedFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("opened.json was saved before the checkpoint that covers it (%v)", err)
	}
}
