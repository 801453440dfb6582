package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/app"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
)

const appUsage = `Usage:
    testimony app [-no-browser] [-limit-rate RATE]

Starts the caseworker's app: a page in your web browser, in Korean or
English, to set up this laptop, send testimony with its files and notes,
follow the outbox and check the receipts. It uses the same state
directory, outbox and receipts as the other commands.

The app serves only this computer (127.0.0.1). It prints a one-time
address and opens it in the default browser; the address works once.
Keep this window open while the app runs; close it (or press Ctrl-C) to
stop the app. Uploads left unfinished continue when it starts again.

Options:
    -no-browser        Only print the address; open it yourself.
    -limit-rate RATE   Upload at most RATE bytes per second on average (like
                       64K or 2M), to spare a slow or watched link.
`

const wipeUsage = `Usage:
    testimony wipe [-yes]

Removes everything testimony keeps on this laptop: the outbox (testimony
not yet sent is lost), the receipts, the device key, the access token,
the pinned keys and the app's settings. Each file is overwritten before
it is removed. Asks you to type "wipe" first, unless -yes is given.

It cannot erase your original recordings and documents, traces an SSD
keeps of overwritten data, the browser's history of the app's pages
(which holds no case or file names), or the testimony program itself.
`

func (c *cli) appCmd(ctx context.Context, args []string) error {
	fs := cmdline.NewFlagSet("app")
	noBrowser := fs.Bool("no-browser", false, "")
	var rate rateFlag
	fs.Var(&rate, "limit-rate", "")
	if err := c.parseFlags(fs, appUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Errorf("app takes no arguments").Usage("")
	}
	cw := c.client()
	dir, err := cw.StateDir(true)
	if err != nil {
		return err
	}
	unlock, err := cw.TryLockOutbox()
	if errors.Is(err, outbox.ErrLocked) {
		return cmdline.Errorf("the testimony app is already running, or another testimony command is using %s", dir).
			Hint(`use the app's browser window that is already open; if there is none, wait for the other testimony command to finish, then run "testimony app" again`)
	}
	if err != nil {
		return cmdline.Errorf("%v", err)
	}
	locked := true
	release := func() {
		if locked {
			unlock()
			locked = false
		}
	}
	defer release()
	// The app's operations report to the app, not to this window, and
	// run under the lock held here.
	cw.OutboxHeld, cw.Events = true, nil
	cfg := app.Config{
		Client:    cw,
		RateLimit: int64(rate),
		StateDir:  dir,
		Languages: []string{localeFromEnv(c.getenv)},
		Stdout:    c.stdout,
		Stderr:    c.stderr,
		Wipe: func() (app.WipeReport, error) {
			release()
			return app.Wipe(dir)
		},
	}
	if !*noBrowser {
		cfg.OpenBrowser = openBrowser
	}
	if c.appConfig != nil {
		c.appConfig(&cfg)
	}
	a, err := app.New(cfg)
	if err != nil {
		return cmdline.Errorf("%v", err)
	}
	c.notef("the app runs at the address below; keep this window open while you use it, and close it to stop the app")
	return a.Serve(ctx)
}

func localeFromEnv(getenv func(string) string) string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := getenv(v); s != "" {
			return s
		}
	}
	return ""
}

// openBrowser opens page, the app's launch page (a local file), in the
// default browser.
func openBrowser(page string) error {
	argv := browserCommand(runtime.GOOS, page)
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// browserCommand is the command line that opens page with the system's
// default handler on goos. Every user of the computer can read it while it
// runs, so page is a file path, never the app's address with its token.
func browserCommand(goos, page string) []string {
	switch goos {
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler", page}
	case "darwin":
		return []string{"open", page}
	}
	return []string{"xdg-open", page}
}

func (c *cli) wipe(args []string) error {
	fl := cmdline.NewFlagSet("wipe")
	yes := fl.Bool("yes", false, "")
	if err := c.parseFlags(fl, wipeUsage, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return cmdline.Errorf("wipe takes no arguments").Usage("")
	}
	cw := c.client()
	dir, err := cw.StateDir(false)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stdout, "nothing to wipe: %s does not exist\n", dir)
		return nil
	}
	unlock, err := cw.LockOutbox()
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(c.stderr, "testimony: this removes everything in %s, including testimony not yet sent; type wipe to go on: ", dir)
		line, _ := bufio.NewReader(c.stdinReader()).ReadString('\n')
		if strings.TrimSpace(line) != "wipe" {
			unlock()
			return cmdline.Errorf("nothing was removed").Hint("type the word wipe to confirm, or pass -yes")
		}
	}
	unlock()
	rep, err := app.Wipe(dir)
	if err != nil {
		return cmdline.Errorf("%v", err).Hint("some files in %s could not be removed; remove them by hand", dir)
	}
	fmt.Fprintf(c.stdout, "removed %s: %d file(s), each overwritten first\n", dir, rep.Files)
	fmt.Fprintln(c.stdout, "not erased: your original recordings and documents; traces an SSD may keep of overwritten data;")
	fmt.Fprintln(c.stdout, "the browser's history of the app's pages (127.0.0.1 addresses only); the testimony program itself")
	return nil
}
