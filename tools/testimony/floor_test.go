package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// otherAddress serves d at a second address (another port), as the same
// server reached through an onion address or a new host name would be.
func (d *deployment) otherAddress(t *testing.T) *httptest.Server {
	ts := httptest.NewUnstartedServer(d.ts.Config.Handler)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// TestRecipientsFloorAcrossAddresses: after a rotation to version 2 seen
// at one address, version 1 (still validly signed, with the retired key)
// is refused at an address this device never used; and so is another
// list signed as version 2.
func TestRecipientsFloorAcrossAddresses(t *testing.T) {
	for _, migrate := range []bool{false, true} {
		name := "floors file"
		if migrate {
			name = "migrated from pins"
		}
		t.Run(name, func(t *testing.T) {
			d := newDeployment(t)
			o := newOrg(t, "testimony-org")
			seized, _ := age.GenerateHybridIdentity()
			v1 := o.sign(t, 1, d.identity, seized)
			d.setNote(o.sign(t, 2, d.identity))
			b := d.otherAddress(t)

			cw := newUser(t, d.submitTok)
			if _, stderr, code := cw.run("init", "-org-key", o.verifier, "-log-key", d.logKey); code != 0 {
				t.Fatal(stderr)
			}
			file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
			if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 || !strings.Contains(stderr, "verified recipients version 2") {
				t.Fatalf("submit at A: exit %d\n%s", code, stderr)
			}
			if migrate {
				// The state an earlier version left: versions only in pins/.
				if err := os.Remove(filepath.Join(cw.home, "recipients-versions.json")); err != nil {
					t.Fatal(err)
				}
			}

			d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = string(v1) }
			stdout, stderr, code := cw.run("submit", "-server", b.URL, "-pin", d.pin(), file)
			if code != 1 || stdout != "" ||
				!strings.Contains(stderr, "testimony: error: the server offers recipients version 1, but version 2 was already verified: refusing a rollback (") ||
				!strings.Contains(stderr, "testimony: hint: version 2 was verified at "+d.ts.URL) {
				t.Fatalf("version 1 at B: exit %d\n%s", code, stderr)
			}
			outboxEmpty(t, cw)

			other, _ := age.GenerateHybridIdentity()
			d.rewriteRecipients = func(r *api.Recipients) { r.SignedRecipients = string(o.sign(t, 2, other)) }
			_, stderr, code = cw.run("submit", "-server", b.URL, "-pin", d.pin(), file)
			if code != 1 || !strings.Contains(stderr, "the server offers recipients version 2 that differ from the version 2 verified before") {
				t.Fatalf("another version 2 at B: exit %d\n%s", code, stderr)
			}
			outboxEmpty(t, cw)

			// The real version 2 at B: accepted, and nothing new to say.
			d.rewriteRecipients = nil
			_, stderr, code = cw.run("submit", "-server", b.URL, "-pin", d.pin(), file)
			if code != 0 || strings.Contains(stderr, "verified recipients") || strings.Contains(stderr, "rotated") {
				t.Fatalf("version 2 at B: exit %d\n%s", code, stderr)
			}
		})
	}
}

// TestResumeSuperseded: an entry encrypted before a rotation away from a
// (perhaps seized) reviewer key is not uploaded by resume without
// -send-superseded, and status marks it.
func TestResumeSuperseded(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	seized, _ := age.GenerateHybridIdentity()
	d.setNote(o.sign(t, 1, d.identity, seized))
	cw := newUser(t, d.submitTok)
	if _, stderr, code := cw.run("init", "-org-key", o.verifier, "-log-key", d.logKey); code != 0 {
		t.Fatal(stderr)
	}
	file := writeFile(t, filepath.Join(t.TempDir(), "a.bin"), make([]byte, 3<<20))
	d.cutAfterPuts = 1
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 1 || !strings.Contains(stderr, "testimony resume") {
		t.Fatalf("interrupted submit: exit %d\n%s", code, stderr)
	}
	d.mu.Lock()
	d.cutAfterPuts = 0
	d.mu.Unlock()

	// The organisation rotates away from the seized key; this device
	// verifies version 2.
	d.setNote(o.sign(t, 2, d.identity))
	if _, stderr, code := cw.run("init", "-server", d.ts.URL, "-pin", d.pin()); code != 0 || !strings.Contains(stderr, "recipients rotated to version 2 (was 1)") {
		t.Fatalf("init after the rotation: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := cw.run("status")
	if code != 0 || !strings.Contains(stdout, "superseded: encrypted to reviewers' keys version 1, now 2; submit the files again") {
		t.Fatalf("status: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = cw.run("resume")
	if code != 1 || stdout != "" ||
		!strings.Contains(stderr, "was encrypted to version 1 of your organisation's list of reviewers' keys, which the organisation has since replaced (version 2 is current), possibly because a key was compromised: not uploading it") ||
		!strings.Contains(stderr, "testimony: hint: submit the files again") ||
		!strings.Contains(stderr, "testimony resume -send-superseded") {
		t.Fatalf("resume of a superseded entry: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = cw.run("resume", "-send-superseded")
	if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stderr, "warning: uploading outbox entry") {
		t.Fatalf("resume -send-superseded: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	outboxEmpty(t, cw)
}
