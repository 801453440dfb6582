package catalogue

import (
	"embed"
	"html/template"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

//go:embed testdata
var testdata embed.FS

func load(t *testing.T, dir string) *Catalogue {
	t.Helper()
	c, err := Load(testdata, "testdata/"+dir, language.English)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrinter(t *testing.T) {
	c := load(t, "good")
	if got, want := c.Printer(language.Korean).Sprintf("Page %d of %d", 2, 5), "전체 5쪽 중 2쪽"; got != want {
		t.Errorf("Korean with reordered placeholders = %q, want %q", got, want)
	}
	if got, want := c.Printer(language.English).Sprintf("Page %d of %d", 2, 5), "Page 2 of 5"; got != want {
		t.Errorf("English = %q, want %q", got, want)
	}
	if p := c.Problems(map[string]bool{"Page %d of %d": true, "Open": true}); len(p) != 0 {
		t.Errorf("problems in a good catalogue: %q", p)
	}
}

// TestProblems: each kind of catalogue mistake is reported.
func TestProblems(t *testing.T) {
	c := load(t, "bad")
	p := strings.Join(c.Problems(map[string]bool{"Sent %s": true, "Hello": true, "Count %d": true, "Missing": true}), "\n")
	for _, want := range []string{
		`en.json lacks "Missing"`,
		`ko.json has no Korean for "Missing"`,
		`ko.json lacks "Unused"`,
		`en.json has "Unused", which no page uses`,
		`en.json lacks "Only Korean"`,
		`ko.json "Count %d" has the placeholders [] , want [%d]`,
		`glues a particle to a placeholder ("%s를")`,
		`ko.json "Hello" is not in the formal register`,
	} {
		want = strings.ReplaceAll(want, "[] ,", "[],")
		if !strings.Contains(p, want) {
			t.Errorf("problems lack %q; got:\n%s", want, p)
		}
	}
}

func TestTemplateKeys(t *testing.T) {
	tmpl := template.Must(template.New("").Funcs(template.FuncMap{"T": func(string, ...any) string { return "" }}).Parse(
		`{{define "a"}}{{T "One"}}{{if .X}}{{T "Two %d" 2}}{{end}}{{range .Y}}{{T .}}{{end}}{{end}}`))
	keys, bad := TemplateKeys(tmpl, "T")
	if !keys["One"] || !keys["Two %d"] || len(keys) != 2 || len(bad) != 1 {
		t.Errorf("keys %v, bad %v", keys, bad)
	}
}

func TestMatch(t *testing.T) {
	c := load(t, "good")
	if got := c.Tags(); !slices.Equal(got, []language.Tag{language.English, language.Korean}) {
		t.Errorf("tags %v", got)
	}
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
		if got := c.Match(tc.prefs...); got != tc.want {
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
