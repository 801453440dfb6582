package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/text/language"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/internal/catalogue"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/casebook"
)

// indexUsage is the page of "index -h".
const indexUsage = `Usage:
    testimony-review index -o OUTDIR [-lang ko|en]

Rewrites the case view of OUTDIR, the folder given to "open -o":
OUTDIR/index.html, OUTDIR/style.css and OUTDIR/pages/<id>.html, static pages
that list every submission opened there by case, newest first, and play its
recordings in any web browser, without a network. open writes them after
every bundle; index rebuilds them, for example in the other language.

-lang ko or -lang en picks the language; without it, LC_ALL, LC_MESSAGES or
LANG decide (Korean for ko_KR.UTF-8, English otherwise).

Example:

    $ testimony-review index -o cases -lang ko
    case view: cases/index.html (submissions: 3, cases: 2; open it in a web browser)
`

// index rebuilds the case view of an output directory from what is
// already opened there: "index -o OUTDIR [-lang ko|en]".
func (u *ui) index(args []string) error {
	if isHelp(args) {
		fmt.Fprint(u.stdout, indexUsage)
		return nil
	}
	fs := cmdline.NewFlagSet("index")
	out := fs.String("o", "", "output `DIR` of open")
	lang := fs.String("lang", "", "language of the pages: ko or en")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const example = prog + " index -o cases"
	switch {
	case fs.NArg() > 0:
		return cmdline.Errorf("index: unexpected arguments: %q", fs.Args()).Hint("%s", example)
	case *out == "":
		return cmdline.Errorf("index: missing -o OUTDIR").Hint("%s", example)
	case !knownLang(*lang):
		return langError("index", *lang)
	}
	sum, err := u.writeCaseView("index", *out, *lang)
	if errors.Is(err, casebook.ErrNoOutDir) {
		return cmdline.Errorf("index: %s does not exist", *out).
			Hint("OUTDIR is the folder given to \"open -o\"; open a bundle first: %s open -i reviewer.key -o %s BUNDLE", prog, *out)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(u.stdout, "case view: %s (submissions: %d, cases: %d; open it in a web browser)\n",
		filepath.Join(*out, casebook.IndexName), sum.Submissions, sum.Cases)
	return nil
}

// refreshCaseView rewrites the case view after open. The submissions are
// opened and recorded by then, so a failure here is a warning with the
// command that retries it, not a failure of open.
func (u *ui) refreshCaseView(outDir, lang string) {
	if _, err := os.Stat(outDir); err != nil {
		return // open refused everything before creating OUTDIR
	}
	if _, err := u.writeCaseView("open", outDir, lang); err != nil {
		u.warnf("the case view in %s was not updated: %v", outDir, err)
		u.hintf("fix the cause, then run: %s index -o %s", prog, outDir)
		return
	}
	fmt.Fprintf(u.stdout, "case view: %s (open it in a web browser)\n", filepath.Join(outDir, casebook.IndexName))
}

func (u *ui) writeCaseView(cmd, outDir, lang string) (*casebook.Summary, error) {
	st, err := openStore(cmd)
	if err != nil {
		return nil, err
	}
	opened, err := st.Opened()
	if err != nil {
		return nil, stateError(cmd, err)
	}
	l, err := st.Log()
	if err != nil {
		return nil, stateError(cmd, err)
	}
	sum, err := casebook.Write(outDir, casebook.Options{Lang: pageLanguage(lang), Opened: opened, Log: l})
	if err != nil {
		if errors.Is(err, casebook.ErrNoOutDir) {
			return nil, err
		}
		return nil, cmdline.Errorf("%s: failed to write the case view: %v", cmd, err)
	}
	for _, e := range sum.Skipped {
		u.warnf("%s: not in the case view: %v", cmd, e)
	}
	return sum, nil
}

// langError is the error for a -lang value the pages are not written in.
func langError(cmd, lang string) error {
	return cmdline.Errorf("%s: no pages in the language %q", cmd, lang).
		Hint("use -lang ko for Korean or -lang en for English; without -lang, LC_ALL, LC_MESSAGES or LANG decide")
}

// knownLang reports whether -lang is empty (use the locale) or a
// language of the catalogue.
func knownLang(lang string) bool {
	if lang == "" {
		return true
	}
	t, err := language.Parse(lang)
	if err != nil {
		return false
	}
	for _, c := range casebook.Messages.Tags() {
		if c == t {
			return true
		}
	}
	return false
}

// pageLanguage is -lang if given, otherwise the locale's language.
func pageLanguage(lang string) language.Tag {
	if lang != "" {
		return casebook.Messages.Match(lang)
	}
	return casebook.Messages.Match(catalogue.LocaleFromEnv(os.Getenv))
}
