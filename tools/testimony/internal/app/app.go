// Package app is the caseworker's app: "testimony app" serves a small web
// UI on 127.0.0.1 for people who are not programmers — enrolment, a new
// testimony with its files and notes, the outbox and receipts, settings
// and wiping the laptop — in Korean and English.
//
// The app holds no logic of its own about envelopes, keys, uploads or
// receipts: it calls package caseworker, which runs the same code for the
// commands, and follows its progress through the events that package
// reports. Everything it serves is embedded; pages are plain html/template
// with one stylesheet and one small script, under a strict
// Content-Security-Policy. Plaintext never touches the disk: files from
// the browser are read from the request stream and held, until they are
// encrypted for the reviewers, only as ciphertext under a key that exists
// in memory (see spool.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// Config says what the app serves.
type Config struct {
	// Client runs the operations; it must not take the outbox lock
	// (OutboxHeld), which the caller holds while the app runs.
	Client *caseworker.Client
	// RateLimit is the most bytes per second to upload; 0 for no limit.
	RateLimit int64
	// StateDir is the client's state directory (TESTIMONY_HOME); the app
	// keeps app.json and its spool there.
	StateDir string
	// Languages are the browser's preferences when no language was
	// chosen yet (Accept-Language is used per request on top).
	Languages []string
	// Stdout gets the address to open; Stderr the app's notes.
	Stdout, Stderr io.Writer
	// OpenBrowser opens the local file page in the default browser; nil
	// opens nothing. The page sends the browser on to the one-time
	// address, which is therefore never on a command line (launch.go).
	OpenBrowser func(page string) error
	// RetryEvery is how long the sender waits after a failure before it
	// tries the outbox again (default one minute).
	RetryEvery time.Duration
	// Wipe removes the state directory; set by main (it also needs the
	// lock released). nil hides nothing but makes the button fail.
	Wipe func() (WipeReport, error)
	// Listen, if set, replaces net.Listen (tests).
	Listen func() (net.Listener, error)
}

// App is one running app.
type App struct {
	cfg      Config
	port     string
	sessions *sessions
	state    *stateFile
	pages    *pages

	// work serialises every Client call that touches the outbox.
	work sync.Mutex
	wake chan struct{}

	mu   sync.Mutex
	jobs []*job // newest last
	// sending is the outbox entry being uploaded and its progress.
	sending     string
	sendDone    int64
	sendTotal   int64
	rate        rateMeter
	offline     bool // the last attempt failed on the network
	lastError   string
	checking    bool
	checkResult *Verification
	wiped       bool
	// launchFile is the launch page given to the browser opener, until
	// it is removed (launch.go).
	launchFile  string
	shutdown    context.CancelFunc
	stopSending context.CancelFunc
}

// ErrRunning is returned by New when another app or command holds the
// state directory.
var ErrRunning = errors.New("another testimony app or command is using the state directory")

// New prepares an app; Serve runs it.
func New(cfg Config) (*App, error) {
	if cfg.RetryEvery == 0 {
		cfg.RetryEvery = time.Minute
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	st, err := loadState(filepath.Join(cfg.StateDir, stateName))
	if err != nil {
		return nil, err
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	// Spool files of a previous run cannot be read by anyone: their key
	// died with that process.
	os.RemoveAll(filepath.Join(cfg.StateDir, spoolDir))
	removeStaleLaunchFiles(cfg.StateDir)
	return &App{cfg: cfg, sessions: newSessions(), state: st, pages: p, wake: make(chan struct{}, 1)}, nil
}

// Serve listens on 127.0.0.1 at a random port, prints the one-time address
// and opens the browser there, then serves until ctx is done. The outbox
// is sent in the background meanwhile.
func (a *App) Serve(ctx context.Context) error {
	var l net.Listener
	var err error
	if a.cfg.Listen != nil {
		l, err = a.cfg.Listen()
	} else {
		l, err = net.Listen("tcp4", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("failed to listen on 127.0.0.1: %w", err)
	}
	if !loopbackOnly(l.Addr()) {
		l.Close()
		return fmt.Errorf("refusing to serve on %s: the app listens on 127.0.0.1 only", l.Addr())
	}
	a.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.shutdown = cancel
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	url := a.LaunchURL()
	fmt.Fprintf(a.cfg.Stdout, "%s\n", url)
	if a.cfg.OpenBrowser != nil {
		defer a.removeLaunchFile()
		page, err := a.writeLaunchFile(url)
		if err == nil {
			err = a.cfg.OpenBrowser(page)
		}
		if err != nil {
			fmt.Fprintf(a.cfg.Stderr, "testimony: could not open a browser: %v\n", err)
			fmt.Fprintf(a.cfg.Stderr, "testimony: hint: open the address above in your browser\n")
		}
	}
	// The sender has its own context, so a wipe can stop an upload at
	// once and still answer the page.
	sctx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	a.mu.Lock()
	a.stopSending = stopSending
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.sender(sctx)
	}()
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
	}()
	err = srv.Serve(l)
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// LaunchURL is the one-time address that starts a session.
func (a *App) LaunchURL() string {
	a.sessions.mu.Lock()
	defer a.sessions.mu.Unlock()
	return "http://127.0.0.1:" + a.port + "/launch?t=" + a.sessions.launch
}

// Port is the port the app listens on, once Serve started.
func (a *App) Port() string { return a.port }

// Handler is the app's HTTP handler with all its guards.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /launch", a.handleLaunch)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /{$}", a.handleHome)
	mux.HandleFunc("GET /new", a.handleNew)
	mux.HandleFunc("POST /submit", a.handleSubmit)
	mux.HandleFunc("GET /status", a.handleStatus)
	mux.HandleFunc("GET /outbox", a.handleOutbox)
	mux.HandleFunc("GET /receipt", a.handleReceipt)
	mux.HandleFunc("POST /receipts/check", a.handleCheck)
	mux.HandleFunc("POST /label", a.handleLabel)
	mux.HandleFunc("GET /settings", a.handleSettings)
	mux.HandleFunc("GET /device-key.png", a.handleDeviceKeyQR)
	mux.HandleFunc("POST /settings/lang", a.handleLang)
	mux.HandleFunc("POST /settings/remove-sent", a.handleRemoveSent)
	mux.HandleFunc("GET /wipe", a.handleWipePage)
	mux.HandleFunc("POST /wipe", a.handleWipe)
	mux.HandleFunc("GET /enrol", a.handleEnrolPage)
	mux.HandleFunc("POST /enrol", a.handleEnrol)
	mux.HandleFunc("POST /enrol/import", a.handleEnrolImport)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.notFound(w, r) })
	return a.guard(mux)
}

// poke wakes the sender.
func (a *App) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// sender sends what waits: new testimonies first, then the outbox, and
// tries again after RetryEvery while anything is left.
func (a *App) sender(ctx context.Context) {
	for {
		again := a.sendOnce(ctx)
		wait := a.cfg.RetryEvery
		if !again {
			wait = 24 * time.Hour
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sendOnce runs the queued jobs and a resume of the outbox; it reports
// whether anything is left to try again.
func (a *App) sendOnce(ctx context.Context) (again bool) {
	a.work.Lock()
	defer a.work.Unlock()
	if ctx.Err() != nil || a.isWiped() {
		return false
	}
	for _, j := range a.queued() {
		if ctx.Err() != nil {
			return false
		}
		a.runJob(ctx, j)
		if j.state() == jobWaiting {
			again = true
		}
	}
	ob, err := a.outbox()
	if err != nil || len(ob.Pending) == 0 {
		return again
	}
	a.setOffline(false, "")
	err = a.resume(ctx, a.events(nil))
	a.mu.Lock()
	a.sending = ""
	a.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		a.setOffline(true, err.Error())
		return true
	}
	return again
}

func (a *App) setOffline(off bool, msg string) {
	a.mu.Lock()
	a.offline, a.lastError = off, msg
	a.mu.Unlock()
}

func (a *App) isWiped() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wiped
}

// events follow the backend for job j (nil for a resume).
func (a *App) events(j *job) Events {
	return Events{
		Progress: func(label string, done, total int64) {
			a.mu.Lock()
			defer a.mu.Unlock()
			if label == "uploading" {
				a.sendDone, a.sendTotal = done, total
				a.rate.add(done)
				if j != nil {
					j.phase = jobUploading
				}
				return
			}
			if j != nil {
				j.encrypted = done
			}
		},
		Encrypted: func(name string) {
			a.mu.Lock()
			if j != nil {
				j.entry = name
			}
			a.mu.Unlock()
			if j != nil {
				a.state.update(func(s *appState) {
					s.Entries[name] = entryInfo{Label: j.label, Files: len(j.files)}
				})
			}
		},
		Sending: func(name string) {
			a.mu.Lock()
			a.sending, a.sendDone, a.sendTotal = name, 0, 0
			a.rate = rateMeter{}
			a.offline = false
			a.mu.Unlock()
		},
		Retrying: func(err error, wait time.Duration) {
			a.mu.Lock()
			a.offline, a.lastError = true, err.Error()
			a.mu.Unlock()
		},
		Sent: func(name, id string) {
			a.mu.Lock()
			a.offline = false
			for _, j := range a.jobs {
				if j.entry == name {
					j.phase, j.id = jobSent, id
				}
			}
			a.mu.Unlock()
			a.state.update(func(s *appState) {
				if e, ok := s.Entries[name]; ok {
					delete(s.Entries, name)
					s.Entries[id] = e
				}
			})
		},
	}
}
