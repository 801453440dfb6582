package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

// defaultOrgName is the key name of an organisation key made without -name;
// clients show it next to verification failures.
const defaultOrgName = "testimony-org"

// maxOrgKeyFile caps how much of an organisation key file is read.
const maxOrgKeyFile = 4 << 10

func (u *ui) org(args []string) error {
	if isHelp(args) {
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "init" {
		return cmdline.Errorf("org: the only subcommand is init").Hint("%s org init -passphrase -o org.key", prog)
	}
	fs := cmdline.NewFlagSet("org init")
	out := fs.String("o", "", "organisation key `FILE` to create")
	name := fs.String("name", defaultOrgName, "key `NAME`")
	protect := fs.Bool("passphrase", false, "encrypt the key file with a passphrase")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("org init", "unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return cmdline.Errorf("org init: missing -o FILE: the signing key is written to a file, never to the terminal").
			Hint("%s org init -passphrase -o org.key", prog)
	}
	// Checked early so nobody types a passphrase twice only to be refused;
	// keyfile.Create still refuses atomically.
	if _, err := os.Lstat(*out); err == nil {
		return orgExistsError(*out)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err == nil {
		// GenerateKey does not check the name; a key the note package
		// cannot load would be useless.
		_, err = note.NewSigner(skey)
	}
	if err != nil {
		return cmdline.Errorf("org init: invalid key name %q", *name).Hint("the name is printable text without spaces or '+', e.g. -name ngo-name-org")
	}
	contents := []byte(fmt.Sprintf("# testimony organisation signing key, created %s\n# verifier key: %s\n%s\n",
		time.Now().UTC().Format(time.DateOnly), vkey, skey))
	if *protect {
		pass, err := u.passphrase("passphrase for the new organisation key", true)
		if err != nil {
			return passphraseError("org init", err)
		}
		if pass == "" {
			return cmdline.Errorf("org init: the passphrase is empty").
				Hint("choose a passphrase, or leave out -passphrase and keep the file on an encrypted disk")
		}
		u.notef("encrypting %s with the passphrase (scrypt, a few seconds)…", *out)
		if contents, err = keyfile.Protect(contents, pass); err != nil {
			return cmdline.Errorf("org init: %v", err)
		}
	}
	if err := keyfile.Create(*out, contents); err != nil {
		if errors.Is(err, keyfile.ErrExists) {
			return orgExistsError(*out)
		}
		return cmdline.Errorf("org init: %v", err)
	}
	if _, err := fmt.Fprintln(u.stdout, vkey); err != nil {
		return cmdline.Errorf("org init: failed to print the verifier key: %v", err).
			Hint("the key was written to %s; its verifier key is on its \"# verifier key\" line", *out)
	}
	return nil
}

func orgExistsError(path string) error {
	return cmdline.Errorf("org init: %s already exists", path).
		Hint("choose another file name; an organisation key is never overwritten, clients pin it")
}

// readOrgKey reads the signer key from an organisation key file made by org
// init: comment lines and exactly one "PRIVATE+KEY+…" line, possibly
// encrypted with a passphrase, which it then asks for.
func (u *ui) readOrgKey(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", cmdline.Errorf("recipients sign: organisation key %s does not exist", path).
			Hint("-org takes the organisation key made by \"%s org init\"; check the path for a typo (a new key would be refused by every caseworker who pinned the old one)", prog)
	}
	if err != nil {
		return "", cmdline.Errorf("recipients sign: %v", err)
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, maxOrgKeyFile)
	const hint = "-org takes the file made by \"" + prog + " org init -o FILE\""
	if errors.Is(err, bounded.ErrTooLarge) {
		return "", cmdline.Errorf("recipients sign: %s is not an organisation key: too large", path).Hint("%s", hint)
	}
	if err != nil {
		return "", cmdline.Errorf("recipients sign: failed to read %s: %v", path, err)
	}
	data, err = u.unprotect("recipients sign", "the organisation key "+path, path, data)
	var ce *cmdline.Error
	switch {
	case errors.As(err, &ce):
		return "", err
	case errors.Is(err, keyfile.ErrIncorrectPassphrase):
		return "", cmdline.Errorf("recipients sign: incorrect passphrase for the organisation key %s", path).
			Hint("type the passphrase chosen at \"%s org init -passphrase\"; nothing was signed", prog)
	case errors.Is(err, keyfile.ErrEmptyPassphrase):
		return "", cmdline.Errorf("recipients sign: the passphrase for %s is empty", path).
			Hint("type the passphrase chosen at \"%s org init -passphrase\"; nothing was signed", prog)
	case err != nil:
		return "", cmdline.Errorf("recipients sign: %s is not an organisation key: %v", path, err).Hint("%s", hint)
	}
	var key string
	for _, line := range strings.Split(string(bytes.TrimRight(data, "\n")), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if key != "" {
			return "", cmdline.Errorf("recipients sign: %s holds more than one key", path).Hint("%s", hint)
		}
		key = line
	}
	if _, err := note.NewSigner(key); err != nil {
		return "", cmdline.Errorf("recipients sign: %s is not an organisation key", path).Hint("%s", hint)
	}
	return key, nil
}

func (u *ui) recipientsCmd(args []string) error {
	if isHelp(args) {
		return flag.ErrHelp
	}
	const example = prog + " recipients sign -org org.key -version 2 recipients.txt > recipients.note"
	if len(args) == 0 || args[0] != "sign" {
		return cmdline.Errorf("recipients: the only subcommand is sign").Hint("%s", example)
	}
	fs := cmdline.NewFlagSet("recipients sign")
	orgFile := fs.String("org", "", "organisation key `FILE`")
	versionFlag := fs.String("version", "", "note version `N` (at least 1, higher than the last one)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return cmdline.Errorf("recipients sign: missing the RECIPIENTS file").Hint("%s", example)
	case fs.NArg() > 1:
		return cmdline.Errorf("recipients sign: too many arguments: %q", fs.Args()).Hint("flags go before RECIPIENTS: %s", example)
	case *orgFile == "":
		return cmdline.Errorf("recipients sign: missing -org FILE").Hint("%s", example)
	case *versionFlag == "":
		return cmdline.Errorf("recipients sign: missing -version N").Hint("use 1 for the first list and a higher number for every new one: %s", example)
	}
	version, err := strconv.ParseUint(*versionFlag, 10, 64)
	if err != nil || version < 1 {
		return cmdline.Errorf("recipients sign: -version %q is not a number of at least 1", *versionFlag).Hint("use 1 for the first list and a higher number for every new one")
	}
	skey, err := u.readOrgKey(*orgFile)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	f, err := os.Open(name)
	if err != nil {
		return cmdline.Errorf("recipients sign: %v", err).Hint("RECIPIENTS is a file of age1… lines, e.g. made by \"%s keygen -passphrase -o NAME.key >> recipients.txt\"", prog)
	}
	defer f.Close()
	set, err := recipients.Parse(f)
	if err != nil {
		hint := "list one recipient per line, all of one type (age1pq1… or age1…); comments start with #"
		if errors.Is(err, recipients.ErrPrivateKey) {
			hint = "a recipients file holds public recipients only; never put an identity (AGE-SECRET-KEY-…) in it"
		}
		return cmdline.Errorf("recipients sign: %s: %v", name, err).Hint("%s", hint)
	}
	msg, err := recipients.SignNote(set, version, skey)
	if err != nil {
		return cmdline.Errorf("recipients sign: %v", err)
	}
	if _, err := u.stdout.Write(msg); err != nil {
		return cmdline.Errorf("recipients sign: failed to write the note: %v", err)
	}
	return nil
}
