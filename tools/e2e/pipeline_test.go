package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSubmitKilledWhilePipelined kills testimony submit with SIGKILL while
// it encrypts into the outbox and uploads at the same time, and again after
// the encryption completed while the upload goes on; each time
// 'testimony resume' runs next. A kill while encrypting must leave no
// submission on the server (the partial ciphertext is discarded and its
// upload deleted); a kill after it must end, after resume, in a submission
// whose SHA-256 is that of the complete ciphertext the outbox held, in its
// receipt and in what the server serves. No other submission may appear.
func TestSubmitKilledWhilePipelined(t *testing.T) {
	e := newEnv(t)
	c := newAPIClient(t, e)
	src := writeFile(t, filepath.Join(t.TempDir(), "recording.bin"), randomBytes(t, 96<<20))
	outbox := filepath.Join(e.home, "outbox")
	seen := map[string]bool{} // the moments a kill landed in
	var want []string         // SHA-256 of every ciphertext that must arrive
	for attempt := 0; attempt < 8 && !(seen["encrypting"] && seen["encrypted"]); attempt++ {
		moment := "encrypting"
		if seen["encrypting"] {
			moment = "encrypted"
		}
		// The upload is throttled so that it trails the encryption.
		cmd := exec.Command(bin("testimony"), "submit", "-server", e.url(), "-ca", e.certFile(), "-limit-rate", "16777216", src)
		cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_TOKEN="+e.submitTok)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		name, uploadID := waitForPipelinedChunk(t, c, outbox, moment == "encrypted")
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		complete, err := os.ReadFile(filepath.Join(outbox, name+".age"))
		got := "encrypted"
		if os.IsNotExist(err) {
			got = "encrypting"
		} else if err != nil {
			t.Fatal(err)
		}
		seen[got] = true
		t.Logf("attempt %d: killed while %s", attempt, got)
		rc := exec.Command(bin("testimony"), "resume", "-server", e.url(), "-ca", e.certFile())
		rc.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_TOKEN="+e.submitTok)
		var stderr bytes.Buffer
		rc.Stderr = &stderr
		stdout, err := rc.Output()
		if err != nil {
			t.Fatalf("resume: %v\n%s%s", err, stdout, stderr.Bytes())
		}
		resumed := string(stdout)
		if got == "encrypting" {
			if !strings.Contains(stderr.String(), "discarded 1 submission") || strings.Contains(stderr.String(), "could not delete") {
				t.Errorf("resume after a kill while encrypting printed %q, want the discarded submission and its upload deleted", stderr.String())
			}
			if code, body, err := c.do("GET", "/v1/uploads/"+uploadID, e.submitTok, nil); err != nil || code != http.StatusNotFound {
				t.Errorf("the abandoned upload %s: %d %s %v, want 404 (deleted by resume)", uploadID, code, body, err)
			}
			continue
		}
		sum := sha256.Sum256(complete)
		wantSHA := hex.EncodeToString(sum[:])
		want = append(want, wantSHA)
		id := lastLine(resumed)
		rec, err := os.ReadFile(filepath.Join(e.home, "receipts", id+".json"))
		if err != nil {
			t.Fatalf("no receipt for %q after resume: %v", resumed, err)
		}
		var r struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		}
		if err := json.Unmarshal(rec, &r); err != nil || r.SHA256 != wantSHA || r.Size != int64(len(complete)) {
			t.Errorf("receipt %s says %d bytes %s, the outbox held %d bytes %s (%v)", id, r.Size, r.SHA256, len(complete), wantSHA, err)
		}
	}
	if !seen["encrypting"] || !seen["encrypted"] {
		t.Fatalf("the kills landed only in %v; the machine is too fast or too slow for this file size", seen)
	}
	if ents, _ := os.ReadDir(outbox); len(ents) > 1 { // .lock stays
		t.Errorf("outbox after resume: %v", ents)
	}
	listed, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(want) {
		t.Fatalf("server lists %d submissions, want %d: %+v", len(listed), len(want), listed)
	}
	for i, l := range listed {
		sha, _, err := c.download(l.ID)
		if err != nil || sha != want[i] || l.SHA256 != want[i] {
			t.Errorf("submission %s: listed %s, served %s (%v), want %s", l.ID, l.SHA256, sha, err, want[i])
		}
	}
}

// waitForPipelinedChunk waits until a submit's upload holds at least one
// chunk while its ciphertext is still being written (an N.age.part whose
// partial N.json names the upload), or, if complete, once N.age exists
// and the upload is not finished yet. It returns the entry's local name
// and upload id.
func waitForPipelinedChunk(t *testing.T, c *apiClient, outbox string, complete bool) (name, uploadID string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir(outbox)
		for _, ent := range ents {
			n, ok := strings.CutSuffix(ent.Name(), ".json")
			if !ok {
				continue
			}
			data, err := os.ReadFile(filepath.Join(outbox, ent.Name()))
			var m struct {
				UploadID string `json:"upload_id"`
			}
			if err != nil || json.Unmarshal(data, &m) != nil || m.UploadID == "" {
				continue
			}
			_, errAge := os.Stat(filepath.Join(outbox, n+".age"))
			if complete != (errAge == nil) {
				continue
			}
			code, body, err := c.do("GET", "/v1/uploads/"+m.UploadID, c.submit, nil)
			if err != nil || code != http.StatusOK {
				continue
			}
			var st struct {
				Chunks  int   `json:"chunks"`
				Missing []int `json:"missing"`
			}
			if json.Unmarshal(body, &st) == nil && len(st.Missing) < st.Chunks && len(st.Missing) > 0 {
				return n, m.UploadID
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no upload with a chunk while the ciphertext was %s", map[bool]string{false: "being written", true: "complete"}[complete])
	return "", ""
}
