package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// outboxEmpty fails the test if anything was encrypted: a refused key must
// be refused before any testimony is encrypted to it.
func outboxEmpty(t *testing.T, c *client) {
	t.Helper()
	des, _ := os.ReadDir(filepath.Join(c.home, "outbox"))
	for _, de := range des {
		if de.Name() != ".lock" {
			t.Errorf("outbox holds %s: something was encrypted to refused keys", de.Name())
		}
	}
}

func decryptsWith(t *testing.T, file string, id age.Identity) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = age.Decrypt(f, id)
	return err == nil
}

// TestOrgSignedRecipients: with the organisation key pinned, the client
// encrypts to the signed recipients, accepts and shows a rotation to a
// higher version, and refuses a rollback to a lower one.
func TestOrgSignedRecipients(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	v5 := o.sign(t, 5, d.identity)
	d.setNote(v5)

	cw := newUser(t, d.submitTok)
	stdout, stderr, code := cw.run("init", "-org-key", o.verifier, "-log-key", d.logKey)
	if code != 0 || !strings.HasPrefix(stdout, "tdk1") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("init: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "pinned the organisation key testimony-org+") || strings.Contains(stderr, "warning") {
		t.Errorf("init stderr:\n%s", stderr)
	}
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 0 || !strings.Contains(stderr, "verified recipients version 5: 1 mlkem768x25519 recipient(s), signed by your organisation's key testimony-org+") {
		t.Fatalf("submit with a signed note: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "warning") || strings.Contains(stderr, "first connection") {
		t.Errorf("a pinned log key and a signed note still warned:\n%s", stderr)
	}

	// Rotation: version 6 adds a reviewer.
	second, _ := age.GenerateHybridIdentity()
	v6 := o.sign(t, 6, d.identity, second)
	d.setNote(v6)
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 0 || !strings.Contains(stderr, "testimony: recipients rotated to version 6 (was 5): 2 mlkem768x25519 recipient(s)") {
		t.Fatalf("submit after rotation: exit %d\n%s", code, stderr)
	}
	id := lastLine(stdout)
	col := newUser(t, d.collectTok)
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-log-key", d.logKey, "-o", dir); code != 0 {
		t.Fatalf("collect: %s", stderr)
	}
	if !decryptsWith(t, filepath.Join(dir, id+".age"), second) || !decryptsWith(t, filepath.Join(dir, id+".age"), d.identity) {
		t.Error("the submission after the rotation is not encrypted to both reviewers")
	}
	// The same version again is quiet.
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 || strings.Contains(stderr, "rotated") || strings.Contains(stderr, "verified") {
		t.Fatalf("submit with the same version: exit %d\n%s", code, stderr)
	}

	// Rollback: the server serves version 5 again.
	d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = string(v5) }
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || stdout != "" {
		t.Fatalf("submit with an old note: exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{
		"testimony: error: the server offers recipients version 5, but version 6 was already verified: refusing a rollback (",
		"testimony: hint: do not submit; report this to your organisation",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	outboxEmpty(t, cw)

	// The same version with other recipients: two lists, one version.
	d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = string(o.sign(t, 6, second)) }
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || !strings.Contains(stderr, "the server offers recipients version 6 that differ from the version 6 verified before") {
		t.Errorf("equivocating note: exit %d\n%s", code, stderr)
	}
	outboxEmpty(t, cw)
}

// TestOrgKeyRefusals: each way the server can fail to prove that the
// recipients are the organisation's is refused before anything is
// encrypted, with a message that says what it means.
func TestOrgKeyRefusals(t *testing.T) {
	o := newOrg(t, "testimony-org")
	attacker, _ := age.GenerateHybridIdentity()
	for _, tt := range []struct {
		name  string
		setup func(d *deployment)
		want  []string
	}{
		{"missing note", func(d *deployment) {}, []string{
			"testimony: error: the server offers no recipients signed by your organisation, but you pinned your organisation's key testimony-org+",
			"testimony: hint: do not submit; ask the operator to install the signed recipients",
		}},
		{"note dropped by the server", func(d *deployment) {
			d.setNote(o.sign(t, 1, d.identity))
			d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = "" }
		}, []string{"offers no recipients signed by your organisation"}},
		{"note altered by the server", func(d *deployment) {
			d.setNote(o.sign(t, 1, d.identity))
			d.rewriteRecipients = func(r *api.Recipients) {
				r.SignedRecipients = strings.Replace(r.SignedRecipients, d.identity.Recipient().String(), attacker.Recipient().String(), 1)
				r.Recipients = []string{attacker.Recipient().String()}
			}
		}, []string{
			"testimony: error: the recipients offered by the server were not signed by your organisation's key testimony-org+",
			"the server may be compromised, and whoever holds the keys it offers could read what you submit",
			"testimony: hint: do not submit; report this to your organisation through another channel than this server",
		}},
		// A server holding only its own data (its database, its log key,
		// keys it makes) cannot produce a note the client accepts: here it
		// signs its own recipients with a key of the organisation's name.
		{"note forged by the server", func(d *deployment) {
			forger := newOrg(t, "testimony-org")
			d.setNote(forger.sign(t, 99, attacker))
		}, []string{"were not signed by your organisation's key", "the server may be compromised"}},
		{"note of another organisation", func(d *deployment) {
			d.setNote(newOrg(t, "other-org").sign(t, 1, d.identity))
		}, []string{"were not signed by your organisation's key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(t)
			tt.setup(d)
			cw := newUser(t, d.submitTok)
			file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
			stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-org-key", o.verifier, file)
			if code != 1 || stdout != "" {
				t.Fatalf("submit: exit %d, stdout %q\n%s", code, stdout, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			outboxEmpty(t, cw)
		})
	}
}

// TestNoOrgKeyWarns: without an organisation key, submit still works by
// trust on first use, and says how to do better.
func TestNoOrgKeyWarns(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	_, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 0 || !strings.Contains(stderr, "testimony: warning: no organisation key is pinned") ||
		!strings.Contains(stderr, "testimony: hint: ask your organisation for its key") {
		t.Fatalf("submit without an org key: exit %d\n%s", code, stderr)
	}
}

// TestLogKeyPinned: a log key given out of band that the server does not
// use is refused.
func TestLogKeyPinned(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	other := newOrg(t, "testimony-log-99999999")
	if _, stderr, code := cw.run("init", "-log-key", other.verifier); code != 0 {
		t.Fatal(stderr)
	}
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	_, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || !strings.Contains(stderr, "is not the log key pinned in") || !strings.Contains(stderr, "its receipts would prove nothing") {
		t.Fatalf("submit to a server with another log key: exit %d\n%s", code, stderr)
	}
	outboxEmpty(t, cw)
	// A flag that contradicts trust.json is refused too.
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-log-key", d.logKey, file)
	if code != 1 || !strings.Contains(stderr, "-log-key "+keyID(d.logKey)+" differs from the log key pinned") || !strings.Contains(stderr, "testimony init -replace -log-key KEY") {
		t.Fatalf("submit -log-key contradicting trust.json: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := cw.run("init", "-replace", "-log-key", d.logKey); code != 0 || !strings.Contains(stderr, "replaced the log key") {
		t.Fatalf("init -replace: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
		t.Fatalf("submit after replacing the log key: %s", stderr)
	}

	// A pinned log key does not make recipients pinned on first use
	// replaceable: a changed recipient is still refused.
	pinFile := filepath.Join(cw.home, "pins", api.HostPort(mustURL(t, d.ts.URL))+".json")
	data, err := os.ReadFile(pinFile)
	if err != nil {
		t.Fatal(err)
	}
	other2, _ := age.GenerateHybridIdentity()
	writeFile(t, pinFile, bytes.Replace(data, []byte(d.identity.Recipient().String()), []byte(other2.Recipient().String()), 1))
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
	if code != 1 || !strings.Contains(stderr, "changed since they were pinned") {
		t.Fatalf("submit with changed recipients and a pinned log key: exit %d\n%s", code, stderr)
	}
}

// TestInitServer: init -server checks the server's keys at once.
func TestInitServer(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 2, d.identity))
	cw := newUser(t, d.submitTok)
	stdout, stderr, code := cw.run("init", "-org-key", o.verifier, "-server", d.ts.URL, "-pin", d.pin())
	if code != 0 || !strings.HasPrefix(stdout, "tdk1") ||
		!strings.Contains(stderr, "verified recipients version 2") || !strings.Contains(stderr, "is ready: 1 mlkem768x25519 recipient(s), log key testimony-log-") {
		t.Fatalf("init -server: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = "" }
	_, stderr, code = cw.run("init", "-server", d.ts.URL, "-pin", d.pin())
	if code != 1 || !strings.Contains(stderr, "offers no recipients signed by your organisation") {
		t.Fatalf("init -server without a note: exit %d\n%s", code, stderr)
	}
}

// TestReceiptsVerify: receipts of several submissions are re-checked
// against the newest checkpoint; the newest verified checkpoint is kept;
// a log that no longer proves a receipt is reported.
func TestReceiptsVerify(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	var ids []string
	for range 3 {
		stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
		if code != 0 {
			t.Fatal(stderr)
		}
		ids = append(ids, lastLine(stdout))
	}
	stdout, stderr, code := cw.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 0 || !strings.HasSuffix(stdout, "verified 3 receipt(s) against the log's checkpoint of size 3\n") {
		t.Fatalf("receipts verify: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	for i, id := range ids {
		if !strings.Contains(stdout, "ok      "+id+"  leaf "+string(rune('0'+i))) {
			t.Errorf("no ok line for %s:\n%s", id, stdout)
		}
	}
	hp := api.HostPort(mustURL(t, d.ts.URL))
	saved, err := os.ReadFile(filepath.Join(cw.home, "logs", hp))
	if err != nil || !bytes.Contains(saved, []byte("\n3\n")) {
		t.Fatalf("kept checkpoint: %q, %v", saved, err)
	}

	// More submissions by someone else: consistency from the kept
	// checkpoint and from every receipt's.
	other := newUser(t, d.submitTok)
	for range 2 {
		if _, stderr, code := other.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
			t.Fatal(stderr)
		}
	}
	stdout, stderr, code = cw.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 0 || !strings.Contains(stdout, "verified 3 receipt(s) against the log's checkpoint of size 5") {
		t.Fatalf("receipts verify after growth: exit %d, stdout %q\n%s", code, stdout, stderr)
	}

	// A server whose log no longer includes a submission.
	d.rewriteLog = func(path string, body []byte) []byte {
		if path != "/v1/log/inclusion" {
			return body
		}
		var r struct{ Proof []string }
		json.Unmarshal(body, &r)
		if len(r.Proof) > 0 {
			r.Proof[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		}
		out, _ := json.Marshal(map[string]any{"proof": r.Proof})
		return out
	}
	stdout, stderr, code = cw.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 1 || !strings.Contains(stdout, "FAILED  "+ids[0]) ||
		!strings.Contains(stderr, "receipt(s) are not proven by the server's log any more") || !strings.Contains(stderr, "they are evidence") {
		t.Fatalf("receipts verify with bad proofs: exit %d, stdout %q\n%s", code, stdout, stderr)
	}

	// A server that shows an older, smaller log than the one verified.
	d.rewriteLog = func(path string, body []byte) []byte {
		if path == "/v1/log/checkpoint" {
			return saved // the checkpoint of size 3
		}
		return body
	}
	_, stderr, code = cw.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 1 || !strings.Contains(stderr, "not consistent with the checkpoint of size 5 verified before") || !strings.Contains(stderr, "rolled back") {
		t.Fatalf("receipts verify with a rolled-back log: exit %d\n%s", code, stderr)
	}

	// A checkpoint signed by a key the server made.
	d.rewriteLog = nil
	forger := newOrg(t, strings.SplitN(d.logKey, "+", 2)[0])
	d.rewriteLog = func(path string, body []byte) []byte {
		if path != "/v1/log/checkpoint" {
			return body
		}
		text, _, _ := strings.Cut(string(body), "\n\n")
		signer, _ := noteSigner(forger.signer)
		msg, _ := signNote(text+"\n", signer)
		return msg
	}
	_, stderr, code = cw.run("receipts", "verify", "-server", d.ts.URL, "-pin", d.pin())
	if code != 1 || !strings.Contains(stderr, "the server's newest checkpoint does not verify") {
		t.Fatalf("receipts verify with a forged checkpoint: exit %d\n%s", code, stderr)
	}
}

// TestCollectSince: a second collection starts where the first ended;
// -since 0 collects everything again; -since names only known sizes.
func TestCollectSince(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	submit := func() string {
		stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
		if code != 0 {
			t.Fatal(stderr)
		}
		return lastLine(stdout)
	}
	col := newUser(t, d.collectTok)
	collect := func(args ...string) (*bundle.Bundle, string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "bundle")
		stdout, stderr, code := col.run(append([]string{"collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", dir}, args...)...)
		if code != 0 {
			t.Fatalf("collect %v: exit %d\n%s", args, code, stderr)
		}
		b, err := bundle.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b, stdout
	}

	a, b := submit(), submit()
	first, out := collect()
	if first.FromSize != 0 || len(first.Leaves) != 2 || !strings.Contains(out, "bundled log entries 0 to 1") {
		t.Fatalf("first bundle from %d with %d leaves: %s", first.FromSize, len(first.Leaves), out)
	}
	c := submit()
	second, out := collect()
	if second.FromSize != 2 || second.FromCheckpoint != first.Checkpoint || len(second.Leaves) != 1 || second.Leaves[0].ID != c ||
		len(second.Consistency) == 0 || !strings.Contains(out, "bundled log entries 2 to 2: 1 submission(s)") {
		t.Fatalf("second bundle: from %d, leaves %+v\n%s", second.FromSize, second.Leaves, out)
	}
	if _, ok := second.Lookup(a); ok {
		t.Error("the second bundle carries a submission of the first")
	}
	empty, out := collect()
	if empty.FromSize != 3 || len(empty.Leaves) != 0 || !strings.Contains(out, "nothing new in the log since size 3") {
		t.Fatalf("third bundle: from %d, %d leaves\n%s", empty.FromSize, len(empty.Leaves), out)
	}
	all, _ := collect("-since", "0")
	if all.FromSize != 0 || len(all.Leaves) != 3 || len(all.Submissions) != 3 {
		t.Fatalf("-since 0: from %d, %d leaves", all.FromSize, len(all.Leaves))
	}
	for _, id := range []string{a, b, c} {
		if _, ok := all.Lookup(id); !ok {
			t.Errorf("-since 0 lacks %s", id)
		}
	}
	again, _ := collect("-since", "2")
	if again.FromSize != 2 || again.FromCheckpoint != first.Checkpoint || len(again.Leaves) != 1 {
		t.Fatalf("-since 2: from %d, %d leaves", again.FromSize, len(again.Leaves))
	}
	_, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-since", "1", "-o", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "no bundle collected on this device ended at log size 1") || !strings.Contains(stderr, "0 (everything) or a size at which an earlier bundle ended: 2, 3") {
		t.Fatalf("-since 1: exit %d\n%s", code, stderr)
	}

	// A server that rolls its log back is refused, and nothing is written.
	d.rewriteLog = func(path string, body []byte) []byte {
		if path == "/v1/log/checkpoint" {
			return []byte(first.Checkpoint)
		}
		return body
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	_, stderr, code = col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", dir)
	if code != 1 || !strings.Contains(stderr, "rolled back") || !strings.Contains(stderr, "testimony: hint: no bundle was written; the server may be compromised") {
		t.Fatalf("collect from a rolled-back log: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, bundle.FileName)); err == nil {
		t.Error("bundle.json written for a rolled-back log")
	}
}

func noteSigner(skey string) (note.Signer, error) { return note.NewSigner(skey) }

func signNote(text string, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: text}, s)
}

// TestBadReceiptKept: a receipt that does not prove the submission is
// refused, and the ciphertext stays in the outbox.
func TestBadReceiptKept(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(r *receipt.Receipt)
		want string
	}{
		{"wrong size", func(r *receipt.Receipt) { r.Size++ }, "it says"},
		{"leaf not in the tree", func(r *receipt.Receipt) { r.Received = "2020-01-01" }, "not included"},
		{"checkpoint of another key", func(r *receipt.Receipt) {
			forger := newOrg(t, "testimony-log-0badf00d")
			signer, _ := noteSigner(forger.signer)
			text, _, _ := strings.Cut(r.Checkpoint, "\n\n")
			msg, _ := signNote(text+"\n", signer)
			r.Checkpoint = string(msg)
		}, "not signed by the trusted log key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(t)
			d.rewriteReceipt = tt.edit
			cw := newUser(t, d.submitTok)
			file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
			stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file)
			if code != 1 || stdout != "" || !strings.Contains(stderr, "testimony: error: the server's receipt does not prove this submission: ") ||
				!strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "the submission stays in the outbox") {
				t.Fatalf("submit: exit %d, stdout %q\n%s", code, stdout, stderr)
			}
			if l, _ := os.ReadDir(filepath.Join(cw.home, "receipts")); len(l) != 0 {
				t.Errorf("a bad receipt was saved: %v", l)
			}
			stdout, _, _ = cw.run("status")
			if !strings.Contains(stdout, "outbox: 1") {
				t.Errorf("the submission left the outbox:\n%s", stdout)
			}
		})
	}
}
