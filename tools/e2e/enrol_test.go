package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnrolment: the operator writes an enrolment file while the server
// runs, the caseworker imports it with the organisation key from the
// card, and then submits with no token variable, no -pin and no -ca; the
// reviewer opens what arrived.
func TestEnrolment(t *testing.T) {
	e := newOrgEnv(t)
	file := filepath.Join(e.dir, "laptop-3.enrol")
	out, err := e.runErr(nil, bin("testimony-server"), "token", "create", "-data", e.data, "-role", "submit", "-name", "laptop-3",
		"-enrol", file, "-url", e.url())
	if err != nil || out != "" {
		t.Fatalf("token create -enrol: %v, stdout %q", err, out)
	}

	noToken := []string{"TESTIMONY_TOKEN="}
	_, stderr := e.runBoth(noToken, bin("testimony"), "init", "-enrol", file, "-org-key", e.orgPub, "-delete-enrol")
	for _, want := range []string{"remembered the certificate check for " + e.url(), "saved the submit token \"laptop-3\"", "deleted the enrolment file " + file} {
		if !strings.Contains(stderr, want) {
			t.Errorf("init -enrol: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("-delete-enrol left the enrolment file")
	}

	statement := []byte("enrolled and submitted\n")
	src := writeFile(t, filepath.Join(t.TempDir(), "statement.txt"), statement)
	id := lastLine(e.run(noToken, bin("testimony"), "submit", "-server", e.url(), src))
	e.run(noToken, bin("testimony"), "receipts", "verify", "-server", e.url())

	// The collector works on another machine, with its own state.
	bundle := filepath.Join(e.dir, "bundle")
	e.run([]string{"TESTIMONY_TOKEN=" + e.collTok, "TESTIMONY_HOME=" + filepath.Join(e.dir, "collector")}, bin("testimony"),
		"collect", "-server", e.url(), "-ca", e.certFile(), "-o", bundle)
	outDir := filepath.Join(e.dir, "opened")
	e.open(bundle, outDir)
	sameFile(t, filepath.Join(outDir, id, "statement.txt"), statement)
}
