package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

func (u *ui) keygen(args []string) error {
	fs := newFlagSet("keygen")
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
		return errorf(prog+" keygen -passphrase -o NAME.key >> recipients.txt",
			"keygen: missing -o FILE: the identity is written to a file, never to the terminal")
	}

	// Checked early so nobody types a passphrase twice only to be refused;
	// keyfile.Create still refuses atomically.
	if _, err := os.Lstat(*out); err == nil {
		return existsError(*out)
	}

	contents, recipient, err := keyfile.New(*x25519, time.Now())
	if err != nil {
		return errorf("", "keygen: %v", err)
	}
	if *protect {
		pass, err := u.passphrase("passphrase for the new identity", true)
		if err != nil {
			return passphraseError("keygen", err)
		}
		if pass == "" {
			return errorf("choose a passphrase, or leave out -passphrase and keep the file on an encrypted disk",
				"keygen: the passphrase is empty")
		}
		u.notef("encrypting %s with the passphrase (scrypt, a few seconds)…", *out)
		if contents, err = keyfile.Protect(contents, pass); err != nil {
			return errorf("", "keygen: %v", err)
		}
	}
	if err := keyfile.Create(*out, contents); err != nil {
		if errors.Is(err, keyfile.ErrExists) {
			return existsError(*out)
		}
		return errorf("", "keygen: %v", err)
	}
	if _, err := fmt.Fprintln(u.stdout, recipient); err != nil {
		return errorf(fmt.Sprintf("the identity was written to %s; its recipient is on the \"# public key\" line inside it", *out),
			"keygen: failed to print the recipient: %v", err)
	}
	return nil
}

func existsError(path string) error {
	return errorf("choose another file name; the existing file may be the only key to earlier testimony, so it is never overwritten",
		"keygen: %s already exists", path)
}
