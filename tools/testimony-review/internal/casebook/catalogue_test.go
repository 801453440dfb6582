package casebook

import (
	"html/template"
	"testing"

	"golang.org/x/text/language"

	"github.com/testimony-ngo/testimony/tools/internal/catalogue"
)

// templateKeys returns every string literal passed to T in the page
// templates: the messages a page can show.
func templateKeys(t *testing.T) map[string]bool {
	t.Helper()
	tmpl, err := template.New("").Funcs(funcs(Messages.Printer(language.English))).ParseFS(assetsFS, "assets/*.html")
	if err != nil {
		t.Fatal(err)
	}
	keys, bad := catalogue.TemplateKeys(tmpl, "T")
	for _, b := range bad {
		t.Errorf("T called with a non-literal key: %s", b)
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d message keys in the templates; is the walk broken?", len(keys))
	}
	return keys
}

func TestCatalogues(t *testing.T) {
	if got := Messages.Tags(); got[0] != language.English {
		t.Errorf("fallback language is %v, want en", got[0])
	}
	for _, p := range Messages.Problems(templateKeys(t)) {
		t.Error(p)
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
