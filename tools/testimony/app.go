package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/app"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/devicekey"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
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
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	noBrowser := fs.Bool("no-browser", false, "")
	var rate rateFlag
	fs.Var(&rate, "limit-rate", "")
	if err := c.parseFlags(fs, appUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("app takes no arguments")
	}
	h, err := c.openHome(true)
	if err != nil {
		return err
	}
	unlock, err := h.outbox().Lock()
	if errors.Is(err, outbox.ErrLocked) {
		return errorf("the testimony app is already running, or another testimony command is using %s", h.dir).
			Hint("use the app's browser window that is already open; if there is none, wait for the other testimony command to finish, then run 'testimony app' again")
	}
	if err != nil {
		return errorf("%v", err)
	}
	locked := true
	release := func() {
		if locked {
			unlock()
			locked = false
		}
	}
	defer release()
	b := &appBackend{c: c, home: h.dir, rate: int64(rate)}
	cfg := app.Config{
		Backend:   b,
		StateDir:  h.dir,
		Languages: []string{localeFromEnv(c.getenv)},
		Stdout:    c.stdout,
		Stderr:    c.stderr,
		Wipe: func() (app.WipeReport, error) {
			release()
			return app.Wipe(h.dir)
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
		return errorf("%v", err)
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

// openBrowser opens url, the app's own 127.0.0.1 address, in the default
// browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

func (c *cli) wipe(args []string) error {
	fl := flag.NewFlagSet("wipe", flag.ContinueOnError)
	yes := fl.Bool("yes", false, "")
	if err := c.parseFlags(fl, wipeUsage, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageErrorf("wipe takes no arguments")
	}
	h, err := c.openHome(false)
	if err != nil {
		return err
	}
	if _, err := os.Stat(h.dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stdout, "nothing to wipe: %s does not exist\n", h.dir)
		return nil
	}
	unlock, err := h.lockOutbox()
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(c.stderr, "testimony: this removes everything in %s, including testimony not yet sent; type wipe to go on: ", h.dir)
		line, _ := bufio.NewReader(c.stdinReader()).ReadString('\n')
		if strings.TrimSpace(line) != "wipe" {
			unlock()
			return errorf("nothing was removed").Hint("type the word wipe to confirm, or pass -yes")
		}
	}
	unlock()
	rep, err := app.Wipe(h.dir)
	if err != nil {
		return errorf("%v", err).Hint("some files in %s could not be removed; remove them by hand", h.dir)
	}
	fmt.Fprintf(c.stdout, "removed %s: %d file(s), each overwritten first\n", h.dir, rep.Files)
	fmt.Fprintln(c.stdout, "not erased: your original recordings and documents; traces an SSD may keep of overwritten data;")
	fmt.Fprintln(c.stdout, "the browser's history of the app's pages (127.0.0.1 addresses only); the testimony program itself")
	return nil
}

// appBackend runs the app's requests with the CLI's own code: each call
// gets a cli like the one that runs a command, with the app's hooks, the
// token kept in the state directory, and the outbox lock marked as held
// (the app holds it). See app.Backend.
type appBackend struct {
	c    *cli
	home string
	rate int64 // -limit-rate, 0 for none
}

// tokenPath is where the token for server is kept, the file init -enrol
// writes (tokens/<host>_<port>), so the app and the commands share it.
func (b *appBackend) tokenPath(server string) string {
	u, err := api.ParseServer(server)
	if err != nil {
		return ""
	}
	return (&home{dir: b.home}).tokenPath(api.HostPort(u))
}

// cli returns a cli for one call: output is collected, not printed.
func (b *appBackend) cli(ev app.Events) (*cli, *bytes.Buffer) {
	var out bytes.Buffer
	c := *b.c
	c.stdout, c.stderr, c.stdin = &out, io.Discard, nil
	c.terminal = false
	c.outboxHeld = true
	c.hooks = hooks{progress: ev.Progress, encrypted: ev.Encrypted, sending: ev.Sending, retrying: ev.Retrying, sent: ev.Sent}
	return &c, &out
}

// message is err as the CLI prints it, without the prefixes.
func message(err error) string {
	var buf bytes.Buffer
	printError(&buf, "", err)
	s := strings.ReplaceAll(buf.String(), "testimony: error: ", "")
	s = strings.ReplaceAll(s, "testimony: hint: ", "")
	return strings.TrimSpace(s)
}

type msgError struct{ msg string }

func (e msgError) Error() string { return e.msg }

func wrapMsg(err error) error {
	if err == nil {
		return nil
	}
	return msgError{message(err)}
}

func (b *appBackend) Setup(server string) (app.Setup, error) {
	var s app.Setup
	h := &home{dir: b.home}
	t, err := pin.LoadTrust(h.trustPath())
	if err != nil {
		return s, err
	}
	s.OrgKey, s.LogKey = t.OrgKey, t.LogKey
	if priv, err := devicekey.Load(h.deviceKeyPath()); err == nil {
		s.DeviceKey = envelope.DeviceKeyString(priv.Public().(ed25519.PublicKey))
	}
	if p := b.tokenPath(server); p != "" {
		if _, err := os.Stat(p); err == nil {
			s.HasToken = true
		}
	}
	if server != "" {
		s.Server = server
		if u, err := api.ParseServer(server); err == nil {
			if rem, err := h.tlsStore().Load(api.HostPort(u)); err == nil {
				s.TLSPin, s.TLSCA = rem.Pin, rem.CA != ""
			}
		}
	}
	return s, nil
}

func (b *appBackend) Enrol(ctx context.Context, e app.Enrolment) []app.Check {
	bad := func(err error) []app.Check {
		return []app.Check{{Step: app.StepInput, Detail: message(err)}}
	}
	if _, err := api.ParseServer(e.Server); err != nil {
		return bad(err)
	}
	if e.Pin != "" {
		if _, err := parsePinFlag(e.Pin); err != nil {
			return bad(err)
		}
	}
	for _, k := range []string{e.OrgKey, e.LogKey} {
		if k == "" {
			continue
		}
		if err := pin.CheckKey(k); err != nil {
			return bad(err)
		}
	}
	if strings.ContainsAny(e.Token, " \t\r\n") || e.Token == "" {
		return bad(errors.New("the access token is one line like tm1_…, without spaces"))
	}
	checks := []app.Check{{Step: app.StepInput, OK: true}}
	if err := os.MkdirAll(b.home, 0o700); err != nil {
		return append(checks, app.Check{Step: app.StepDeviceKey, Detail: err.Error()})
	}
	u, err := api.ParseServer(e.Server)
	if err != nil {
		return bad(err)
	}
	tokenPath, err := saveToken(&home{dir: b.home}, u, e.Token)
	if err != nil {
		return append(checks, app.Check{Step: app.StepServer, Detail: err.Error()})
	}
	// Keys first, without the server, so each failure has its own line.
	args := []string{"-org-key", e.OrgKey}
	if e.LogKey != "" {
		args = append(args, "-log-key", e.LogKey)
	}
	c, _ := b.cli(app.Events{})
	if err := c.init(ctx, args); err != nil {
		msg := message(err)
		step := app.StepOrgKey
		if strings.Contains(msg, "log key") {
			checks = append(checks, app.Check{Step: app.StepOrgKey, OK: true})
			step = app.StepLogKey
		}
		return append(checks, app.Check{Step: step, Detail: msg})
	}
	checks = append(checks, app.Check{Step: app.StepOrgKey, OK: true})
	if e.LogKey != "" {
		checks = append(checks, app.Check{Step: app.StepLogKey, OK: true})
	}
	checks = append(checks, app.Check{Step: app.StepDeviceKey, OK: true})
	args = []string{"-server", e.Server, "-token-file", tokenPath}
	if e.Pin != "" {
		args = append(args, "-pin", e.Pin)
	}
	if e.CA != "" && e.Pin == "" {
		// A CA certificate from an enrolment file: init -ca reads it
		// from a file and remembers it; it is not secret.
		f, err := os.CreateTemp(b.home, "enrol-ca-*.pem")
		if err != nil {
			return append(checks, app.Check{Step: app.StepServer, Detail: err.Error()})
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(e.CA)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return append(checks, app.Check{Step: app.StepServer, Detail: err.Error()})
		}
		args = append(args, "-ca", f.Name())
	}
	c, _ = b.cli(app.Events{})
	if err := c.init(ctx, args); err != nil {
		return append(checks, app.Check{Step: app.StepServer, Detail: message(err)})
	}
	return append(checks, app.Check{Step: app.StepServer, OK: true})
}

func (b *appBackend) Submit(ctx context.Context, server string, meta envelope.Meta, sources []envelope.Source, ev app.Events) (string, error) {
	c, _ := b.cli(ev)
	id, err := c.submitTo(ctx, submitOptions{cf: connFlags{server: server, tokenFile: b.tokenPath(server)}, rate: b.rate},
		func(w io.Writer, signer ed25519.PrivateKey) error {
			_, err := envelope.BuildSources(w, meta, sources, signer)
			return err
		})
	return id, wrapMsg(err)
}

func (b *appBackend) Resume(ctx context.Context, ev app.Events) error {
	c, _ := b.cli(ev)
	return wrapMsg(c.resume(ctx, []string{"-limit-rate", fmt.Sprint(b.rate)}))
}

func (b *appBackend) Outbox() (app.Outbox, error) {
	var o app.Outbox
	h := &home{dir: b.home}
	l, err := h.outbox().List()
	if err != nil {
		return o, err
	}
	for _, e := range l.Entries {
		o.Pending = append(o.Pending, app.Pending{Name: e.Name, Created: e.Meta.Created, Size: e.Meta.Size, UploadStarted: e.Meta.UploadID != ""})
	}
	rs, _, err := h.receipts()
	if err != nil {
		return o, err
	}
	for _, r := range rs {
		o.Sent = append(o.Sent, app.Sent{ID: r.ID, Received: r.Received, Size: r.Size, Index: r.Index, Checkpoint: r.Checkpoint})
	}
	return o, nil
}

func (b *appBackend) VerifyReceipts(ctx context.Context, server string) (app.Verification, error) {
	c, out := b.cli(app.Events{})
	err := c.receiptsVerify(ctx, []string{"-server", server, "-token-file", b.tokenPath(server)})
	var v app.Verification
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "ok":
			v.OK = append(v.OK, f[1])
		case len(f) >= 2 && f[0] == "FAILED":
			v.Failed = append(v.Failed, f[1])
		}
	}
	v.Err = wrapMsg(err)
	return v, nil
}

func (b *appBackend) RemoveSent() (int, error) {
	h := &home{dir: b.home}
	ob := h.outbox()
	l, err := ob.List()
	if err != nil {
		return 0, err
	}
	rs, _, err := h.receipts()
	if err != nil {
		return 0, err
	}
	sent := map[string]bool{}
	for _, r := range rs {
		sent[r.SHA256] = true
	}
	n := 0
	for i := range l.Entries {
		e := &l.Entries[i]
		if sent[e.Meta.SHA256] {
			if err := ob.Remove(e); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
