package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

func (u *ui) keygen(args []string) error {
	fs := cmdline.NewFlagSet("keygen")
	out := fs.String("o", "", "identity `FILE` to create")
	x25519 := fs.Bool("x25519", false, "make an X25519 identity instead of a hybrid post-quantum one")
	protect := fs.Bool("passphrase", false, "encrypt the identity file with a passphrase")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("keygen", "unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return cmdline.Errorf("keygen: missing -o FILE: the identity is written to a file, never to the terminal").
			Hint("%s keygen -passphrase -o NAME.key >> recipients.txt", prog)
	}

	// Checked early so nobody types a passphrase twice only to be refused;
	// keyfile.Create still refuses atomically.
	if _, err := os.Lstat(*out); err == nil {
		return existsError(*out)
	}

	contents, recipient, err := keyfile.New(*x25519, time.Now())
	if err != nil {
		return cmdline.Errorf("keygen: %v", err)
	}
	if *protect {
		pass, err := u.passphrase("passphrase for the new identity", true)
		if err != nil {
			return passphraseError("keygen", err)
		}
		if pass == "" {
			return cmdline.Errorf("keygen: the passphrase is empty").
				Hint("choose a passphrase, or leave out -passphrase and keep the file on an encrypted disk")
		}
		u.notef("encrypting %s with the passphrase (scrypt, a few seconds)…", *out)
		if contents, err = keyfile.Protect(contents, pass); err != nil {
			return cmdline.Errorf("keygen: %v", err)
		}
	}
	if err := keyfile.Create(*out, contents); err != nil {
		if errors.Is(err, keyfile.ErrExists) {
			return existsError(*out)
		}
		return cmdline.Errorf("keygen: %v", err)
	}
	if _, err := fmt.Fprintln(u.stdout, recipient); err != nil {
		return cmdline.Errorf("keygen: failed to print the recipient: %v", err).
			Hint("the identity was written to %s; its recipient is on the \"# public key\" line inside it", *out)
	}
	return nil
}

func existsError(path string) error {
	return cmdline.Errorf("keygen: %s already exists", path).
		Hint("choose another file name; the existing file may be the only key to earlier testimony, so it is never overwritten")
}
