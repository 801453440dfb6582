package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// TestLogStateShared: receipts verify and collect on one device keep one
// record of the newest checkpoint they verified, so a collect after a
// receipts verify refuses a log rolled back behind what receipts verify
// saw (with a checkpoints/ and a collect/ record each, it did not).
func TestLogStateShared(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	col := newUser(t, d.collectTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	hp := api.HostPort(mustURL(t, d.ts.URL))
	submit := func() {
		t.Helper()
		if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
			t.Fatal(stderr)
		}
	}
	verify := func() []byte {
		t.Helper()
		if _, stderr, code := col.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin()); code != 0 {
			t.Fatal(stderr)
		}
		saved, err := os.ReadFile(filepath.Join(col.home, "logs", hp))
		if err != nil {
			t.Fatal(err)
		}
		return saved
	}
	submit()
	submit()
	size2 := verify()
	submit()
	if size3 := verify(); !bytes.Contains(size3, []byte("\n3\n")) {
		t.Fatalf("saved checkpoint %q, want size 3", size3)
	}

	d.rewriteLog = func(path string, body []byte) []byte {
		if path == "/v1/log/checkpoint" {
			return size2
		}
		return body
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	_, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", dir)
	if code != 1 || !strings.Contains(stderr, "a checkpoint of size 3 was bundled before or verified with receipts on this device") ||
		!strings.Contains(stderr, "rolled back") {
		t.Fatalf("collect from a log rolled back behind receipts verify: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "bundle.json")); err == nil {
		t.Error("bundle.json written for a rolled-back log")
	}
}

// TestLogStateMigration: the checkpoints/ and collect/ files of older
// versions become one logs/ record holding the newer checkpoint; two that
// disagree at one size are refused as a fork, and nothing is changed.
func TestLogStateMigration(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	col := newUser(t, d.collectTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	hp := api.HostPort(mustURL(t, d.ts.URL))
	submit := func() {
		t.Helper()
		if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
			t.Fatal(stderr)
		}
	}
	record := filepath.Join(col.home, "logs", hp)
	oldRecord := filepath.Join(col.home, "checkpoints", hp)
	submit()
	submit()
	if _, stderr, code := col.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin()); code != 0 {
		t.Fatal(stderr)
	}
	size2, _ := os.ReadFile(record)
	submit()
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", filepath.Join(t.TempDir(), "b")); code != 0 {
		t.Fatal(stderr)
	}
	size3, _ := os.ReadFile(record)
	if !bytes.Contains(size3, []byte("\n3\n")) {
		t.Fatalf("collect saved %q, want the checkpoint of size 3", size3)
	}

	// An older version's files: checkpoints/ at size 2, collect/ at 3.
	if err := os.MkdirAll(filepath.Dir(oldRecord), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Remove(record)
	os.WriteFile(oldRecord, size2, 0o600)
	stdout, stderr, code := col.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 0 || !strings.Contains(stdout, "checkpoint of size 3") {
		t.Fatalf("receipts verify after migration: exit %d\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(record); !bytes.Equal(got, size3) {
		t.Errorf("migrated record %q, want the collect checkpoint of size 3", got)
	}
	if _, err := os.Stat(oldRecord); err == nil {
		t.Error("checkpoints/ file kept after migration")
	}

	// Two older files at one size with different roots, both signed by
	// the log key: a fork.
	os.Remove(record)
	os.WriteFile(oldRecord, size3, 0o600)
	statePath := filepath.Join(col.home, "collect", hp+".json")
	state, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	forked := forkedCheckpoint(t, d, 3)
	st["checkpoints"] = []string{string(forked)}
	state, _ = json.Marshal(st)
	os.WriteFile(statePath, state, 0o600)
	_, stderr, code = col.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 1 || !strings.Contains(stderr, "disagree") || !strings.Contains(stderr, "the log forked") ||
		!strings.Contains(stderr, "testimony: hint: the server may be compromised") {
		t.Fatalf("receipts verify with forked older records: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(record); err == nil {
		t.Error("a record was made from forked older files")
	}
	if _, err := os.Stat(oldRecord); err != nil {
		t.Error("checkpoints/ file removed although the migration was refused")
	}
}

// forkedCheckpoint signs, with the deployment's log key, a checkpoint of
// size whose root is not the log's: what a server that forks its log
// shows someone.
func forkedCheckpoint(t *testing.T, d *deployment, size int64) []byte {
	t.Helper()
	skey, err := d.db.GetMeta("log_signer")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	cp := intakelog.Checkpoint{Origin: s.Name(), Size: size}
	cp.Root[0] = 1
	msg, err := intakelog.SignCheckpoint(cp, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestCollectNewLogKeyNotAccepted: collect has no -accept-new-recipients
// (it took a server's new log key with it); a collector whose pinned log
// key differs from the server's is refused until the new key is pinned
// with init -replace -log-key, as confirmed out of band.
func TestCollectNewLogKeyNotAccepted(t *testing.T) {
	d := newDeployment(t)
	col := newUser(t, d.collectTok)
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", filepath.Join(t.TempDir(), "b")); code != 0 {
		t.Fatal(stderr)
	}
	// The pin came from a log key the server no longer shows, as if the
	// server had been replaced since.
	pinFile := filepath.Join(col.home, "pins", api.HostPort(mustURL(t, d.ts.URL))+".json")
	data, err := os.ReadFile(pinFile)
	if err != nil {
		t.Fatal(err)
	}
	_, oldKey, err := note.GenerateKey(rand.Reader, "testimony-log-0ld0ld00")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(d.logKey), []byte(oldKey), 1)
	writeFile(t, pinFile, data)

	_, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-accept-new-recipients", "-o", filepath.Join(t.TempDir(), "b"))
	if code != 1 || !strings.Contains(stderr, "-accept-new-recipients") {
		t.Fatalf("collect -accept-new-recipients: exit %d\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(pinFile); !bytes.Equal(got, data) {
		t.Fatal("collect -accept-new-recipients replaced the pinned log key")
	}
	_, stderr, code = col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", filepath.Join(t.TempDir(), "b"))
	if code != 1 || !strings.Contains(stderr, "the log key of "+api.HostPort(mustURL(t, d.ts.URL))+" changed since") ||
		!strings.Contains(stderr, `testimony: hint: if it was really replaced, run "testimony init -replace -log-key KEY"`) {
		t.Fatalf("collect with a changed log key: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := col.run("init", "-replace", "-log-key", d.logKey); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", filepath.Join(t.TempDir(), "b")); code != 0 {
		t.Fatalf("collect after init -replace -log-key: exit %d\n%s", code, stderr)
	}
}
