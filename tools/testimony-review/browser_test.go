package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// envScreenshots, set to 1, makes TestCaseViewInBrowser write its
// screenshots into docs/screenshots (CI leaves it unset, so the tree stays
// clean).
const envScreenshots = "TESTIMONY_SCREENSHOTS"

// TestCaseViewInBrowser opens a real bundle with the command, then loads
// the case view from file:// in headless chromium: the content shows, the
// recording and the picture load, nothing is logged as an error (a CSP
// violation would be), and no request leaves file://.
func TestCaseViewInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required in CI: %v (apt-get install chromium)", err)
		}
		t.Skipf("no chromium: %v", err)
	}
	dir := t.TempDir()
	t.Setenv(state.EnvHome, filepath.Join(dir, "home"))
	key := filepath.Join(dir, "reviewer.key")
	mustRun(t, "keygen", "-x25519", "-o", key)
	id, err := age.ParseX25519Identity(strings.TrimSpace(lastLine(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	_, logKey := fixture.LogKey()
	mustRun(t, "log", "trust", logKey)
	mustRun(t, "caseworkers", "add", "김지원", deviceKey(caseworkerSeed))

	src := filepath.Join(dir, "src")
	files := map[string][]byte{
		"면담 녹음.wav":     wavTone(1.5),
		"현장 사진.png":     pngPicture(t),
		"면담 기록.txt":     []byte("2026년 11월 20일 면담 기록\n\n증언자는 2019년 겨울 두만강을 건넜다고 진술했습니다.\n수용소에서 본 일을 순서대로 설명했습니다.\n"),
		"follow-up.wav": wavTone(0.8),
		"notes.txt":     []byte("Follow-up call: the witness confirmed the dates.\n"),
	}
	for name, data := range files {
		if err := os.MkdirAll(src, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	paths := func(names ...string) []string {
		var p []string
		for _, n := range names {
			p = append(p, filepath.Join(src, n))
		}
		return p
	}
	l := fixture.NewLog()
	for i, s := range []struct {
		meta   envelope.Meta
		signer ed25519.PrivateKey
		files  []string
	}{
		{envelope.Meta{Case: "K-2026-098", InterviewDate: "2026-10-02", Language: "ko", Consent: "검토 목적에 한해 사용 동의"}, fixture.DeviceKey(strangerSeed), paths("follow-up.wav")},
		{envelope.Meta{Case: "K-2026-117", InterviewDate: "2026-11-20", Language: "ko", Consent: "검토 및 법률 지원 목적 사용에 동의"}, fixture.DeviceKey(caseworkerSeed), paths("면담 녹음.wav", "현장 사진.png", "면담 기록.txt")},
		{envelope.Meta{Case: "K-2026-117", InterviewDate: "2026-11-24", Language: "en"}, nil, paths("notes.txt")},
	} {
		ct, err := fixture.Encrypt([]age.Recipient{id.Recipient()}, fixture.Envelope(s.meta, s.signer, s.files...), false)
		if err != nil {
			t.Fatal(err)
		}
		l.Append(fmt.Sprintf("%032x", i+1), ct)
	}
	bundleDir := filepath.Join(dir, "usb", "bundle-2026-11-28")
	if err := l.WriteBundle(bundleDir, 0, l.Size(), fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cases")
	stdout := mustRun(t, "open", "-i", key, "-o", out, "-lang", "en", bundleDir)
	if !strings.Contains(stdout, "case view: "+filepath.Join(out, "index.html")) {
		t.Fatalf("open does not point to the case view:\n%s", stdout)
	}
	const signed = "00000000000000000000000000000002"

	b := newBrowser(t)
	shots := os.Getenv(envScreenshots) == "1"
	for _, lang := range []struct {
		code, title, open, caseworker string
	}{
		{"en", "Testimony case view", "Open", "Signed on the device of a caseworker registered on this machine: 김지원"},
		{"ko", "증언 사건 열람", "열기", "이 컴퓨터에 등록된 담당자의 기기에서 서명되었습니다. 담당자: 김지원"},
	} {
		mustRun(t, "index", "-o", out, "-lang", lang.code)
		index := b.page(t, "file://"+filepath.Join(out, "index.html"), `a[href="pages/`+signed+`.html"]`)
		b.screenshot(t, shots, "case-view-index-"+lang.code+".png")
		if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`a[href="pages/`+signed+`.html"]`))); err != nil {
			t.Fatalf("failed to follow the link to the submission: %v", err)
		}
		// Loaded means the file:// URL resolved and the CSP allowed it.
		mustEval[bool](t, b, `(() => { const a = document.querySelector("audio"), i = document.querySelector("img");
			return a.readyState >= 1 && i.complete && i.naturalWidth > 0; })()`, true)
		duration := mustEval[float64](t, b, `document.querySelector("audio").duration`, false)
		imgWidth := mustEval[int](t, b, `document.querySelector("img").naturalWidth`, false)
		subPage, err := chromedp.Run(b.ctx, chromedp.Text("body"))
		if err != nil {
			t.Fatal(err)
		}
		b.screenshot(t, shots, "case-view-submission-"+lang.code+".png")
		for _, want := range []string{lang.title, "K-2026-117", "K-2026-098", lang.open, "김지원"} {
			if !strings.Contains(index, want) {
				t.Errorf("%s index.html does not show %q:\n%s", lang.code, want, index)
			}
		}
		for _, want := range []string{"K-2026-117", lang.caseworker, "면담 녹음.wav", "현장 사진.png", "증언자는 2019년 겨울 두만강을 건넜다고 진술했습니다.", "검토 및 법률 지원 목적 사용에 동의"} {
			if !strings.Contains(subPage, want) {
				t.Errorf("%s submission page does not show %q:\n%s", lang.code, want, subPage)
			}
		}
		if math.Abs(duration-1.5) > 0.05 || imgWidth != 480 {
			t.Errorf("%s: the recording lasts %.2fs (want 1.5) and the picture is %d pixels wide (want 480)", lang.code, duration, imgWidth)
		}
	}
	b.check(t)
}

// browser is a headless chromium whose console errors and network
// requests are recorded.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	errs     []string
}

func newBrowser(t *testing.T) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	// The timeout only ends a hung browser; nothing is asserted about time.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(ctx)
	t.Cleanup(cancelCtx)
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, ev.Request.URL)
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				b.errs = append(b.errs, "loading failed: "+ev.ErrorText)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				b.errs = append(b.errs, fmt.Sprintf("console.%s: %v", ev.Type, ev.Args))
			}
		case *runtime.EventExceptionThrown:
			b.errs = append(b.errs, "exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				b.errs = append(b.errs, fmt.Sprintf("%s %s: %s (%s)", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("failed to start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("failed to start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// page loads url and waits for sel, and returns the page's text.
func (b *browser) page(t *testing.T, url, sel string) string {
	t.Helper()
	b.do(t, chromedp.Navigate(url), chromedp.WaitVisible(sel))
	text, err := chromedp.Run(b.ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatalf("failed to read %s: %v", url, err)
	}
	return text
}

func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// mustEval evaluates expr; with poll, it waits until expr is true.
func mustEval[T any](t *testing.T, b *browser, expr string, poll bool) T {
	t.Helper()
	var v T
	var err error
	if poll {
		v, err = chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(30*time.Second)))
	} else {
		v, err = chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	}
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// check fails the test on any error logged and any request that is not
// for a file:// URL, and unless requests were seen at all.
func (b *browser) check(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("browser: %s", e)
	}
	files := 0
	for _, u := range b.requests {
		// Chromium's own audio and video controls draw their icons from
		// data: URLs, which are no request to anywhere; the pages
		// themselves hold no data: URL (casebook's tests check every link).
		if strings.HasPrefix(u, "data:image/svg+xml;") {
			continue
		}
		if !strings.HasPrefix(u, "file://") {
			t.Errorf("the case view requested %s", u)
			continue
		}
		files++
	}
	// index.html, style.css, the page, the recording and the picture, twice.
	if files < 8 {
		t.Errorf("only %d file:// requests seen (%q): is the network listener working?", files, b.requests)
	}
}

// screenshot writes a full-page screenshot into docs/screenshots when
// enabled.
func (b *browser) screenshot(t *testing.T, enabled bool, name string) {
	t.Helper()
	if !enabled {
		return
	}
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustRun runs the command in-process and returns its standard output.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", prog, strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lastLine returns the last non-comment line of a file.
func lastLine(t *testing.T, name string) string {
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}

// wavTone is a mono 16-bit 16 kHz WAV file of a soft tone lasting sec
// seconds.
func wavTone(sec float64) []byte {
	const rate = 16000
	n := int(sec * rate)
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1)) // PCM
	w(uint16(1)) // mono
	w(uint32(rate))
	w(uint32(2 * rate))
	w(uint16(2))
	w(uint16(16))
	b.WriteString("data")
	w(uint32(2 * n))
	for i := range n {
		w(int16(3000 * math.Sin(2*math.Pi*440*float64(i)/rate)))
	}
	return b.Bytes()
}

// pngPicture is a 480×320 picture (sky, hills, a house) for the page to
// show.
func pngPicture(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 480, 320))
	for y := range 320 {
		for x := range 480 {
			c := color.RGBA{uint8(150 + y/6), uint8(190 + y/8), 235, 255}
			if float64(y) > 210+25*math.Sin(float64(x)/60) {
				c = color.RGBA{70, uint8(130 + y/10), 70, 255}
			}
			if x > 300 && x < 380 && y > 170 && y < 240 {
				c = color.RGBA{200, 120, 80, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
