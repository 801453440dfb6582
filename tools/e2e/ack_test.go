package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/server"
	"github.com/testimony-ngo/testimony/store"
)

// TestAckDeletesReviewed runs the retention loop with the real binaries:
// submit, collect, open, the reviewer's acknowledgement, "testimony ack",
// the server deleting exactly those ciphertexts; receipts then show them as
// reviewed, and later bundles still verify and open. Then the attack: a
// server that deletes (or claims to have deleted) a submission the reviewer
// never opened is caught as a dropped submission.
func TestAckDeletesReviewed(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	id1 := e.submit(nil, writeFile(t, filepath.Join(src, "one.bin"), randomBytes(t, 3<<20)))
	id2 := e.submit(nil, writeFile(t, filepath.Join(src, "two.txt"), []byte("second testimony\n")))

	bundle1 := filepath.Join(e.dir, "bundle1")
	e.collect(bundle1)
	out := filepath.Join(e.dir, "out")
	e.open(bundle1, out)

	vkey := strings.TrimSpace(e.run(nil, bin("testimony-review"), "log", "witness-key"))
	// The server runs: witness add goes through the admin socket.
	e.run(nil, bin("testimony-server"), "witness", "add", "-data", e.data, "reviewer-1", vkey)
	if list := e.run(nil, bin("testimony-server"), "witness", "list", "-data", e.data); !strings.Contains(list, "reviewer-1") || !strings.Contains(list, vkey) {
		t.Fatalf("witness list:\n%s", list)
	}
	ack := filepath.Join(e.dir, "reviewed.ack")
	e.run(nil, bin("testimony-review"), "ack", "-o", ack, bundle1)
	coll := []string{"TESTIMONY_TOKEN=" + e.collTok}
	sent := e.run(coll, bin("testimony"), "ack", "-server", e.url(), "-ca", e.certFile(), ack)
	today := time.Now().UTC().Format(time.DateOnly)
	if !strings.Contains(sent, "deleted the ciphertext of 2 of 2 acknowledged submission(s) (witness reviewer-1, log size 2), "+today) {
		t.Fatalf("testimony ack printed %q", sent)
	}
	// Again: harmless.
	if again := e.run(coll, bin("testimony"), "ack", "-server", e.url(), "-ca", e.certFile(), ack); !strings.Contains(again, "deleted the ciphertext of 0 of 2") {
		t.Fatalf("second testimony ack printed %q", again)
	}
	for _, id := range []string{id1, id2} {
		if code := e.download(id); code != http.StatusGone {
			t.Fatalf("download of acknowledged %s: %d, want 410", id, code)
		}
	}

	// The caseworker's receipts still verify, and show the review.
	receipts := e.run([]string{"TESTIMONY_TOKEN=" + e.submitTok}, bin("testimony"), "receipts", "verify", "-server", e.url(), "-ca", e.certFile())
	if strings.Count(receipts, "; reviewed (acknowledged by witness reviewer-1 on "+today+")") != 2 {
		t.Fatalf("receipts verify:\n%s", receipts)
	}

	// A new submission is collected and opened as before.
	id3 := e.submit(nil, writeFile(t, filepath.Join(src, "three.txt"), []byte("third testimony\n")))
	bundle2 := filepath.Join(e.dir, "bundle2")
	e.collect(bundle2)
	if opened := e.open(bundle2, out); !strings.Contains(opened, id3) || !strings.Contains(opened, "opened") {
		t.Fatalf("open of the next bundle:\n%s", opened)
	}
	sameFile(t, filepath.Join(out, id3, "three.txt"), []byte("third testimony\n"))
	if code := e.download(id3); code != http.StatusOK {
		t.Fatalf("download of %s, not acknowledged: %d", id3, code)
	}

	// The whole log again: the deleted entries come without ciphertext,
	// and this reviewer, who opened them, accepts that.
	bundleAll := filepath.Join(e.dir, "bundle-all")
	all, err := e.runErr(coll, bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-since", "0", "-o", bundleAll)
	if err != nil {
		t.Fatalf("collect -since 0: %v\n%s", err, all)
	}
	e.run(nil, bin("testimony-review"), "log", "verify", bundleAll)

	// A reviewer machine that never opened them refuses the same bundle:
	// "deleted" is no excuse for a leaf it has not read.
	fresh := []string{"TESTIMONY_REVIEW_HOME=" + filepath.Join(e.dir, "review-fresh")}
	refused, err := e.runErr(fresh, bin("testimony-review"), "log", "verify", "-log-key", e.logKey, bundleAll)
	if err == nil || !strings.Contains(refused, "submission dropped") || !strings.Contains(refused, "leaf 0 (id "+id1+")") {
		t.Fatalf("a fresh reviewer verified a bundle without ciphertexts it never read (%v):\n%s", err, refused)
	}

	// The attack: the server deletes a submission no reviewer opened
	// (here its operator calls the store directly, as a compromised
	// server could) and answers 410 for it.
	id4 := e.submit(nil, writeFile(t, filepath.Join(src, "four.txt"), []byte("fourth testimony\n")))
	e.kill()
	db, err := store.Open(server.DBPath(e.data), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteReviewed([]store.Reviewed{{ID: id4, Index: 3}}, []byte("forged"), time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.start()
	bundle3 := filepath.Join(e.dir, "bundle3")
	e.collect(bundle3)
	res, err := e.runErr(nil, bin("testimony-review"), "open", "-i", e.identity, "-o", out, bundle3)
	if err == nil || !strings.Contains(res, "submission dropped") || !strings.Contains(res, "leaf 3 (id "+id4+") is in the log but not in the bundle, and was not opened on this machine before") {
		t.Fatalf("open accepted a bundle whose unread submission the server deleted (%v):\n%s", err, res)
	}
	if _, err := os.Stat(filepath.Join(out, id4)); err == nil {
		t.Fatal("something was written for the dropped submission")
	}
}

// download fetches a ciphertext with the collect token and returns the
// status code.
func (e *env) download(id string) int {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url()+"/v1/submissions/"+id, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.collTok)
	resp, err := e.httpClient(30 * time.Second).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
