// Package browsertest drives Debian's headless chromium from Go tests
// through chromedp, for the tests of the caseworker's app. Only tests
// import it. With CI set, a missing chromium fails the test instead of
// skipping it.
package browsertest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium, which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// Browser is one headless chromium with a fresh profile.
type Browser struct {
	Ctx context.Context
}

// New starts chromium with lang as its language (like "ko-KR").
func New(t *testing.T, lang string) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required in CI: %v (apt-get install chromium)", err)
		}
		t.Skipf("no chromium: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
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
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	}
	// The timeout only ends a hung browser; nothing is asserted about time.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(ctx)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("failed to start chromium: %v", err)
	}
	return &Browser{Ctx: ctx}
}

// StepTimeout bounds one Do or Wait: a step that has not happened by then
// fails the test with the page it was on, instead of holding the package
// until the browser's own deadline or go test's. Steps wait for the app,
// never for a transfer that grows with a test's size.
const StepTimeout = 3 * time.Minute

// Do runs actions and fails the test on an error.
func (b *Browser) Do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(t, err.Error())
	}
}

// fail logs every goroutine and fails the test with msg and the page shown.
func (b *Browser) fail(t *testing.T, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Text("body"))
	logStacks(t)
	t.Fatalf("%s; page %s:\n%s", msg, loc, body)
}

// logStacks logs every goroutine of the test binary, where the app under
// test runs too: when the browser gives up, they show whether the app or
// the browser was stuck.
func logStacks(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4<<20)
	t.Logf("goroutines when the browser gave up:\n%s", buf[:runtime.Stack(buf, true)])
}

// Open navigates to url, waits until sel is visible and the page's script
// has attached its handlers (the app's deferred script marks the document
// with data-ready when it has): a file dropped or chosen before that would
// be lost, and the test would wait for nothing.
func (b *Browser) Open(t *testing.T, url, sel string) {
	t.Helper()
	b.Do(t, chromedp.Navigate(url), chromedp.WaitVisible(sel))
	b.Ready(t)
}

// Ready waits until the page's script has run (see Open).
func (b *Browser) Ready(t *testing.T) {
	t.Helper()
	b.Wait(t, `document.documentElement.hasAttribute('data-ready')`)
}

// Text returns the text of the first element matching sel.
func (b *Browser) Text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Eval evaluates a JavaScript expression.
func Eval[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// Wait polls a JavaScript condition until it is true, for up to
// StepTimeout; errors while the page navigates or reloads itself are
// retried.
func (b *Browser) Wait(t *testing.T, expr string) {
	t.Helper()
	b.WaitFor(t, StepTimeout, expr)
}

// WaitFor is Wait for up to d, for a step that waits for a transfer.
func (b *Browser) WaitFor(t *testing.T, d time.Duration, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for b.Ctx.Err() == nil && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.fail(t, "gave up waiting for "+expr)
}

// ClickAndLoad clicks sel, a link or a form's button that leads to another
// page, and waits until that page has loaded, its script has run and
// until (a selector) is visible in it. It polls with scripts, which
// survive the navigation, where chromedp's WaitVisible after a click has
// hung under load; and a page that answers with something else fails at
// once with what it shows instead of waiting for nothing.
func (b *Browser) ClickAndLoad(t *testing.T, sel, until string) {
	t.Helper()
	Eval[bool](t, b, `(window.__testimonyOld = true)`)
	b.Do(t, chromedp.Click(sel))
	b.Wait(t, `!window.__testimonyOld && document.readyState === 'complete' && document.documentElement.hasAttribute('data-ready') && (function(){var e=document.querySelector(`+quote(until)+`); return !!e && e.getClientRects().length > 0})()`)
}

// Base is the scheme and host of the page shown, like http://127.0.0.1:PORT.
func (b *Browser) Base(t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// Drop drops files on the element with id, as a person dragging them
// from a file manager would (trusted drag events, not a script's).
func (b *Browser) Drop(t *testing.T, id string, files ...string) {
	t.Helper()
	b.Ready(t)
	pos := Eval[[]float64](t, b, `(function(){var d=document.getElementById(`+quote(id)+`); d.scrollIntoView(); var r=d.getBoundingClientRect(); return [r.x+r.width/2, r.y+r.height/2]})()`)
	data := &input.DragData{Files: files, DragOperationsMask: 1}
	for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
		if _, err := chromedp.Call(b.Ctx, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: pos[0], Y: pos[1], Data: data}); err != nil {
			t.Fatal(err)
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// Screenshot writes dir/NAME.png when TESTIMONY_SCREENSHOTS is set.
func (b *Browser) Screenshot(t *testing.T, dir, name string) {
	t.Helper()
	if os.Getenv("TESTIMONY_SCREENSHOTS") == "" {
		return
	}
	buf, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
