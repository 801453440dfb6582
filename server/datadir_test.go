package server

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
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
	res, err := Init(dir, strings.NewReader(file), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecipientType != recipients.TypeHybrid || len(res.Recipients) != 1 || res.OrgKey != "" {
		t.Fatalf("result %+v", res)
	}
	v, err := note.NewVerifier(res.LogKey)
	if err != nil {
		t.Fatalf("log key %q: %v", res.LogKey, err)
	}
	if !regexp.MustCompile(`^testimony-log-[0-9a-f]{8}$`).MatchString(v.Name()) {
		t.Errorf("default log origin %q", v.Name())
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
	if _, err := Init(dir, strings.NewReader(other.String()+"\n"), InitOptions{}); !errors.Is(err, recipients.ErrPrivateKey) {
		t.Fatalf("init with a private key over an existing deployment: %v", err)
	}
	if !bytes.Equal(mustRead(t, DBPath(dir)), db) {
		t.Error("a refused init changed the database")
	}
	noSecretKeys(t, dir)

	// A second init with valid recipients opens the database (which bumps
	// bbolt's transaction counter) but changes none of the deployment.
	before := deploymentMeta(t, dir)
	if _, err := Init(dir, strings.NewReader(other.Recipient().String()), InitOptions{}); !errors.Is(err, ErrAlreadyInitialized) {
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
	for _, k := range []string{metaRecipients, metaRecipientType, metaLogSigner, metaLogVerifier, metaCreated} {
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
			_, err := Init(dir, strings.NewReader(file), InitOptions{})
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
	if _, err := Init(dir, strings.NewReader(id.Recipient().String()), InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestInitResumesHalfDoneInit simulates an init that died after storing a
// log key: the next init finishes with a new key that nobody has seen yet,
// and the deployment loads.
func TestInitResumesHalfDoneInit(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldSigner, _, err := intakelog.NewLogKey("testimony-log-half")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta(metaLogSigner, []byte(oldSigner)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	id, _ := age.GenerateHybridIdentity()
	res, err := Init(dir, strings.NewReader(id.Recipient().String()), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err = openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dep, err := loadDeployment(db)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := note.NewVerifier(res.LogKey); dep.logKey != res.LogKey || dep.logSigner.KeyHash() != v.KeyHash() {
		t.Error("the stored log key is not the one init printed")
	}
}

func TestInitOptions(t *testing.T) {
	id, _ := age.GenerateHybridIdentity()
	_, orgKey, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(dir, strings.NewReader(id.Recipient().String()), InitOptions{Origin: "example.org/testimony", OrgKey: orgKey})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := note.NewVerifier(res.LogKey); err != nil || v.Name() != "example.org/testimony" || res.OrgKey != orgKey {
		t.Fatalf("result %+v, %v", res, err)
	}
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := loadDeployment(db)
	db.Close()
	if err != nil || dep.orgKey != orgKey || dep.logSigner.Name() != "example.org/testimony" {
		t.Fatalf("deployment %+v, %v", dep, err)
	}

	// Bad options are refused before anything is created.
	for name, tt := range map[string]struct {
		opt  InitOptions
		want error
	}{
		"origin with a space": {InitOptions{Origin: "my log"}, ErrBadOrigin},
		"origin with a plus":  {InitOptions{Origin: "a+b"}, ErrBadOrigin},
		"org key not a key":   {InitOptions{OrgKey: "testimony-org"}, ErrBadOrgKey},
		"org signer key":      {InitOptions{OrgKey: "PRIVATE+KEY+testimony-org+00000000+AAAA"}, ErrBadOrgKey},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := Init(dir, strings.NewReader(id.Recipient().String()), tt.opt); !errors.Is(err, tt.want) {
				t.Fatalf("Init: %v, want %v", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Init created %s: %v", dir, err)
			}
		})
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
