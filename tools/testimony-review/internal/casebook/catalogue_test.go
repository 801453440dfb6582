package casebook

import (
	"html/template"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template/parse"

	"golang.org/x/text/language"
)

// templateKeys returns every string literal passed to T in the page
// templates: the messages a page can show.
func templateKeys(t *testing.T) map[string]bool {
	t.Helper()
	tmpl, err := template.New("").Funcs(funcs(Messages.Printer(language.English))).ParseFS(assetsFS, "assets/*.html")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
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
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "T" {
				s, ok := n.Args[1].(*parse.StringNode)
				if !ok {
					t.Errorf("T called with a non-literal key: %s", n)
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
	for _, tt := range tmpl.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d message keys in the templates; is the walk broken?", len(keys))
	}
	return keys
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

func TestCatalogues(t *testing.T) {
	en, ko := Messages.Messages(language.English), Messages.Messages(language.Korean)
	if en == nil || ko == nil {
		t.Fatalf("catalogues loaded: %v; want en and ko", Messages.Tags())
	}
	if got := Messages.Tags(); got[0] != language.English {
		t.Errorf("fallback language is %v, want en", got[0])
	}
	keys := templateKeys(t)
	for k := range keys {
		if _, ok := en[k]; !ok {
			t.Errorf("en.json lacks %q, used by the templates", k)
		}
		if v := ko[k]; v == "" || v == k {
			t.Errorf("ko.json has no Korean for %q, used by the templates", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(en)) {
		if _, ok := ko[k]; !ok {
			t.Errorf("ko.json lacks %q, which en.json has", k)
		}
		if !keys[k] {
			t.Errorf("en.json has %q, which no template uses", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ko)) {
		if _, ok := en[k]; !ok {
			t.Errorf("en.json lacks %q, which ko.json has", k)
		}
		if got, want := verbs(ko[k]), verbs(k); !slices.Equal(got, want) {
			t.Errorf("ko.json %q has the placeholders %v, want %v", k, got, want)
		}
		if got, want := verbs(en[k]), verbs(k); !slices.Equal(got, want) {
			t.Errorf("en.json %q has the placeholders %v, want %v", k, got, want)
		}
		if m := particleRE.FindString(ko[k]); m != "" {
			t.Errorf("ko.json %q glues a particle to a placeholder (%q): reword it", k, m)
		}
		if end := strings.TrimRight(ko[k], ".) "); strings.HasSuffix(end, "다") && !strings.HasSuffix(end, "니다") {
			t.Errorf("ko.json %q is not in the formal register: %q", k, ko[k])
		}
	}
}

func TestCataloguePrinter(t *testing.T) {
	p := Messages.Printer(language.Korean)
	if got, want := p.Sprintf("Page %d of %d", 2, 5), "전체 5쪽 중 2쪽"; got != want {
		t.Errorf("Korean with reordered placeholders = %q, want %q", got, want)
	}
	if got, want := Messages.Printer(language.English).Sprintf("Page %d of %d", 2, 5), "Page 2 of 5"; got != want {
		t.Errorf("English = %q, want %q", got, want)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		prefs []string
		want  language.Tag
	}{
		{[]string{"ko_KR.UTF-8"}, language.Korean},
		{[]string{"ko"}, language.Korean},
		{[]string{"ko-KR"}, language.Korean},
		{[]string{"ko_KR.eucKR@euro"}, language.Korean},
		{[]string{"en_US.UTF-8"}, language.English},
		{[]string{"en"}, language.English},
		{[]string{"C"}, language.English},
		{[]string{"POSIX"}, language.English},
		{[]string{"C.UTF-8"}, language.English},
		{[]string{""}, language.English},
		{nil, language.English},
		{[]string{"fr_FR.UTF-8"}, language.English},
		{[]string{"not a locale!"}, language.English},
	} {
		if got := Messages.Match(tc.prefs...); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.prefs, got, tc.want)
		}
	}
}

func TestLocaleFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LANG": "ko_KR.UTF-8"}, "ko_KR.UTF-8"},
		{map[string]string{"LANG": "ko_KR.UTF-8", "LC_MESSAGES": "en_US.UTF-8"}, "en_US.UTF-8"},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_MESSAGES": "en_US.UTF-8", "LC_ALL": "ko_KR.UTF-8"}, "ko_KR.UTF-8"},
		{map[string]string{}, ""},
	} {
		if got := LocaleFromEnv(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("LocaleFromEnv(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
