package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBoth runs a command and returns its stdout and stderr, failing the test
// on a non-zero exit.
func (e *env) runBoth(extraEnv []string, name string, args ...string) (string, string) {
	e.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_REVIEW_HOME="+filepath.Join(e.dir, "review"))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestWalkthrough follows the README's deployment walk-through with every
// key pinned: organisation-signed recipients, the log key pinned by the
// caseworker, the collector and the reviewer, a registered caseworker
// device, then a key rotation and a refused rollback.
func TestWalkthrough(t *testing.T) {
	e := newOrgEnv(t)
	submitEnv := []string{"TESTIMONY_TOKEN=" + e.submitTok}
	collectEnv := []string{"TESTIMONY_TOKEN=" + e.collTok}

	// 5. Prepare the caseworker laptop and register its device key.
	device := strings.TrimSpace(e.run(nil, bin("testimony"), "init", "-org-key", e.orgPub, "-log-key", e.logKey))
	if !strings.HasPrefix(device, "tdk1") || strings.Contains(device, "\n") {
		t.Fatalf("testimony init printed %q, want one tdk1 device key line", device)
	}
	e.run(nil, bin("testimony-review"), "caseworkers", "add", "field-laptop-3", device)

	// 6. Submit.
	src := t.TempDir()
	statement := []byte("2019년 겨울, 혜산 근처에서 있었던 일입니다.\n")
	id1 := e.submit([]string{"-case", "K-2026-117", "-lang", "ko", "-consent", "documentation"},
		writeFile(t, filepath.Join(src, "statement.txt"), statement))

	// 7. Collect with the pinned log key.
	bundle1 := filepath.Join(e.dir, "bundle-1")
	e.run(collectEnv, bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-log-key", e.logKey, "-o", bundle1)

	// 8. The reviewer pins the log key, checks the proofs, then opens.
	e.run(nil, bin("testimony-review"), "log", "trust", e.logKey)
	e.run(nil, bin("testimony-review"), "log", "verify", bundle1)
	out := filepath.Join(e.dir, "testimony")
	summary := e.run(nil, bin("testimony-review"), "open", "-i", e.identity, "-o", out, bundle1)
	if !strings.Contains(summary, id1) || !strings.Contains(summary, "field-laptop-3") {
		t.Fatalf("open should name the submission and its registered caseworker:\n%s", summary)
	}
	sameFile(t, filepath.Join(out, id1, "statement.txt"), statement)
	custody, err := os.ReadFile(filepath.Join(out, id1, "custody.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id1, "field-laptop-3", "CHAIN OF CUSTODY"} {
		if !bytes.Contains(custody, []byte(want)) {
			t.Errorf("custody.txt does not mention %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, id1, "custody.json")); err != nil {
		t.Error(err)
	}

	// Key rotation: a second reviewer joins; the organisation signs version 2
	// and the operator installs it while the server runs.
	identity2 := filepath.Join(e.dir, "reviewer2.key")
	r2 := e.run(nil, bin("testimony-review"), "keygen", "-o", identity2)
	old, err := os.ReadFile(e.recips)
	if err != nil {
		t.Fatal(err)
	}
	recips2 := writeFile(t, filepath.Join(e.dir, "recipients-2.txt"), append(old, r2...))
	note2 := writeFile(t, filepath.Join(e.dir, "recipients-2.note"),
		[]byte(e.run(nil, bin("testimony-review"), "recipients", "sign", "-org", e.orgKey, "-version", "2", recips2)))
	e.run(nil, bin("testimony-server"), "recipients", "set", "-data", e.data, note2)

	second := []byte("second testimony, readable by the new reviewer too\n")
	stdout, stderr := e.runBoth(submitEnv, bin("testimony"), "submit", "-server", e.url(), "-ca", e.certFile(),
		writeFile(t, filepath.Join(src, "second.txt"), second))
	id2 := lastLine(stdout)
	if !strings.Contains(stderr, "recipients rotated to version 2 (was 1)") {
		t.Errorf("submit should show the rotation to version 2:\n%s", stderr)
	}

	// The old list cannot come back: the server refuses a lower version.
	note1 := filepath.Join(e.dir, "recipients.note")
	if out, err := e.runErr(nil, bin("testimony-server"), "recipients", "set", "-data", e.data, note1); err == nil {
		t.Fatalf("recipients set accepted version 1 after version 2:\n%s", out)
	}

	// The caseworker's receipts are all still proven by the log.
	e.run(submitEnv, bin("testimony"), "receipts", "verify", "-server", e.url(), "-ca", e.certFile())

	// The next bundle continues where the first ended, and the new reviewer
	// opens the new submission with their own key.
	bundle2 := filepath.Join(e.dir, "bundle-2")
	e.run(collectEnv, bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-o", bundle2)
	out2 := filepath.Join(e.dir, "testimony-2")
	summary = e.run(nil, bin("testimony-review"), "open", "-i", identity2, "-o", out2, bundle2)
	if !strings.Contains(summary, id2) {
		t.Fatalf("second open should list %s:\n%s", id2, summary)
	}
	sameFile(t, filepath.Join(out2, id2, "second.txt"), second)
	if _, err := os.Stat(filepath.Join(out2, id1)); !os.IsNotExist(err) {
		t.Errorf("the second bundle should not carry the first submission again (%v)", err)
	}
}
