package main

import (
	"errors"
	"io/fs"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

// identityHint says what -i needs. It never suggests keygen: a new identity
// decrypts nothing sent before it existed, and a reviewer who follows such
// a hint after a typo is left with a useless key and the same error.
const identityHint = "-i takes the identity file made by \"" + prog + " keygen -o FILE\" on this machine (or by age-keygen), e.g. -i alice.key; repeat -i for each identity"

// readIdentities reads the identities of one -i file, asking for its
// passphrase if it is protected.
func (u *ui) readIdentities(name string) ([]age.Identity, error) {
	data, err := keyfile.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cmdline.Errorf("open: identity file %s does not exist", name).Hint("%s; check the path for a typo", identityHint)
	}
	if err != nil {
		return nil, cmdline.Errorf("open: %s: %v", name, err).Hint("%s", identityHint)
	}
	var passErr error
	ids, err := keyfile.Parse(data, func() (string, error) {
		p, err := u.passphrase("passphrase for "+name, false)
		if err != nil {
			passErr = err
			return "", err
		}
		u.notef("unlocking %s (scrypt, a few seconds)…", name)
		return p, nil
	})
	switch {
	case passErr != nil:
		return nil, passphraseError("open: "+name, passErr)
	case errors.Is(err, keyfile.ErrIncorrectPassphrase):
		return nil, cmdline.Errorf("open: incorrect passphrase for %s", name).Hint("type the passphrase chosen at keygen -passphrase; when piping it, put it on the first line of standard input")
	case errors.Is(err, keyfile.ErrEmptyPassphrase):
		return nil, cmdline.Errorf("open: the passphrase for %s is empty", name).Hint("type the passphrase chosen at keygen -passphrase")
	case errors.Is(err, keyfile.ErrNotPassphraseProtected):
		return nil, cmdline.Errorf("open: %s: %v", name, err).Hint("decrypt it first with age -d, or pass the plain identity file")
	case err != nil:
		return nil, cmdline.Errorf("open: %s: %v", name, err).Hint("%s, not a recipients file (age1… lines)", identityHint)
	}
	return ids, nil
}
