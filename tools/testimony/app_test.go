package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"
	"golang.org/x/text/language"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/tools/internal/browsertest"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/app"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// runningApp is "testimony app" run in-process on a state directory.
type runningApp struct {
	t      *testing.T
	url    string // the launch URL
	base   string // http://127.0.0.1:PORT
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
	once   sync.Once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startApp runs "testimony app -no-browser" for home and waits for the
// address it prints.
func startApp(t *testing.T, home string, env map[string]string) *runningApp {
	t.Helper()
	return startAppWith(t, home, env, nil)
}

// startAppWith is startApp with adjust applied to the app's configuration.
func startAppWith(t *testing.T, home string, env map[string]string, adjust func(*app.Config)) *runningApp {
	t.Helper()
	out, errb := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cli{
		stdout: out, stderr: errb,
		getenv: func(k string) string {
			if k == "TESTIMONY_HOME" {
				return home
			}
			return env[k]
		},
		now:   time.Now,
		retry: retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3},
		sleep: retry.Sleep,
		appConfig: func(cfg *app.Config) {
			cfg.RetryEvery = 100 * time.Millisecond
			if adjust != nil {
				adjust(cfg)
			}
		},
	}
	ra := &runningApp{t: t, cancel: cancel, done: make(chan int, 1), stderr: errb}
	go func() { ra.done <- c.main(ctx, []string{"app", "-no-browser"}) }()
	for {
		if s := out.String(); strings.Contains(s, "\n") {
			ra.url = strings.TrimSpace(s)
			break
		}
		select {
		case code := <-ra.done:
			t.Fatalf("testimony app exited with %d:\n%s", code, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	u, err := url.Parse(ra.url)
	if err != nil {
		t.Fatal(err)
	}
	ra.base = "http://" + u.Host
	t.Cleanup(ra.stop)
	return ra
}

// stop stops the app as a closed window or Ctrl-C would.
func (ra *runningApp) stop() {
	ra.once.Do(ra.stopOnce)
}

func (ra *runningApp) stopOnce() {
	ra.cancel()
	select {
	case <-ra.done:
	case <-time.After(30 * time.Second):
		ra.t.Error("the app did not stop")
	}
}

// shot writes docs/screenshots/app-NAME.png with TESTIMONY_SCREENSHOTS=1.
func shot(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	if strings.HasSuffix(name, "-resume") {
		return
	}
	b.Screenshot(t, filepath.Join("..", "..", "docs", "screenshots"), "app-"+name)
}

// testFiles are a testimony's files: a recording with a Korean name, a
// larger file and a PNG, each carrying marker.
type testFiles struct {
	dir                string
	korean, big, image string
	data               map[string][]byte
}

func makeFiles(t *testing.T, marker string) *testFiles {
	dir := t.TempDir()
	size := 3 << 20
	if os.Getenv("TESTIMONY_BIG") != "" {
		size = 50 << 20
	}
	f := &testFiles{dir: dir, data: map[string][]byte{}}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f.data[name] = data
		return p
	}
	rec := make([]byte, 300<<10)
	rand.Read(rec)
	copy(rec[1000:], marker)
	f.korean = write("면담 녹음 1.m4a", rec)
	big := make([]byte, size)
	rand.Read(big)
	copy(big[size/2:], marker)
	f.big = write("interview-video.mp4", big)
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		img.Set(x, x%30, color.RGBA{200, 30, 30, 255})
	}
	var pb bytes.Buffer
	png.Encode(&pb, img)
	pb.WriteString(marker) // after IEND: still a PNG to every viewer
	f.image = write("map.png", pb.Bytes())
	return f
}

// enrolInBrowser fills the enrolment form with the deployment's values.
func enrolInBrowser(t *testing.T, b *browsertest.Browser, d *deployment, o org, shots string) {
	t.Helper()
	b.Do(t,
		chromedp.WaitVisible(`input[name=server]`),
		chromedp.SetValue(`input[name=server]`, d.ts.URL),
		chromedp.SetValue(`input[name=pin]`, d.pin()),
		chromedp.SetValue(`input[name=token]`, d.submitTok),
		chromedp.SetValue(`input[name=org_key]`, o.verifier),
		chromedp.SetValue(`input[name=log_key]`, d.logKey),
	)
	shot(t, b, "enrol-"+shots)
	b.ClickAndLoad(t, `main form button`, `.keyname.big`)
	if got := b.Text(t, ".keyname.big"); got != shortKeyName(o.verifier) {
		t.Errorf("confirmation shows %q, want %q", got, shortKeyName(o.verifier))
	}
	shot(t, b, "confirm-"+shots)
	b.ClickAndLoad(t, `main form button`, `.checks`)
	if n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('.checks li.bad').length`)); err != nil || n != 0 {
		t.Fatalf("enrolment checks failed (%d red, %v):\n%s", n, err, b.Text(t, "main"))
	}
	// The QR code of the device key loads: the app serves it within the
	// session, and the Content-Security-Policy lets the page show it.
	width, err := chromedp.Run(b.Ctx, chromedp.Poll[int](`(() => { const i = document.querySelector('img.qr'); return i && i.complete && i.naturalWidth; })()`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil || width == 0 {
		t.Errorf("the QR code of the device key did not load (width %d, %v)", width, err)
	}
	shot(t, b, "checks-"+shots)
	if key := b.Text(t, "main"); !strings.Contains(key, "") {
		t.Error("no device key")
	}
}

func shortKeyName(vkey string) string {
	p := strings.SplitN(vkey, "+", 3)
	return p[0] + "+" + p[1]
}

// fillTestimony fills the new testimony form and adds the files: two
// through the file input, one by a drop.
func fillTestimony(t *testing.T, b *browsertest.Browser, f *testFiles, notes string) {
	t.Helper()
	b.Open(t, b.Base(t)+"/new", `#testimony`)
	b.Do(t,
		chromedp.SetValue(`input[name=case]`, "NK-2026-077"),
		chromedp.SetValue(`input[name=date]`, "2026-11-27"),
		chromedp.SetValue(`textarea[name=notes]`, notes),
		chromedp.SetValue(`input[name=label]`, "Tuesday, Seoul office"),
		chromedp.SetUploadFiles(`#files`, []string{f.korean, f.image}),
	)
	// A preset consent text fills the text area, which stays editable.
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`(function(){var s=document.getElementById('consent-preset'); s.selectedIndex=1; s.dispatchEvent(new Event('change')); return true})()`)); err != nil {
		t.Fatal(err)
	}
	b.Drop(t, "drop", f.big)
	b.Wait(t, `document.querySelectorAll('#filelist li button').length === 3`)
}

// openSubmission collects the deployment's log and decrypts submission
// id as the reviewer would, returning its manifest and files.
func openSubmission(t *testing.T, d *deployment, id string) (*envelope.Manifest, map[string][]byte) {
	t.Helper()
	col := newUser(t, d.collectTok)
	bundleDir := filepath.Join(t.TempDir(), "bundle")
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", bundleDir); code != 0 {
		t.Fatalf("collect: %s", stderr)
	}
	f, err := os.Open(filepath.Join(bundleDir, id+".age"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain, err := age.Decrypt(f, d.identity)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	os.Mkdir(out, 0o700)
	res, err := envelope.Extract(plain, out, envelope.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, fm := range res.Manifest.Files {
		data, err := os.ReadFile(filepath.Join(out, fm.Name))
		if err != nil {
			t.Fatal(err)
		}
		files[fm.Name] = data
	}
	return res.Manifest, files
}

// findMarker walks roots for marker, skipping skip.
func findMarker(t *testing.T, marker []byte, skip string, roots ...string) []string {
	var found []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if de.IsDir() {
				if p == skip {
					return filepath.SkipDir
				}
				return nil
			}
			if !de.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err == nil && bytes.Contains(data, marker) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// TestAppSubmitInBrowser: enrolment, then a testimony with notes and three
// files (a Korean name, a larger file, a PNG) added through the file input
// and a drop, sent through the app in chromium; the intake server dies
// half way and comes back, and the app finishes without a click; the
// receipt appears; the reviewer decrypts byte-identical files and the
// notes; and the plaintext marker is nowhere on the disk but in the
// original files.
func TestAppSubmitInBrowser(t *testing.T) {
	for _, lang := range []string{"en", "ko"} {
		t.Run(lang, func(t *testing.T) { testAppSubmit(t, lang) })
	}
}

func testAppSubmit(t *testing.T, lang string) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", filepath.Join(tmp, "home"))
	os.Mkdir(filepath.Join(tmp, "home"), 0o700)
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	b := browsertest.New(t, map[string]string{"en": "en-US", "ko": "ko-KR"}[lang])

	b.Open(t, ra.url, `input[name=server]`)
	// The launch token left the address bar.
	if loc, _ := chromedp.Run(b.Ctx, chromedp.Location()); strings.Contains(loc, "t=") || !strings.HasSuffix(loc, "/enrol") {
		t.Errorf("after launch the address is %s", loc)
	}
	enrolInBrowser(t, b, d, o, lang)

	marker := make([]byte, 16)
	rand.Read(marker)
	markerHex := "marker-" + hex.EncodeToString(marker)
	files := makeFiles(t, markerHex)
	notes := "면담 메모: " + markerHex + "\nthe crossing was at night\n"
	fillTestimony(t, b, files, notes)
	shot(t, b, "new-"+lang)

	// The server dies after two chunks.
	d.mu.Lock()
	d.cutAfterPuts = 2
	d.mu.Unlock()
	b.Do(t, chromedp.Click(`#send`))
	b.Wait(t, `document.getElementById('progress').getAttribute('data-phase') === 'waiting'`)
	shot(t, b, "waiting-"+lang)
	d.restart()
	b.Wait(t, `document.getElementById('progress').getAttribute('data-phase') === 'sent'`)
	if v, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.getElementById('p-bar').value`)); v != 100 {
		t.Errorf("progress at the end: %d %%", v)
	}
	shot(t, b, "sent-"+lang)
	b.ClickAndLoad(t, `#p-receipt`, `dl`)
	id := strings.TrimSpace(b.Text(t, "dd.mono"))
	if !ids.ValidSubmission(id) {
		t.Fatalf("receipt page shows id %q", id)
	}
	shot(t, b, "receipt-"+lang)
	// No case reference or file name in the title or the address.
	title, _ := chromedp.Run(b.Ctx, chromedp.Title())
	loc, _ := chromedp.Run(b.Ctx, chromedp.Location())
	for _, s := range []string{"NK-2026-077", "면담", "interview-video", "map.png", "Tuesday"} {
		if strings.Contains(title, s) || strings.Contains(loc, s) {
			t.Errorf("title %q or address %q shows %q", title, loc, s)
		}
	}

	b.Open(t, ra.base+"/outbox", `table`)
	if v, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.querySelector('input[name=label]').value`)); v != "Tuesday, Seoul office" {
		t.Errorf("outbox shows the label %q", v)
	}
	b.Do(t, chromedp.Click(`form[action="/receipts/check"] button`))
	b.Wait(t, `document.querySelector('.flash') !== null || document.querySelector('.error') !== null`)
	if text := b.Text(t, "main"); !strings.Contains(text, map[string]string{"en": "Confirmed in the log", "ko": "서버 기록에서 확인됨"}[lang]) ||
		!strings.Contains(text, map[string]string{"en": "The receipt was checked", "ko": "영수증 1건을 확인했습니다"}[lang]) {
		t.Errorf("after the check of the one receipt:\n%s", text)
	}
	shot(t, b, "outbox-"+lang)
	b.Open(t, ra.base+"/settings", `#devkey`)
	b.Wait(t, `document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`)
	shot(t, b, "settings-"+lang)

	m, got := openSubmission(t, d, id)
	if m.Case != "NK-2026-077" || m.InterviewDate != "2026-11-27" || m.Consent == "" {
		t.Errorf("manifest %+v", m)
	}
	for name, want := range files.data {
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s: decrypted %d bytes, differ from the %d sent", name, len(got[name]), len(want))
		}
	}
	if string(got["notes.txt"]) != notes {
		t.Errorf("notes.txt = %q, want %q", got["notes.txt"], notes)
	}
	if len(got) != 4 {
		t.Errorf("envelope holds %d files, want 4", len(got))
	}
	if found := findMarker(t, []byte(markerHex), files.dir, tmp, home); len(found) > 0 {
		t.Errorf("plaintext marker found in %q", found)
	}

	// The reviewer acknowledges it; the next check shows it reviewed.
	reviewed := formatDateForTest(d.acknowledge("reviewer-1", 0))[lang]
	b.Open(t, ra.base+"/outbox", `table`)
	// The mark tells this page from the one the check leads to.
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`(document.body.dataset.before = 'check', true)`)); err != nil {
		t.Fatal(err)
	}
	b.Do(t, chromedp.Click(`form[action="/receipts/check"] button`))
	b.Wait(t, `!document.body.dataset.before && (document.querySelector('.flash') !== null || document.querySelector('.error') !== null)`)
	want := map[string]string{"en": "Reviewed on " + reviewed, "ko": "검토 완료 (검토일: " + reviewed + ")"}[lang]
	if text := b.Text(t, "main"); !strings.Contains(text, want) {
		t.Errorf("after the reviewer's acknowledgement, the check shows no %q:\n%s", want, text)
	}

	// Wipe through Settings, behind the typed word.
	b.Open(t, ra.base+"/wipe", `input[name=confirm]`)
	shot(t, b, "wipe-"+lang)
	b.Do(t, chromedp.SetValue(`input[name=confirm]`, "nope"))
	b.ClickAndLoad(t, `form[action="/wipe"] button`, `.error`)
	if _, err := os.Stat(filepath.Join(home, "device.key")); err != nil {
		t.Fatalf("a wrong word wiped: %v", err)
	}
	word := map[string]string{"en": "WIPE", "ko": "삭제"}[lang]
	b.Do(t, chromedp.SetValue(`input[name=confirm]`, word))
	b.ClickAndLoad(t, `form[action="/wipe"] button`, `main ul`)
	shot(t, b, "wiped-"+lang)
	select {
	case code := <-ra.done:
		ra.done <- code
		if code != 0 {
			t.Errorf("the app exited with %d after the wipe:\n%s", code, ra.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not stop after the wipe")
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		left := []string{}
		filepath.WalkDir(home, func(p string, _ fs.DirEntry, _ error) error { left = append(left, p); return nil })
		t.Errorf("after the wipe the state directory holds %q", left)
	}
}

// TestAppResumesAfterKill: the app is stopped mid-upload; started again,
// it finishes the upload without a click.
func TestAppResumesAfterKill(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	b := browsertest.New(t, "en-US")
	b.Open(t, ra.url, `input[name=server]`)
	enrolInBrowser(t, b, d, o, "resume")
	files := makeFiles(t, "marker-resume")
	fillTestimony(t, b, files, "notes")
	d.mu.Lock()
	d.cutAfterPuts = 2
	d.mu.Unlock()
	b.Do(t, chromedp.Click(`#send`))
	b.Wait(t, `document.getElementById('progress').getAttribute('data-phase') === 'waiting'`)
	ra.stop()
	if des, _ := os.ReadDir(filepath.Join(home, "outbox")); len(des) < 2 {
		t.Fatalf("the outbox holds %d files after the kill", len(des))
	}
	d.restart()
	ra2 := startApp(t, home, nil)
	// A new session on the new app.
	b.Do(t, chromedp.Navigate(ra2.url), chromedp.WaitVisible(`nav`), chromedp.Navigate(ra2.base+"/outbox"))
	b.Wait(t, `document.querySelectorAll('a[href^="/receipt?id="]').length === 1 && document.body.textContent.indexOf('Nothing is waiting') >= 0`)
}

// appSession opens a session on the app with Go's HTTP client.
func appSession(t *testing.T, ra *runningApp) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.Get(ra.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The launch answers with a page that leads to the first page, as a
	// browser follows it.
	if resp, err = cl.Get(ra.base + "/"); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := bytes.Index(body, []byte(`name="csrf" content="`))
	if i < 0 {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	rest := body[i+len(`name="csrf" content="`):]
	return cl, string(rest[:bytes.IndexByte(rest, '"')])
}

// TestAppGuards: forged requests are refused.
func TestAppGuards(t *testing.T) {
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	cl, csrf := appSession(t, ra)
	u, _ := url.Parse(ra.base)
	port := u.Port()
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("the app listens on %s", u.Host)
	}

	do := func(method, path, host string, hdr map[string]string, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, ra.base+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ra.base}
	good := "lang=ko&back=/settings&csrf=" + csrf

	for _, tc := range []struct {
		name         string
		method, path string
		host         string
		hdr          map[string]string
		body         string
		want         int
	}{
		{"page", "GET", "/settings", "", nil, "", 200},
		// Past the Host check (Go's client sends no cookie to a Host
		// other than the URL's, so the session check answers).
		{"localhost", "GET", "/settings", "localhost:" + port, nil, "", 403},
		{"rebinding host", "GET", "/settings", "evil.example:" + port, nil, "", 421},
		{"empty host", "GET", "/settings", ":" + port, nil, "", 421},
		{"other port", "GET", "/settings", "127.0.0.1:1", nil, "", 421},
		{"good post", "POST", "/settings/lang", "", form, good, 200},
		{"no csrf", "POST", "/settings/lang", "", form, "lang=ko&back=/settings", 403},
		{"wrong csrf", "POST", "/settings/lang", "", form, "lang=ko&back=/settings&csrf=" + strings.Repeat("0", 64), 403},
		{"cross-origin", "POST", "/settings/lang", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, good, 403},
		{"cross-site fetch", "POST", "/settings/lang", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "null", "Sec-Fetch-Site": "cross-site"}, good, 403},
		{"no origin", "POST", "/settings/lang", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, good, 403},
		{"submit without csrf", "POST", "/submit", "", map[string]string{"Origin": ra.base, "Content-Type": "multipart/form-data; boundary=x"}, "--x--", 403},
	} {
		if resp := do(tc.method, tc.path, tc.host, tc.hdr, tc.body); resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		} else if tc.want != 421 {
			h := resp.Header
			if h.Get("Content-Security-Policy") == "" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s: security headers %v", tc.name, h)
			}
		}
	}
	// Without the session cookie.
	resp, err := http.Get(ra.base + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("no session: %d", resp.StatusCode)
	}
	// The launch token works once.
	jar, _ := cookiejar.New(nil)
	resp, err = (&http.Client{Jar: jar}).Get(ra.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("reused launch token: %d", resp.StatusCode)
	}
	// The cookie is HttpOnly and SameSite=Strict.
	req, _ := http.NewRequest("GET", ra.url, nil)
	ra2 := startApp(t, filepath.Join(t.TempDir(), "state2"), nil)
	req, _ = http.NewRequest("GET", ra2.url, nil)
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	launched, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The answer leads to the first page with a page of its own, not a
	// redirect: see TestAppLaunchPageInBrowser.
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") || resp.StatusCode != 200 ||
		!bytes.Contains(launched, []byte(`<meta http-equiv="refresh" content="0; url=/">`)) {
		t.Errorf("launch answer %d, Set-Cookie %q:\n%s", resp.StatusCode, c, launched)
	}

	// A second app, and a command that changes the outbox, are told.
	c2 := newUser(t, "tm1_x")
	c2.env["TESTIMONY_HOME"] = home
	_, stderr, code := c2.run("app", "-no-browser")
	if code != 1 || !strings.Contains(stderr, "the testimony app is already running") {
		t.Errorf("second app: exit %d\n%s", code, stderr)
	}
	_, stderr, code = c2.run("resume")
	if code != 1 || !strings.Contains(stderr, "or the testimony app is using") {
		t.Errorf("resume while the app runs: exit %d\n%s", code, stderr)
	}
}

// TestAppKoreanPages: every page in Korean shows no English message.
func TestAppKoreanPages(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	cl, csrf := appSession(t, ra)
	get := func(method, path string, form url.Values) string {
		t.Helper()
		var body io.Reader
		if form != nil {
			form.Set("csrf", csrf)
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, ra.base+path, body)
		req.Header.Set("Accept-Language", "ko-KR,ko;q=0.9")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", ra.base)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(data)
	}
	en := app.Messages.Messages(languageEnglish())
	check := func(name, page string) {
		t.Helper()
		if !strings.Contains(page, `lang="ko"`) {
			t.Errorf("%s is not in Korean", name)
		}
		for _, v := range en {
			// "English" is also the switch to English, written in English on purpose.
			if len(v) < 4 || strings.Contains(v, "%") || v == "English" {
				continue
			}
			if strings.Contains(page, ">"+v+"<") || strings.Contains(page, ">"+v+"\n") || strings.Contains(page, "\""+v+"\"") {
				t.Errorf("%s shows the English %q", name, v)
			}
		}
	}
	e := url.Values{"server": {d.ts.URL}, "pin": {d.pin()}, "token": {d.submitTok}, "org_key": {o.verifier}, "log_key": {d.logKey}}
	check("enrol", get("GET", "/enrol", nil))
	check("confirm", get("POST", "/enrol", e))
	e.Set("step", "confirm")
	check("enrolled", get("POST", "/enrol", e))
	check("new", get("GET", "/new", nil))
	check("outbox", get("GET", "/outbox", nil))
	check("settings", get("GET", "/settings", nil))
	check("wipe", get("GET", "/wipe", nil))
	check("not found", get("GET", "/nowhere", nil))
	check("wrong word", get("POST", "/wipe", url.Values{"confirm": {"x"}}))
	_ = fmt.Sprint
}

func languageEnglish() language.Tag { return language.English }

// TestWipeCommand: "testimony wipe" removes the whole state directory and
// refuses without the typed word.
func TestWipeCommand(t *testing.T) {
	cw := newUser(t, "tm1_x")
	if _, stderr, code := cw.run("init"); code != 0 {
		t.Fatal(stderr)
	}
	writeFile(t, filepath.Join(cw.home, "receipts", "x.json"), []byte("{}"))
	cw.stdin = strings.NewReader("no\n")
	if _, stderr, code := cw.run("wipe"); code != 1 || !strings.Contains(stderr, "nothing was removed") {
		t.Fatalf("wipe without the word: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(cw.home, "device.key")); err != nil {
		t.Fatal(err)
	}
	cw.stdin = strings.NewReader("wipe\n")
	stdout, stderr, code := cw.run("wipe")
	if code != 0 || !strings.Contains(stdout, "not erased: your original recordings") {
		t.Fatalf("wipe: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(cw.home); !os.IsNotExist(err) {
		t.Errorf("state directory left after wipe: %v", err)
	}
}
