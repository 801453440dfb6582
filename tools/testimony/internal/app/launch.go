package app

// The one-time launch address holds the launch token. Passed to the
// browser opener (xdg-open, open, rundll32) on its command line, it would
// be readable by every other user of the computer for as long as the
// opener and the browser it starts run (/proc/PID/cmdline, ps, Task
// Manager), and whoever reads it first gets the session. So the opener is
// given the path of a small page, readable only by the caseworker, that
// sends the browser on to the address. The page is removed as soon as the
// token is used, after launchFileLife, and when the app stops.

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"time"
)

const (
	// launchFilePattern names the launch page in the state directory.
	launchFilePattern = "launch-*.html"
	// launchFileLife is how long the launch page is kept if the token is
	// not used: a slow laptop may take a while to start its browser.
	launchFileLife = 2 * time.Minute
)

// writeLaunchFile writes the launch page for url, mode 0600, and returns
// its path.
func (a *App) writeLaunchFile(url string) (string, error) {
	f, err := os.CreateTemp(a.cfg.StateDir, launchFilePattern)
	if err != nil {
		return "", fmt.Errorf("failed to write the launch page: %w", err)
	}
	u := html.EscapeString(url)
	_, err = fmt.Fprintf(f, `<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0; url=%s"><title>testimony</title></head>
<body><p><a href="%s">testimony</a></p></body></html>
`, u, u)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("failed to write the launch page: %w", err)
	}
	a.mu.Lock()
	a.launchFile = f.Name()
	a.mu.Unlock()
	time.AfterFunc(launchFileLife, a.removeLaunchFile)
	return f.Name(), nil
}

// removeLaunchFile removes the launch page, if it is still there.
func (a *App) removeLaunchFile() {
	a.mu.Lock()
	name := a.launchFile
	a.launchFile = ""
	a.mu.Unlock()
	if name != "" {
		os.Remove(name)
	}
}

// removeStaleLaunchFiles removes launch pages an app that was killed left
// behind; their tokens died with it.
func removeStaleLaunchFiles(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, launchFilePattern))
	for _, n := range names {
		os.Remove(n)
	}
}
