package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/keyfile"
)

// maxPassphraseLine caps a passphrase line read from standard input.
const maxPassphraseLine = 4096

// errNoPassphrase means a passphrase was needed and there was nowhere to
// read it from: no terminal, and no line left on standard input.
var errNoPassphrase = errors.New("a passphrase is needed and none could be read")

// passphraseError reports a passphrase that could not be read, for the
// command (and file) in what. A missing one says how to give one: the
// usual cause is a script, or a passphrase file one line too short.
func passphraseError(what string, err error) error {
	if errors.Is(err, errNoPassphrase) {
		return cmdline.Errorf("%s: %v", what, err).
			Hint("run the command in a terminal to type it; in a script, give the passphrase on standard input, one line per protected file, in order (e.g. < passphrases.txt)")
	}
	return cmdline.Errorf("%s: %v", what, err)
}

// stdinIsTerminal reports whether passphrases should be asked on the
// terminal. When standard input is a pipe or a file (scripts, tests), the
// passphrase is read from it instead, one line per passphrase.
func (u *ui) stdinIsTerminal() bool {
	f, ok := u.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// passphrase asks for a passphrase. On a terminal it prompts on /dev/tty
// without echo, twice if confirm is set; otherwise it reads the next line
// of standard input, where confirmation would be meaningless.
func (u *ui) passphrase(prompt string, confirm bool) (string, error) {
	if !u.stdinIsTerminal() {
		return u.passphraseLine()
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("%w: failed to open the terminal: %v", errNoPassphrase, err)
	}
	defer tty.Close()
	read := func(prompt string) (string, error) {
		fmt.Fprintf(tty, "%s: %s: ", prog, prompt)
		p, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return "", fmt.Errorf("failed to read passphrase: %w", err)
		}
		return string(p), nil
	}
	p, err := read(prompt)
	if err != nil || !confirm {
		return p, err
	}
	again, err := read("confirm passphrase")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the passphrases do not match")
	}
	return p, nil
}

// passphraseLine reads the next line of standard input one byte at a
// time, so that it consumes that line and nothing more: in a script, the
// commands that follow read the lines meant for them from the same input
// (as the shell's read does).
func (u *ui) passphraseLine() (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := u.stdin.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) >= maxPassphraseLine {
				return "", errors.New("the passphrase line on standard input is too long")
			}
			line = append(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return "", fmt.Errorf("%w: standard input is not a terminal, and it ended before a passphrase line", errNoPassphrase)
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("failed to read passphrase from standard input: %w", err)
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}

// unprotect decrypts a passphrase-protected key file's contents, asking
// for the passphrase of what (e.g. "the witness key PATH"), and returns
// them as they are when the file is not protected. It returns the
// keyfile error as it is (ErrIncorrectPassphrase, ErrEmptyPassphrase, a
// damaged file), for the caller to explain; a passphrase that could not
// be read is already explained, prefixed with cmd.
func (u *ui) unprotect(cmd, what, path string, data []byte) ([]byte, error) {
	if !keyfile.IsProtected(data) {
		return data, nil
	}
	var passErr error
	data, err := keyfile.Unprotect(data, func() (string, error) {
		p, err := u.passphrase("passphrase for "+what, false)
		if err != nil {
			passErr = err
			return "", err
		}
		u.notef("unlocking %s (scrypt, a few seconds)…", path)
		return p, nil
	})
	if passErr != nil {
		return nil, passphraseError(cmd+": "+path, passErr)
	}
	return data, err
}
