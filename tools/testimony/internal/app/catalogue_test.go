package app

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/testimony-ngo/testimony/tools/internal/catalogue"
)

// codeKeyRE finds the literal keys the Go code translates: tr(p, "…")
// and the inputError keys.
var codeKeyRE = regexp.MustCompile(`(?:tr\(p, |inputError\{|jobFailed, )("(?:[^"\\]|\\.)*")`)

// usedKeys returns every message the app can show: the templates' T
// calls, the Go code's tr calls and the titles.
func usedKeys(t *testing.T) map[string]bool {
	t.Helper()
	tmpls, err := allTemplates()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, tmpl := range tmpls {
		k, bad := catalogue.TemplateKeys(tmpl, "T")
		for _, b := range bad {
			if b != "T .Title" {
				t.Errorf("T called with a non-literal key: %s", b)
			}
		}
		for x := range k {
			keys[x] = true
		}
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if filepath.Ext(f) == ".go" && len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeKeyRE.FindAllSubmatch(src, -1) {
			k, err := strconv.Unquote(string(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			keys[k] = true
		}
	}
	titleRE := regexp.MustCompile(`Title: +"([^"]+)"`)
	for _, f := range files {
		src, _ := os.ReadFile(f)
		for _, m := range titleRE.FindAllSubmatch(src, -1) {
			keys[string(m[1])] = true
		}
	}
	if len(keys) < 100 {
		t.Fatalf("found only %d message keys; is the walk broken?", len(keys))
	}
	return keys
}

// TestCatalogues: every message in English and Korean, the same
// placeholders, no particle after a placeholder, the formal register.
func TestCatalogues(t *testing.T) {
	for _, p := range Messages.Problems(usedKeys(t)) {
		t.Error(p)
	}
}
