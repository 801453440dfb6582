package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/tools/internal/browsertest"
)

// postEnrolFile posts data as the app's page does: one "file" part, the
// CSRF token in the header (csrf "" sends none).
func postEnrolFile(t *testing.T, cl *http.Client, ra *runningApp, csrf string, data []byte) (int, map[string]string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "enrolment")
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", ra.base+"/enrol/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", ra.base)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]string
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestAppEnrolImport: an enrolment file (here with a CA certificate)
// posted to the app fills the form; an organisation key of another name
// is refused in plain words and nothing is set up; the right one enrols
// with every check green and the caseworker is told to delete the file.
// Oversized, malformed and foreign files get a clear message, and the
// import needs the CSRF token like every POST.
func TestAppEnrolImport(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "testimony-org")
	other := newOrg(t, "testimony-org")
	d.setNote(o.sign(t, 1, d.identity))
	name, _ := enrol.KeyName(o.verifier)
	ca, err := enrol.CanonicalCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.ts.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "caseworker.enrol")
	if err := enrol.WriteFile(file, &enrol.Enrolment{Server: d.ts.URL, CA: string(ca), LogKey: d.logKey, OrgKeyName: name, Token: d.submitTok, Role: "submit", Name: "caseworker"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	cl, csrf := appSession(t, ra)

	if code, _ := postEnrolFile(t, cl, ra, "", data); code != http.StatusForbidden {
		t.Errorf("import without the CSRF token: %d, want 403", code)
	}
	for _, tc := range []struct {
		name string
		data []byte
		code int
		want string
	}{
		{"oversized", bytes.Repeat([]byte(" "), 70<<10), http.StatusRequestEntityTooLarge, "too large to be an enrolment file"},
		{"malformed", bytes.Replace(data, []byte(`"role": "submit"`), []byte(`"role": "nobody"`), 1), http.StatusBadRequest, "damaged or was changed on its way"},
		{"not an enrolment file", []byte(`{"format": "testimony-trust"}`), http.StatusBadRequest, "This is not an enrolment file"},
	} {
		if code, m := postEnrolFile(t, cl, ra, csrf, tc.data); code != tc.code || !strings.Contains(m["error"], tc.want) {
			t.Errorf("%s: %d %q, want %d and %q", tc.name, code, m["error"], tc.code, tc.want)
		}
	}

	code, m := postEnrolFile(t, cl, ra, csrf, data)
	if code != http.StatusOK || m["server"] != d.ts.URL || m["ca"] != string(ca) || m["pin"] != "" || m["log_key"] != d.logKey ||
		m["token"] != d.submitTok || m["org_key_name"] != name {
		t.Fatalf("import: %d %v", code, m)
	}
	post := func(orgKey string) (int, string) {
		t.Helper()
		v := url.Values{"csrf": {csrf}, "server": {m["server"]}, "pin": {m["pin"]}, "ca": {m["ca"]}, "log_key": {m["log_key"]},
			"token": {m["token"]}, "file_org": {m["org_key_name"]}, "org_key": {orgKey}}
		req, _ := http.NewRequest("POST", ra.base+"/enrol", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", ra.base)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	otherName, _ := enrol.KeyName(other.verifier)
	code, page := post(other.verifier)
	if code != http.StatusBadRequest || !strings.Contains(page, tplEscape("The enrolment file names the organisation key "+name+", but the key you typed is "+otherName)) ||
		!strings.Contains(page, "do not use it") || !strings.Contains(page, `id="f-org-name">`+tplEscape(name)) {
		t.Fatalf("another organisation's key: %d\n%s", code, page)
	}
	if _, err := os.Stat(filepath.Join(home, "trust.json")); err == nil {
		t.Error("a refused key was saved")
	}
	if code, page := post(""); code != http.StatusBadRequest || !strings.Contains(page, "Type or paste the organisation key") {
		t.Errorf("no organisation key: %d\n%s", code, page)
	}
	code, page = post(o.verifier)
	if code != http.StatusOK || strings.Contains(page, `class="bad"`) || !strings.Contains(page, `class="ok"`) ||
		!strings.Contains(page, "The enrolment file holds your access token. Delete it") || strings.Contains(page, d.submitTok) {
		t.Fatalf("the right key: %d\n%s", code, page)
	}
}

// TestAppEnrolFileInBrowser: a damaged file dropped on the enrolment page
// is refused in words; the real file chosen through the file input fills
// the form and shows the organisation key's name; a key typed from
// another card is refused; the right one reaches all green.
func TestAppEnrolFileInBrowser(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	other := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	file, e := enrolmentFor(t, d, o)
	bad := filepath.Join(t.TempDir(), "bad.enrol")
	os.WriteFile(bad, []byte("{}"), 0o600)
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	b := browsertest.New(t, "en-US")
	b.Open(t, ra.url, `#enrol-drop`)

	b.Drop(t, "enrol-drop", bad)
	b.Wait(t, `!document.getElementById('enrol-error').hidden`)
	if msg := b.Text(t, "#enrol-error"); !strings.Contains(msg, "not an enrolment file") {
		t.Errorf("a damaged file dropped: %q", msg)
	}
	b.Do(t, chromedp.SetUploadFiles(`#enrol-file`, []string{file}))
	b.Wait(t, `!document.getElementById('imported').hidden`)
	if got := b.Text(t, "#f-org-name"); got != e.OrgKeyName {
		t.Errorf("the page shows the organisation key %q, want %q", got, e.OrgKeyName)
	}
	if v, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.getElementById('f-server').value + ' ' + document.getElementById('f-log-key').value`)); v != d.ts.URL+" "+d.logKey {
		t.Errorf("the form holds %q", v)
	}
	shot(t, b, "enrol-file-en")
	b.Do(t, chromedp.SetValue(`#f-org-key`, other.verifier))
	b.ClickAndLoad(t, `#enrol-continue`, `main > p.error`)
	if msg := b.Text(t, "main > p.error"); !strings.Contains(msg, "made for another organisation") {
		t.Errorf("another card's key: %q", msg)
	}
	b.Do(t, chromedp.SetValue(`#f-org-key`, o.verifier))
	b.ClickAndLoad(t, `#enrol-continue`, `.checks`)
	if n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('.checks li.bad').length`)); err != nil || n != 0 {
		t.Fatalf("enrolment checks failed (%d red, %v):\n%s", n, err, b.Text(t, "main"))
	}
	if msg := b.Text(t, "#delete-enrol"); !strings.Contains(msg, "Delete it now") {
		t.Errorf("no word about deleting the file: %q", msg)
	}
	shot(t, b, "checks-file-en")
}

// tplEscape escapes s as html/template writes it in a page.
func tplEscape(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }
