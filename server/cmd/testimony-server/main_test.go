package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/internal/version"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"testimony-server": main})
}

// TestScript runs testdata/*.txt. Each script's work directory holds:
//
//	recipients.txt  a hybrid recipient, with comments
//	x25519.txt      an X25519 recipient
//	mixed.txt       one of each
//	identity.txt    a private key (to be refused)
//	keygen.txt      age-keygen style output: public key in a comment, then the private key
//	note-v1.txt     recipients.txt's recipient, signed by the organisation key as version 1
//	note-v2.txt     a second hybrid recipient, version 2
//	note-x25519.txt x25519.txt's recipient, version 3
//	note-forged.txt a hybrid recipient, version 9, signed by a key named like the organisation's
//
// and $ORGKEY is the organisation's verifier key, $VERSION the version
// embedded from internal/version.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Setup: setupKeys,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": waitFile,
		},
	})
}

func setupKeys(env *testscript.Env) error {
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		return err
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	wskey, err := witness.NewKey("testimony-witness")
	if err != nil {
		return err
	}
	wk, err := witness.ParseKey(wskey)
	if err != nil {
		return err
	}
	files := map[string]string{
		"witness.txt":    wk.VerifierKey() + "\n",
		"recipients.txt": "# reviewers of the test deployment\n" + hybrid.Recipient().String() + "\n",
		"x25519.txt":     x.Recipient().String() + "\n",
		"mixed.txt":      hybrid.Recipient().String() + "\n" + x.Recipient().String() + "\n",
		"identity.txt":   hybrid.String() + "\n",
		"keygen.txt":     "# created: 2026-11-27T10:00:00Z\n# public key: " + hybrid.Recipient().String() + "\n" + hybrid.String() + "\n",
	}
	orgSigner, orgVerifier, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		return err
	}
	forger, _, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		return err
	}
	hybrid2, err := age.GenerateHybridIdentity()
	if err != nil {
		return err
	}
	for _, n := range []struct {
		file, recipient, signer string
		version                 uint64
	}{
		{"note-v1.txt", hybrid.Recipient().String(), orgSigner, 1},
		{"note-v2.txt", hybrid2.Recipient().String(), orgSigner, 2},
		{"note-x25519.txt", x.Recipient().String(), orgSigner, 3},
		{"note-forged.txt", hybrid2.Recipient().String(), forger, 9},
	} {
		set, err := recipients.Parse(strings.NewReader(n.recipient + "\n"))
		if err != nil {
			return err
		}
		msg, err := recipients.SignNote(set, n.version, n.signer)
		if err != nil {
			return err
		}
		files[n.file] = string(msg)
	}
	env.Setenv("ORGKEY", orgVerifier)
	env.Setenv("VERSION", version.Version)
	env.Setenv("WITNESS_KEY", strings.TrimSpace(files["witness.txt"]))
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(env.WorkDir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// waitfile PATH waits up to 30 s for PATH to exist (a server's socket).
func waitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	path := ts.MkAbs(args[0])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear", path)
}
