package server

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/store"
)

func TestInit(t *testing.T) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	file := "# reviewers: Kim Reviewer (Seoul office)\n\n" + id.Recipient().String() + "\n"
	res, err := Init(dir, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if res.RecipientType != recipients.TypeHybrid || len(res.Recipients) != 1 || len(res.ReceiptKey) != 44 {
		t.Fatalf("result %+v", res)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v, %v", fi.Mode().Perm(), err)
	}
	db := mustRead(t, DBPath(dir))
	// Comments may name reviewers; only the keys are kept.
	if bytes.Contains(db, []byte("Kim Reviewer")) {
		t.Error("the database holds a comment from the recipients file")
	}
	noSecretKeys(t, dir)

	// A file with a private key is refused before the database is even
	// opened, so not a byte of it changes.
	other, _ := age.GenerateX25519Identity()
	if _, err := Init(dir, strings.NewReader(other.String()+"\n")); !errors.Is(err, recipients.ErrPrivateKey) {
		t.Fatalf("init with a private key over an existing deployment: %v", err)
	}
	if !bytes.Equal(mustRead(t, DBPath(dir)), db) {
		t.Error("a refused init changed the database")
	}
	noSecretKeys(t, dir)

	// A second init with valid recipients opens the database (which bumps
	// bbolt's transaction counter) but changes none of the deployment.
	before := deploymentMeta(t, dir)
	if _, err := Init(dir, strings.NewReader(other.Recipient().String())); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
	if after := deploymentMeta(t, dir); after != before {
		t.Errorf("a refused init changed the deployment:\n%s\n%s", before, after)
	}
}

func deploymentMeta(t *testing.T, dir string) string {
	t.Helper()
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, k := range []string{metaRecipients, metaRecipientType, metaReceiptSeed, metaCreated} {
		v, err := db.GetMeta(k)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(k + "=" + string(v) + "\n")
	}
	return b.String()
}

func TestInitRefusesPrivateKey(t *testing.T) {
	id, _ := age.GenerateHybridIdentity()
	x, _ := age.GenerateX25519Identity()
	for name, file := range map[string]string{
		"hybrid identity":            id.String() + "\n",
		"identity after a recipient": id.Recipient().String() + "\n" + id.String() + "\n",
		"X25519 identity":            "# created: today\n" + x.String() + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := Init(dir, strings.NewReader(file))
			if !errors.Is(err, recipients.ErrPrivateKey) {
				t.Fatalf("Init: %v", err)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
				t.Error("the error repeats the private key")
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Init created %s: %v", dir, err)
			}
		})
	}
}

func TestInitTightensExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateHybridIdentity()
	if _, err := Init(dir, strings.NewReader(id.Recipient().String())); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestInitResumesHalfDoneInit simulates an init that died after storing the
// receipt key seed: the next init finishes and keeps that seed.
func TestInitResumesHalfDoneInit(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 32)
	if err := db.PutMeta(metaReceiptSeed, seed); err != nil {
		t.Fatal(err)
	}
	db.Close()
	id, _ := age.GenerateHybridIdentity()
	if _, err := Init(dir, strings.NewReader(id.Recipient().String())); err != nil {
		t.Fatal(err)
	}
	db, err = openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, _ := db.GetMeta(metaReceiptSeed); !bytes.Equal(got, seed) {
		t.Error("init replaced an existing receipt key seed")
	}
}

// noSecretKeys fails if any file under dir contains an age private key.
func noSecretKeys(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if bytes.Contains(bytes.ToUpper(mustRead(t, path)), []byte("AGE-SECRET-KEY")) {
			t.Errorf("%s contains AGE-SECRET-KEY", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
