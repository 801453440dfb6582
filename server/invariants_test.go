package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoIdentityParsing holds the server to its first security invariant:
// its code never handles an age private key. Package server does not even
// import age (the header checks live in crypto/recipients), nor does the
// operator's command (TestNoKeyGeneration checks its binary). Only the demo
// command testimony-dev may, in dev.go, and only to generate the demo
// identity that it writes outside the data directory.
func TestNoIdentityParsing(t *testing.T) {
	check := func(glob string, allowed map[string]map[string]bool) {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("no files match %s: %v", glob, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{} // local names of age packages
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p != "filippo.io/age" && !strings.HasPrefix(p, "filippo.io/age/") {
					continue
				}
				if allowed[filepath.Base(path)] == nil || p != "filippo.io/age" {
					t.Errorf("%s imports %s", path, p)
					continue
				}
				names["age"] = true
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] && !allowed[filepath.Base(path)][sel.Sel.Name] {
					t.Errorf("%s uses age.%s", path, sel.Sel.Name)
				}
				return true
			})
		}
	}
	check("*.go", nil)
	check("cmd/testimony-server/*.go", nil)
	check("cmd/testimony-dev/*.go", map[string]map[string]bool{"dev.go": {"GenerateHybridIdentity": true}})
}
