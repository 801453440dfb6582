package main

// The testimony's metadata (case reference, language, date, consent) and
// its file names, which are often people's names, identify who spoke. On
// the command line they are visible to every user of the computer (in
// /proc/PID/cmdline, ps, Task Manager) while testimony runs, and the shell
// keeps them in its history file. -meta takes them from a file only the
// caseworker can read, or from standard input.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/cmdline"
)

const (
	// maxMetaFile caps a -meta file: a few lines of metadata and file names.
	maxMetaFile = 64 << 10
	// maxMetaFiles caps the file names one -meta file may list.
	maxMetaFiles = 1000
)

// testimonyMeta is what a -meta file holds.
type testimonyMeta struct {
	Case    string   `json:"case"`
	Lang    string   `json:"lang"`
	Date    string   `json:"date"`
	Consent string   `json:"consent"`
	Files   []string `json:"files"`
}

// metaKeys are the keys of the key: value form; "file" may repeat.
var metaKeys = []string{"case", "lang", "date", "consent", "file"}

// parseMeta reads a -meta file: a JSON object with the keys case, lang,
// date, consent and files (a list), or lines of "key: value" with the keys
// case, lang, date, consent and file (once per file), blank lines and #
// comments. Unknown and repeated keys, empty values, control characters
// and invalid UTF-8 are refused, so a typo never drops a field silently.
func parseMeta(data []byte) (*testimonyMeta, error) {
	if len(data) > maxMetaFile {
		return nil, fmt.Errorf("it is larger than %d bytes", maxMetaFile)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // Notepad's byte order mark
	if !utf8.Valid(data) {
		return nil, errors.New("it is not UTF-8 text")
	}
	var m *testimonyMeta
	var err error
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		m, err = parseMetaJSON(t)
	} else {
		m, err = parseMetaLines(string(data))
	}
	if err != nil {
		return nil, err
	}
	for _, v := range append([]string{m.Case, m.Lang, m.Date, m.Consent}, m.Files...) {
		if len(v) > envelope.MaxMetaLength {
			return nil, fmt.Errorf("a value is longer than %d bytes", envelope.MaxMetaLength)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, errors.New("a value contains control characters")
		}
	}
	if len(m.Files) > maxMetaFiles {
		return nil, fmt.Errorf("it lists more than %d files", maxMetaFiles)
	}
	return m, nil
}

func parseMetaJSON(data []byte) (*testimonyMeta, error) {
	// Repeated keys are refused: encoding/json would keep the last one.
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		if string(skip) == "null" {
			return nil, fmt.Errorf("key %q is null", key)
		}
	}
	var m testimonyMeta
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v (the keys are case, lang, date, consent and files)", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: data after the object")
	}
	for _, f := range m.Files {
		if f == "" {
			return nil, errors.New("files lists an empty name")
		}
	}
	for k, v := range map[string]string{"case": m.Case, "lang": m.Lang, "date": m.Date, "consent": m.Consent} {
		if seen[k] && strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("key %q is empty", k)
		}
	}
	return &m, nil
}

func parseMetaLines(text string) (*testimonyMeta, error) {
	var m testimonyMeta
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d is not key: value", i+1)
		case !slices.Contains(metaKeys, key):
			return nil, fmt.Errorf("line %d: unknown key %q (the keys are case, lang, date, consent and file)", i+1, key)
		case val == "":
			return nil, fmt.Errorf("line %d: %s has no value", i+1, key)
		case seen[key] && key != "file":
			return nil, fmt.Errorf("line %d: %s appears twice", i+1, key)
		}
		seen[key] = true
		switch key {
		case "case":
			m.Case = val
		case "lang":
			m.Lang = val
		case "date":
			m.Date = val
		case "consent":
			m.Consent = val
		case "file":
			m.Files = append(m.Files, val)
		}
	}
	return &m, nil
}

// readMeta reads the -meta file name, or standard input for "-". A file
// others can read is refused: it says whose testimony this is.
func (c *cli) readMeta(name string) (*testimonyMeta, error) {
	var data []byte
	if name == "-" {
		var err error
		if data, err = io.ReadAll(io.LimitReader(c.stdinReader(), maxMetaFile+1)); err != nil {
			return nil, cmdline.Errorf("failed to read the metadata from standard input: %v", err)
		}
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, cmdline.Errorf("cannot read meta file %v", pathError(err))
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, cmdline.Errorf("cannot read meta file %v", pathError(err))
		}
		if !fi.Mode().IsRegular() {
			return nil, cmdline.Errorf("meta file %s is not a regular file", name)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			return nil, cmdline.Errorf("meta file %s can be read by other users of this computer (mode %04o), and it says whose testimony this is", name, fi.Mode().Perm()).
				Hint("restrict it with: chmod 600 %s", name)
		}
		if data, err = io.ReadAll(io.LimitReader(f, maxMetaFile+1)); err != nil {
			return nil, cmdline.Errorf("cannot read meta file %v", pathError(err))
		}
	}
	m, err := parseMeta(data)
	if err != nil {
		return nil, cmdline.Errorf("meta file %s: %v", name, err).
			Hint("write one key: value per line with the keys case, lang, date, consent and file (one line per file), or a JSON object with case, lang, date, consent and files")
	}
	return m, nil
}

func (c *cli) stdinReader() io.Reader {
	if c.stdin == nil {
		return strings.NewReader("")
	}
	return c.stdin
}

// metadataFlags are the flags -meta replaces.
var metadataFlags = []string{"case", "lang", "date", "consent"}

// submitInput merges -meta with the metadata flags and the file
// arguments. A field given twice is refused; metadata on the command line
// is used, with a warning once per run.
func (c *cli) submitInput(fs *flag.FlagSet, metaFile string, flags envelope.Meta) (envelope.Meta, []string, error) {
	files := fs.Args()
	var onCmdline []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(metadataFlags, f.Name) {
			onCmdline = append(onCmdline, "-"+f.Name)
		}
	})
	meta := flags
	if metaFile != "" {
		m, err := c.readMeta(metaFile)
		if err != nil {
			return meta, nil, err
		}
		for _, f := range []struct {
			name, from string
			dst        *string
		}{
			{"case", m.Case, &meta.Case},
			{"lang", m.Lang, &meta.Language},
			{"date", m.Date, &meta.InterviewDate},
			{"consent", m.Consent, &meta.Consent},
		} {
			if f.from == "" {
				continue
			}
			if slices.Contains(onCmdline, "-"+f.name) {
				return meta, nil, cmdline.Errorf("%s is given both with -%s and in the meta file", f.name, f.name).Usage("").
					Hint("give it once, in the meta file")
			}
			*f.dst = f.from
		}
		files = append(slices.Clone(m.Files), files...)
	}
	if len(files) == 0 {
		return meta, nil, cmdline.Errorf("no files to submit").Usage("").
			Hint("list them after the flags, or as file: lines in the -meta file")
	}
	if meta.InterviewDate != "" {
		if _, err := time.Parse(time.DateOnly, meta.InterviewDate); err != nil {
			where := "-date"
			if flags.InterviewDate == "" {
				where = "the date in the meta file"
			}
			return meta, nil, cmdline.Errorf("%s %q is not a date like 2026-11-27", where, meta.InterviewDate).Usage("")
		}
	}
	if len(onCmdline) > 0 {
		c.notef("warning: %s on the command line can be seen by other users of this computer while testimony runs, and your shell keeps them in its history", strings.Join(onCmdline, ", "))
		c.hintf(`put the metadata and the file names in a file only you can read and pass -meta FILE (or -meta - to read it from standard input); see "testimony submit -h"`)
	}
	return meta, files, nil
}

// checkFiles refuses what cannot be submitted, and an empty file unless
// allowEmpty: a failed recording is the usual cause, and the person
// interviewed may be out of reach by the time anyone notices.
func (c *cli) checkFiles(files []string, allowEmpty bool) error {
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return cmdline.Errorf("cannot read %v", pathError(err))
		}
		if !fi.Mode().IsRegular() {
			return cmdline.Errorf("%s is not a regular file", f).Hint("submit files, not directories; list each file")
		}
		if fi.Size() == 0 {
			if !allowEmpty {
				return cmdline.Errorf("%s is empty (0 bytes); a failed recording is the usual cause", f).
					Hint("check the recording; to send the empty file anyway, add -allow-empty")
			}
			c.notef("warning: %s is empty (0 bytes); sending it because of -allow-empty", f)
		}
	}
	return nil
}
