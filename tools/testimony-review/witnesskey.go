package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	wkey "github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

// witnessKeyFile is the witness key's file in the state directory.
const witnessKeyFile = "witness.key"

// maxWitnessKeyFile caps how much of the witness key file is read.
const maxWitnessKeyFile = 4 << 10

const witnessVkeyPrefix = "# verifier key: "

// logWitnessKey prints this machine's witness verifier key, making the key
// on first use.
func (u *ui) logWitnessKey(args []string) error {
	flags := cmdline.NewFlagSet("log witness-key")
	protect := flags.Bool("passphrase", false, "encrypt a new witness key with a passphrase")
	name := flags.String("name", wkey.DefaultName, "key `NAME` of a new witness key")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 0 {
		return usageErrorf("log witness-key", "unexpected argument %q", flags.Arg(0))
	}
	st, err := openStore("log witness-key")
	if err != nil {
		return err
	}
	path := st.Path(witnessKeyFile)
	data, err := readWitnessKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return u.makeWitnessKey(path, *name, *protect)
	}
	if err != nil {
		return err
	}
	vkey, err := witnessVkeyLine(path, data)
	if err != nil {
		return err
	}
	fmt.Fprintln(u.stdout, vkey)
	return nil
}

// makeWitnessKey writes a new witness key to path (mode 0600, in the 0700
// state directory) and prints its verifier key.
func (u *ui) makeWitnessKey(path, name string, protect bool) error {
	skey, err := wkey.NewKey(name)
	if err != nil {
		return cmdline.Errorf("log witness-key: %v", err).Hint("the name is printable text without spaces or '+', e.g. -name ngo-reviewer-1")
	}
	k, err := wkey.ParseKey(skey)
	if err != nil {
		return cmdline.Errorf("log witness-key: %v", err)
	}
	contents := []byte(fmt.Sprintf("# testimony witness key, created %s\n%s%s\n%s\n",
		time.Now().UTC().Format(time.DateOnly), witnessVkeyPrefix, k.VerifierKey(), skey))
	if protect {
		pass, err := u.passphrase("passphrase for the new witness key", true)
		if err != nil {
			return passphraseError("log witness-key", err)
		}
		if pass == "" {
			return cmdline.Errorf("log witness-key: the passphrase is empty").Hint("choose a passphrase, or leave out -passphrase and keep the state directory on an encrypted disk")
		}
		u.notef("encrypting %s with the passphrase (scrypt, a few seconds)…", path)
		if contents, err = keyfile.Protect(contents, pass); err != nil {
			return cmdline.Errorf("log witness-key: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return cmdline.Errorf("log witness-key: %v", err)
	}
	if err := keyfile.Create(path, contents); err != nil {
		return cmdline.Errorf("log witness-key: %v", err)
	}
	if protect {
		// The verifier key is public: keep it readable without the
		// passphrase, next to the protected key.
		if err := keyfile.Create(path+".pub", []byte(k.VerifierKey()+"\n")); err != nil {
			return cmdline.Errorf("log witness-key: %v", err)
		}
	}
	u.notef("made a new witness key in %s; register it on the server: testimony-server witness add -data DIR NAME %s", path, k.VerifierKey())
	fmt.Fprintln(u.stdout, k.VerifierKey())
	return nil
}

func readWitnessKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, cmdline.Errorf("failed to read the witness key: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWitnessKeyFile+1))
	if err != nil {
		return nil, cmdline.Errorf("failed to read the witness key %s: %v", path, err)
	}
	if len(data) > maxWitnessKeyFile {
		return nil, cmdline.Errorf("%s is not a witness key: too large", path).Hint("restore the file from a backup")
	}
	return data, nil
}

// witnessVkeyLine returns the verifier key recorded with the key, reading
// it from path.pub for a passphrase-protected key.
func witnessVkeyLine(path string, data []byte) (string, error) {
	if keyfile.IsProtected(data) {
		pub, err := readWitnessKeyFile(path + ".pub")
		if err != nil {
			return "", cmdline.Errorf("the witness key %s is protected and its verifier key file %s.pub cannot be read", path, path)
		}
		data = []byte(witnessVkeyPrefix + string(bytes.TrimSpace(pub)) + "\n")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), witnessVkeyPrefix); ok {
			if _, err := wkey.NewVerifier(v); err != nil {
				break
			}
			return v, nil
		}
	}
	return "", cmdline.Errorf("%s has no valid verifier key line", path).Hint("restore the file from a backup")
}

// loadWitnessKey reads the witness key for signing, asking for its
// passphrase if it has one, and checks it against its recorded verifier
// key (the one the operator registered).
func (u *ui) loadWitnessKey(cmd, path string) (*wkey.Key, error) {
	data, err := readWitnessKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cmdline.Errorf("%s: this machine has no witness key (%s)", cmd, path).Hint("%s", "make it and register it on the server first: "+prog+" log witness-key, then testimony-server witness add -data DIR NAME VKEY")
	}
	if err != nil {
		return nil, err
	}
	vkey, err := witnessVkeyLine(path, data)
	if err != nil {
		return nil, err
	}
	data, err = u.unprotect(cmd, "the witness key "+path, path, data)
	var ce *cmdline.Error
	switch {
	case errors.As(err, &ce):
		return nil, err
	case errors.Is(err, keyfile.ErrIncorrectPassphrase), errors.Is(err, keyfile.ErrEmptyPassphrase):
		return nil, cmdline.Errorf("%s: incorrect passphrase for the witness key %s", cmd, path).Hint("%s", "type the passphrase chosen at \""+prog+" log witness-key -passphrase\"; nothing was signed")
	case err != nil:
		return nil, cmdline.Errorf("%s: %s is not a witness key: %v", cmd, path, err).Hint("restore the file from a backup")
	}
	var k *wkey.Key
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k != nil {
			return nil, cmdline.Errorf("%s: %s holds more than one key", cmd, path).Hint("restore the file from a backup")
		}
		if k, err = wkey.ParseKey(line); err != nil {
			return nil, cmdline.Errorf("%s: %s is not a witness key", cmd, path).Hint("restore the file from a backup")
		}
	}
	if k == nil || k.VerifierKey() != vkey {
		return nil, cmdline.Errorf("%s: the key in %s does not match its verifier key %s", cmd, path, vkey).Hint("restore the file from a backup")
	}
	return k, nil
}
