package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/testimony-ngo/testimony/tools/internal/browsertest"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/app"
)

// TestAppLaunchPage: the browser opener gets the path of a page only the
// caseworker can read, never the one-time address, whose token any user
// of the computer could read on a command line. The page leads to the
// address and is gone once the token is used.
func TestAppLaunchPage(t *testing.T) {
	home := filepath.Join(t.TempDir(), "state")
	// A launch page left by an app that was killed.
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := writeFile(t, filepath.Join(home, "launch-1.html"), []byte("old"))
	opened := make(chan string, 1)
	ra := startAppWith(t, home, nil, func(cfg *app.Config) {
		cfg.OpenBrowser = func(page string) error {
			opened <- page
			return nil
		}
	})
	page := <-opened
	u, err := url.Parse(ra.url)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("t")
	if len(token) < 32 {
		t.Fatalf("launch address %s has no token", ra.url)
	}
	for _, goos := range []string{runtime.GOOS, "linux", "darwin", "windows"} {
		argv := browserCommand(goos, page)
		if s := strings.Join(argv, " "); strings.Contains(s, token) || argv[len(argv)-1] != page {
			t.Errorf("%s: the opener's command line is %q", goos, s)
		}
	}
	fi, err := os.Stat(page)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(page) != home || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Errorf("launch page %s has mode %v", page, fi.Mode().Perm())
	}
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if want := `<meta http-equiv="refresh" content="0; url=` + strings.ReplaceAll(ra.url, "&", "&amp;") + `">`; !strings.Contains(string(data), want) {
		t.Errorf("the launch page does not lead to %s:\n%s", ra.url, data)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a launch page of an earlier run is still there: %v", err)
	}

	appSession(t, ra) // the browser follows the page and uses the token
	if _, err := os.Stat(page); !os.IsNotExist(err) {
		t.Errorf("the launch page is still there after the token was used: %v", err)
	}
}

// TestAppLaunchPageInBrowser: a real browser given the launch page's path,
// as the opener gives it, arrives in a session on the app.
func TestAppLaunchPageInBrowser(t *testing.T) {
	home := filepath.Join(t.TempDir(), "state")
	opened := make(chan string, 1)
	ra := startAppWith(t, home, nil, func(cfg *app.Config) {
		cfg.OpenBrowser = func(page string) error {
			opened <- page
			return nil
		}
	})
	page := <-opened
	b := browsertest.New(t, "en-US")
	// Bounded, so that a page that never arrives fails in a minute.
	ctx, cancel := context.WithTimeout(b.Ctx, time.Minute)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Navigate((&url.URL{Scheme: "file", Path: filepath.ToSlash(page)}).String()))
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.WaitVisible(`input[name=server]`))
	}
	var loc string
	if err == nil {
		loc, err = chromedp.Run(ctx, chromedp.Location())
	}
	if err != nil || !strings.HasPrefix(loc, ra.base+"/") || strings.Contains(loc, "launch") {
		t.Errorf("the browser is at %q (%v), want a page of the app at %s", loc, err, ra.base)
	}
	if _, err := os.Stat(page); !os.IsNotExist(err) {
		t.Errorf("the launch page is still there after the browser used it: %v", err)
	}
}
