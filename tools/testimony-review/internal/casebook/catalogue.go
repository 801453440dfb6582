package casebook

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// This file is the message catalogue: one JSON file per language, English
// source strings as keys, whole sentences with fmt placeholders (%s, %d, or
// %[2]d where a translation reorders them). It knows nothing about pages,
// so the caseworker's app can share it.

// maxCatalogueFile bounds one embedded catalogue file.
const maxCatalogueFile = 1 << 20

// Catalogue holds the messages of every language it was loaded with.
type Catalogue struct {
	builder  *catalog.Builder
	tags     []language.Tag // tags[0] is the fallback
	matcher  language.Matcher
	messages map[language.Tag]map[string]string
}

// LoadCatalogue reads every <tag>.json in dir of fsys (for example en.json
// and ko.json), each a JSON object mapping an English source string to its
// translation. fallback is the language used when nothing else matches.
func LoadCatalogue(fsys fs.FS, dir string, fallback language.Tag) (*Catalogue, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("failed to list message catalogues: %w", err)
	}
	c := &Catalogue{
		builder:  catalog.NewBuilder(catalog.Fallback(fallback)),
		messages: map[language.Tag]map[string]string{},
	}
	for _, name := range names {
		tag, err := language.Parse(strings.TrimSuffix(path.Base(name), ".json"))
		if err != nil {
			return nil, fmt.Errorf("failed to load message catalogue %s: bad language tag: %w", name, err)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("failed to load message catalogue %s: %w", name, err)
		}
		if len(data) > maxCatalogueFile {
			return nil, fmt.Errorf("failed to load message catalogue %s: larger than %d bytes", name, maxCatalogueFile)
		}
		var msgs map[string]string
		if err := json.Unmarshal(data, &msgs); err != nil {
			return nil, fmt.Errorf("failed to load message catalogue %s: %w", name, err)
		}
		for key, msg := range msgs {
			if err := c.builder.SetString(tag, key, msg); err != nil {
				return nil, fmt.Errorf("failed to load message catalogue %s: %q: %w", name, key, err)
			}
		}
		c.messages[tag] = msgs
		c.tags = append(c.tags, tag)
	}
	if _, ok := c.messages[fallback]; !ok {
		return nil, fmt.Errorf("failed to load message catalogues: none for the fallback language %s", fallback)
	}
	// The matcher prefers its first tag when nothing matches.
	slices.SortFunc(c.tags, func(a, b language.Tag) int {
		switch {
		case a == fallback:
			return -1
		case b == fallback:
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// Tags returns the catalogue's languages, the fallback first.
func (c *Catalogue) Tags() []language.Tag { return slices.Clone(c.tags) }

// Messages returns one language's messages as loaded, for tests that
// compare catalogues.
func (c *Catalogue) Messages(tag language.Tag) map[string]string { return c.messages[tag] }

// Match returns the catalogue language that best fits the preferences,
// each a BCP 47 tag ("ko", "ko-KR") or a POSIX locale ("ko_KR.UTF-8");
// the fallback if none fits.
func (c *Catalogue) Match(prefs ...string) language.Tag {
	var want []language.Tag
	for _, p := range prefs {
		if t, ok := parseLocale(p); ok {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return c.tags[0]
	}
	_, i, conf := c.matcher.Match(want...)
	if conf == language.No {
		return c.tags[0]
	}
	return c.tags[i]
}

// Printer returns a printer of tag's messages. A key missing from tag's
// catalogue prints in the fallback language (the tests make sure none is
// missing).
func (c *Catalogue) Printer(tag language.Tag) *message.Printer {
	return message.NewPrinter(tag, message.Catalog(c.builder))
}

// parseLocale turns "ko_KR.UTF-8" or "ko-KR" into a tag. "C" and "POSIX"
// name no language.
func parseLocale(s string) (language.Tag, bool) {
	s, _, _ = strings.Cut(s, ".")
	s, _, _ = strings.Cut(s, "@")
	if s == "" || s == "C" || s == "POSIX" {
		return language.Und, false
	}
	t, err := language.Parse(strings.ReplaceAll(s, "_", "-"))
	return t, err == nil
}

// LocaleFromEnv returns the user's language preference from the POSIX
// locale variables, in their order of precedence; "" if none is set.
func LocaleFromEnv(getenv func(string) string) string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := getenv(v); s != "" {
			return s
		}
	}
	return ""
}
