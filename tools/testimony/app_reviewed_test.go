package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/crypto/witness"
)

// acknowledge registers a reviewer machine's witness key as name, as
// "testimony-server witness add" does, and posts its signed
// acknowledgement of the log entries indexes, as "testimony-review ack"
// and "testimony ack" do: the server deletes their ciphertext. It returns
// the date of the acknowledgement, UTC.
func (d *deployment) acknowledge(name string, indexes ...int64) string {
	d.t.Helper()
	skey, err := witness.NewKey("reviewer-machine-" + name)
	if err != nil {
		d.t.Fatal(err)
	}
	k, err := witness.ParseKey(skey)
	if err != nil {
		d.t.Fatal(err)
	}
	reg, _ := json.Marshal(map[string]string{"name": name, "key": k.VerifierKey()})
	rec := httptest.NewRecorder()
	d.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/witnesses", bytes.NewReader(reg)))
	if rec.Code != http.StatusCreated {
		d.t.Fatalf("witness add: %d %s", rec.Code, rec.Body)
	}
	h := d.srv.Handler()
	req := httptest.NewRequest(http.MethodGet, "/v1/log/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+d.collectTok)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		d.t.Fatalf("checkpoint: %d %s", rec.Code, rec.Body)
	}
	now := time.Now()
	ack, err := witness.Sign(k, rec.Body.Bytes(), d.logKey, indexes, now)
	if err != nil {
		d.t.Fatal(err)
	}
	req = httptest.NewRequest(http.MethodPost, "/v1/ack", bytes.NewReader(ack))
	req.Header.Set("Authorization", "Bearer "+d.collectTok)
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), fmt.Sprintf(`"deleted":%d`, len(indexes))) {
		d.t.Fatalf("ack: %d %s", rec.Code, rec.Body)
	}
	return now.UTC().Format(time.DateOnly)
}

// TestAppShowsReviewed: after a reviewer's witness acknowledged one of two
// submissions, "Check all receipts now" shows that one as reviewed, with
// the date, on the outbox and its receipt page, in English and Korean; the
// other shows no review. The state survives a restart of the app, and the
// receipt files on disk are left as they were.
func TestAppShowsReviewed(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	home := filepath.Join(t.TempDir(), "state")

	ra := startApp(t, home, nil)
	cl, csrf := appSession(t, ra)
	e := url.Values{"server": {d.ts.URL}, "pin": {d.pin()}, "token": {d.submitTok}, "org_key": {o.verifier}, "log_key": {d.logKey}}
	appPost(t, cl, ra, csrf, "/enrol", e)
	e.Set("step", "confirm")
	if page := appPost(t, cl, ra, csrf, "/enrol", e); !strings.Contains(page, `<li class="ok">`) || strings.Contains(page, `<li class="bad">`) {
		t.Fatalf("enrolment failed:\n%s", page)
	}
	ra.stop()

	// Two testimonies sent from the same laptop by the command line.
	cw := newUser(t, d.submitTok)
	cw.env["TESTIMONY_HOME"] = home
	var sent []string
	for i, text := range []string{"first testimony\n", "second testimony\n"} {
		file := writeFile(t, filepath.Join(t.TempDir(), "t.txt"), []byte(text))
		stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, file)
		if code != 0 {
			t.Fatalf("submit %d: %s", i, stderr)
		}
		id := regexp.MustCompile(`[0-9a-f]{32}`).FindString(stdout + stderr)
		if id == "" {
			t.Fatalf("no submission id in:\n%s%s", stdout, stderr)
		}
		sent = append(sent, id)
	}
	reviewed, waiting := sent[0], sent[1]
	date := d.acknowledge("reviewer-1", 0)
	receipts := snapshot(t, filepath.Join(home, "receipts"))

	ra = startApp(t, home, nil)
	cl, csrf = appSession(t, ra)
	outbox := checkReceipts(t, cl, ra, csrf)
	if !strings.Contains(outbox, `class="flash"`) {
		t.Fatalf("the check did not pass:\n%s", outbox)
	}
	d8 := formatDateForTest(date)
	check := func(when string) {
		t.Helper()
		for _, lang := range []string{"en", "ko"} {
			want := map[string]string{
				"en": "Reviewed on " + d8[lang] + "; the server deleted its copy",
				"ko": "검토 완료 (검토일: " + d8[lang] + "), 서버 사본 삭제됨",
			}[lang]
			page := appGet(t, cl, ra, "/outbox", lang)
			if n := strings.Count(page, want); n != 1 {
				t.Errorf("%s, %s outbox shows %q %d times, want once:\n%s", when, lang, want, n, page)
			}
			wantReceipt := map[string]string{
				"en": "Reviewed: on " + d8[lang] + " a reviewer confirmed that they hold this testimony, and the server deleted its copy.",
				"ko": "검토 완료: 검토자가 " + d8[lang] + "에 이 증언을 받았다고 확인했으며, 서버는 보관하던 사본을 삭제했습니다.",
			}[lang]
			if page := appGet(t, cl, ra, "/receipt?id="+reviewed, lang); !strings.Contains(page, wantReceipt) {
				t.Errorf("%s, %s receipt of the reviewed submission lacks %q:\n%s", when, lang, wantReceipt, page)
			}
			if page := appGet(t, cl, ra, "/receipt?id="+waiting, lang); strings.Contains(page, map[string]string{"en": "Reviewed", "ko": "검토 완료"}[lang]) {
				t.Errorf("%s, %s receipt of the submission not reviewed shows a review:\n%s", when, lang, page)
			}
		}
	}
	check("after the check")

	// A reload of the app (a new process on the same state directory)
	// shows the same, without a new check.
	ra.stop()
	ra = startApp(t, home, nil)
	cl, csrf = appSession(t, ra)
	check("after a restart")
	if after := snapshot(t, filepath.Join(home, "receipts")); !equalSnapshots(receipts, after) {
		t.Error("the receipt files changed")
	}

	// A check that cannot ask about the review keeps what the last one
	// found, and says so.
	setAckAnswer := func(rewrite func([]byte) []byte) {
		d.mu.Lock()
		d.rewriteLog = func(path string, body []byte) []byte {
			if path == "/v1/log/ack" {
				return rewrite(body)
			}
			return body
		}
		d.mu.Unlock()
	}
	setAckAnswer(func([]byte) []byte { return []byte("{") })
	outbox = checkReceipts(t, cl, ra, csrf)
	if !strings.Contains(outbox, "Whether a reviewer has confirmed them could not be asked this time.") {
		t.Errorf("a check without answers about reviews does not say so:\n%s", outbox)
	}
	check("after a check that could not ask")

	// An acknowledgement that does not verify (the server swapped the
	// witness key) is an alarm, and the receipt is not shown as reviewed.
	other, _ := witness.NewKey("other")
	ok, _ := witness.ParseKey(other)
	setAckAnswer(func(body []byte) []byte {
		var la map[string]any
		if err := json.Unmarshal(body, &la); err != nil {
			t.Error(err)
		}
		la["witness_key"] = ok.VerifierKey()
		out, _ := json.Marshal(la)
		return out
	})
	outbox = checkReceipts(t, cl, ra, csrf)
	if !strings.Contains(outbox, "Testimonies the server says a reviewer confirmed, but whose proof does not verify: 1.") || strings.Contains(outbox, "Reviewed on") {
		t.Errorf("an acknowledgement that does not verify:\n%s", outbox)
	}
	if page := appGet(t, cl, ra, "/receipt?id="+reviewed, "en"); strings.Contains(page, "Reviewed") {
		t.Errorf("receipt of a submission whose acknowledgement does not verify shows a review:\n%s", page)
	}
}

// checkReceipts runs "Check all receipts now" and returns the outbox page
// (in English) once the check ended.
func checkReceipts(t *testing.T, cl *http.Client, ra *runningApp, csrf string) string {
	t.Helper()
	appPost(t, cl, ra, csrf, "/receipts/check", url.Values{})
	for {
		page := appGet(t, cl, ra, "/outbox", "en")
		if !strings.Contains(page, `id="refresh"`) {
			return page
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// formatDateForTest is a YYYY-MM-DD date as the app's pages print it.
func formatDateForTest(s string) map[string]string {
	tm, _ := time.Parse(time.DateOnly, s)
	return map[string]string{
		"en": tm.Format("2 January 2006"),
		"ko": fmt.Sprintf("%d년 %d월 %d일", tm.Year(), tm.Month(), tm.Day()),
	}
}

// appPost posts form with the CSRF token and returns the page it leads to.
func appPost(t *testing.T, cl *http.Client, ra *runningApp, csrf, path string, form url.Values) string {
	t.Helper()
	form.Set("csrf", csrf)
	req, _ := http.NewRequest(http.MethodPost, ra.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ra.base)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d\n%s", path, resp.StatusCode, data)
	}
	return string(data)
}

// appGet returns a page in lang.
func appGet(t *testing.T, cl *http.Client, ra *runningApp, path, lang string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ra.base+path, nil)
	req.Header.Set("Accept-Language", lang)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, data)
	}
	return string(data)
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = data
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("receipts in %s: %d files, %v", dir, len(files), err)
	}
	return files
}

func equalSnapshots(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
