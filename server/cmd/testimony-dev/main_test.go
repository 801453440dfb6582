package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/testimony-ngo/testimony/internal/version"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		progName: func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/*.txt, with $VERSION the version embedded from
// internal/version.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VERSION", version.Version)
			return nil
		},
	})
}
