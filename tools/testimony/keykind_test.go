package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSwappedKeysFromServer: keys swapped in trust.json (by an older
// version, or with names the tools did not choose) are recognised from
// what the server publishes and reported as swapped, not as a possible
// compromise of the server.
func TestSwappedKeysFromServer(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "acme-reviewers")
	d.setNote(o.sign(t, 1, d.identity))
	for _, tt := range []struct {
		name           string
		orgKey, logKey string
		want           string
	}{
		{"both", d.logKey, o.verifier, "is the intake log's key, and the log key acme-reviewers+"},
		{"log key as organisation key", d.logKey, "", "is this server's intake log key, not the organisation's"},
		{"organisation key as log key", "", o.verifier, "is the organisation's key (it signs the server's recipients), not the intake log's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cw := newUser(t, d.submitTok)
			if err := os.MkdirAll(cw.home, 0o700); err != nil {
				t.Fatal(err)
			}
			trust, _ := json.Marshal(map[string]any{"version": 1, "org_key": tt.orgKey, "log_key": tt.logKey})
			writeFile(t, filepath.Join(cw.home, "trust.json"), trust)
			file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
			stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "were swapped") ||
				!strings.Contains(stderr, `testimony: hint: run "testimony init -replace -org-key ORGKEY -log-key LOGKEY"`) ||
				strings.Contains(stderr, "compromised") {
				t.Fatalf("submit: exit %d\n%s", code, stderr)
			}
			outboxEmpty(t, cw)
		})
	}
}
