package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/testimony-ngo/testimony/internal/version"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"testimony": func() { os.Exit(run(os.Args[1:])) },
	})
}

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VERSION", version.Version)
			// Keys made with note.GenerateKey for the scripts; the private
			// one is there to check it is refused.
			env.Setenv("ORG1", "testimony-org+1e8f20ee+Aem6fX15amaFyKi8EgB+aQz3Ef4+OSK4FCa6wpEfzdFK")
			env.Setenv("ORG2", "testimony-org+48564613+AVkaBJUWRW4U1TcQlEuAXHEZL5Xbbd62iwPUzKqiWocg")
			env.Setenv("LOG", "testimony-log-1a2b3c4d+ef49098c+ASrJRwtnJfiVJRFWhtUA83+C0Gp2vag/tSzv4a2bVIMX")
			env.Setenv("LOGPRIV", "PRIVATE+KEY+testimony-log-1a2b3c4d+ef49098c+AR6YoGb1csBGadrSVh1yBEqtaxgKx3zlNpV6/geNZTBT")
			return nil
		},
	})
}
