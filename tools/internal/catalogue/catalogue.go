// Package catalogue is the message catalogue of the testimony tools' pages
// (the reviewer's case view and the caseworker's app): one JSON file per
// language, English source strings as keys, whole sentences with fmt
// placeholders (%s, %d, or %[2]d where a translation reorders them). It
// knows nothing about pages and pulls in no networking, so the reviewer's
// offline binary can link it.
package catalogue

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template/parse"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// maxCatalogueFile bounds one embedded catalogue file.
const maxCatalogueFile = 1 << 20

// Catalogue holds the messages of every language it was loaded with.
type Catalogue struct {
	builder  *catalog.Builder
	tags     []language.Tag // tags[0] is the fallback
	matcher  language.Matcher
	messages map[language.Tag]map[string]string
}

// Load reads every <tag>.json in dir of fsys (for example en.json
// and ko.json), each a JSON object mapping an English source string to its
// translation. fallback is the language used when nothing else matches.
func Load(fsys fs.FS, dir string, fallback language.Tag) (*Catalogue, error) {
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

var verbRE = regexp.MustCompile(`%(\[[0-9]+\])?[a-z]`)

// verbs lists a message's placeholders without argument indexes, sorted.
func verbs(s string) []string {
	var v []string
	for _, m := range verbRE.FindAllString(s, -1) {
		v = append(v, m[:1]+m[len(m)-1:])
	}
	slices.Sort(v)
	return v
}

// particleRE finds a Korean particle glued to a placeholder, whose form
// depends on the last sound of the text put there (이/가, 을/를, 은/는,
// 과/와, 으로/로): it cannot be right for every value.
var particleRE = regexp.MustCompile(`%(\[[0-9]+\])?[a-z](이|가|을|를|은|는|과|와|으로|로|이나|나|이라|라)`)

// Problems checks an English and Korean catalogue against the keys the
// pages use: every used key in both, no key unused, no key in one only,
// the same placeholders, no Korean particle glued to a placeholder, and
// Korean sentences in the formal 합니다 register. It returns one line per
// problem, for the tests of each program that has pages.
func (c *Catalogue) Problems(used map[string]bool) []string {
	en, ko := c.Messages(language.English), c.Messages(language.Korean)
	if en == nil || ko == nil {
		return []string{fmt.Sprintf("catalogues loaded: %v; want en and ko", c.Tags())}
	}
	var p []string
	for _, k := range slices.Sorted(maps.Keys(used)) {
		if _, ok := en[k]; !ok {
			p = append(p, fmt.Sprintf("en.json lacks %q, used by the pages", k))
		}
		if v := ko[k]; v == "" || v == k {
			p = append(p, fmt.Sprintf("ko.json has no Korean for %q, used by the pages", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(en)) {
		if _, ok := ko[k]; !ok {
			p = append(p, fmt.Sprintf("ko.json lacks %q, which en.json has", k))
		}
		if !used[k] {
			p = append(p, fmt.Sprintf("en.json has %q, which no page uses", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ko)) {
		if _, ok := en[k]; !ok {
			p = append(p, fmt.Sprintf("en.json lacks %q, which ko.json has", k))
		}
		if got, want := verbs(ko[k]), verbs(k); !slices.Equal(got, want) {
			p = append(p, fmt.Sprintf("ko.json %q has the placeholders %v, want %v", k, got, want))
		}
		if got, want := verbs(en[k]), verbs(k); !slices.Equal(got, want) {
			p = append(p, fmt.Sprintf("en.json %q has the placeholders %v, want %v", k, got, want))
		}
		if m := particleRE.FindString(ko[k]); m != "" {
			p = append(p, fmt.Sprintf("ko.json %q glues a particle to a placeholder (%q): reword it", k, m))
		}
		if end := strings.TrimRight(ko[k], ".) "); strings.HasSuffix(end, "다") && !strings.HasSuffix(end, "니다") {
			p = append(p, fmt.Sprintf("ko.json %q is not in the formal register: %q", k, ko[k]))
		}
	}
	return p
}

// TemplateKeys returns every string literal passed to the function fn
// (normally "T") in the templates of t: the messages its pages can show.
// A call with a non-literal key is returned in bad.
func TemplateKeys(t *template.Template, fn string) (keys map[string]bool, bad []string) {
	keys = map[string]bool{}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == fn {
				if len(n.Args) < 2 {
					bad = append(bad, n.String())
					return
				}
				s, ok := n.Args[1].(*parse.StringNode)
				if !ok {
					bad = append(bad, n.String())
					return
				}
				keys[s.Text] = true
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	return keys, bad
}
