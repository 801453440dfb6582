package caseworker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/devicekey"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// maxTokenFile bounds -token-file; a token is about 40 bytes.
const maxTokenFile = 4 << 10

// Conn says how to reach a server: the flags -server, -ca, -pin,
// -token-file, -proxy and -replace-pin.
type Conn struct {
	Server    string
	CA        string // a PEM file
	Pin       string // a certificate fingerprint, as parsePinFlag takes it
	TokenFile string
	// Proxy is a SOCKS5 proxy URL; "" is $TESTIMONY_PROXY, if set.
	Proxy string
	// ReplacePin replaces a remembered certificate check with Pin or CA.
	ReplacePin bool
	// CAPEM is a CA certificate given otherwise than by a file (an
	// enrolment), and CASource says where it came from.
	CAPEM    []byte
	CASource string
}

// URL checks Server; required says whether it must be given.
func (cf *Conn) URL(required bool) (*url.URL, error) {
	if cf.Server == "" {
		if required {
			return nil, cmdline.Errorf("missing -server URL").Usage("")
		}
		return nil, nil
	}
	u, err := api.ParseServer(cf.Server)
	if err != nil {
		return nil, cmdline.Errorf("%v", err).Usage("")
	}
	return u, nil
}

// tlsOptions reads CA, CAPEM or Pin. set reports whether either was given.
func (cf *Conn) tlsOptions() (opt api.TLSOptions, set bool, err error) {
	if cf.CA != "" && cf.Pin != "" {
		return opt, false, cmdline.Errorf("-ca and -pin are mutually exclusive").Usage("").
			Hint("use -ca with the operator's CA certificate, or -pin with the certificate's SHA-256, not both")
	}
	if cf.CAPEM != nil {
		opt.CAPEM = cf.CAPEM
		return opt, true, nil
	}
	if cf.CA != "" {
		opt.CAPEM, err = api.ReadCAFile(cf.CA)
		if err != nil {
			return opt, false, cmdline.Errorf("%v", err).Hint("-ca expects a PEM file, as printed by the server operator")
		}
		return opt, true, nil
	}
	if cf.Pin != "" {
		opt.Pin, err = parsePinFlag(cf.Pin)
		if err != nil {
			return opt, false, cmdline.Errorf("%v", err).Usage("")
		}
		return opt, true, nil
	}
	return opt, false, nil
}

// token returns the access token from -token-file, $TESTIMONY_TOKEN, or
// else the one "init -enrol" stored for the server u (if u is not nil). It
// is never a flag value: the command line of a process is visible to every
// user of the machine.
func (c *Client) token(file string, u *url.URL) (string, error) {
	var tok, source string
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", cmdline.Errorf("failed to read token file: %v", err).Hint("pass the file that holds your access token to -token-file")
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
		if err != nil {
			return "", cmdline.Errorf("failed to read token file: %v", err)
		}
		if len(data) > maxTokenFile {
			return "", cmdline.Errorf("token file %s is too large to hold a token", file)
		}
		if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			c.notef("warning: token file %s can be read by other users of this machine", file)
			c.hintf("restrict it with: chmod 600 %s", file)
		}
		tok, source = string(data), "token file "+file
	} else {
		tok, source = c.Getenv("TESTIMONY_TOKEN"), "TESTIMONY_TOKEN"
	}
	if strings.TrimSpace(tok) == "" && file == "" && u != nil {
		if h, err := c.openHome(false); err == nil {
			path := h.tokenPath(api.HostPort(u))
			if _, err := os.Stat(path); err == nil {
				return c.token(path, nil)
			}
		}
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", cmdline.Errorf("no access token").
			Hint(`set TESTIMONY_TOKEN or pass -token-file FILE, or import your enrolment file with "testimony init -enrol FILE -org-key KEY"; the server operator issues tokens`)
	}
	for _, r := range tok {
		if r <= ' ' || r >= 0x7f {
			return "", cmdline.Errorf("the access token in %s contains spaces or invalid characters", source).
				Hint("the token is one line like tm1_…; copy it again from the operator's message")
		}
	}
	return tok, nil
}

// session is what a command that talks to a server needs: the server, the
// caseworker's home, the pinned trust anchors and an authenticated client.
type session struct {
	u *url.URL
	// tlsc is the certificate check, remembered after the first success.
	tlsc *tlsChoice
	tls  api.TLSOptions
	h    *home
	t    *pin.Trust
	cl   *api.Client
}

// connect reads the connection and trust flags, the token and the home
// directory, in the order that reports a usage mistake before anything is
// created.
func (c *Client) connect(cf Conn, tf TrustKeys) (*session, error) {
	u, err := cf.URL(true)
	if err != nil {
		return nil, err
	}
	if _, _, err := cf.tlsOptions(); err != nil {
		return nil, err
	}
	if _, err := c.proxyURL(cf); err != nil {
		return nil, err
	}
	tok, err := c.token(cf.TokenFile, u)
	if err != nil {
		return nil, err
	}
	h, err := c.openHome(true)
	if err != nil {
		return nil, err
	}
	t, err := c.trust(h, tf)
	if err != nil {
		return nil, err
	}
	ch, err := c.chooseTLS(h, u, cf)
	if err != nil {
		return nil, err
	}
	cl, err := newClientTLS(u, tok, ch)
	if err != nil {
		return nil, err
	}
	return &session{u: u, tlsc: ch, tls: ch.opt, h: h, t: t, cl: cl}, nil
}

// connected remembers the session's certificate check, once a command's
// first exchange with the server succeeded.
func (c *Client) connected(s *session) error { return c.rememberTLS(s.h, s.tlsc) }

// newClientTLS returns an API client for u with the certificate check ch.
func newClientTLS(u *url.URL, tok string, ch *tlsChoice) (*api.Client, error) {
	cfg, err := ch.tlsConfig(u)
	if err != nil {
		return nil, err
	}
	hc := api.NewHTTPClient(cfg)
	if ch.proxy != nil {
		if err := api.UseProxy(hc, ch.proxy); err != nil {
			return nil, err
		}
	}
	return api.New(u, tok, hc), nil
}

// home is the state directory.
type home struct {
	dir string
	// held: this process holds the outbox lock already (see Client.OutboxHeld).
	held bool
}

// openHome returns the state directory, creating it (mode 0700) if create.
func (c *Client) openHome(create bool) (*home, error) {
	dir := c.Getenv("TESTIMONY_HOME")
	if dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return nil, cmdline.Errorf("cannot find a place for the state directory: %v", err).
				Hint("set TESTIMONY_HOME to a directory only you can read")
		}
		dir = filepath.Join(cfg, "testimony")
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, cmdline.Errorf("failed to create state directory: %v", err)
		}
		// The outbox and receipts say what this person submitted and when.
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(dir, 0o700); err != nil {
				return nil, cmdline.Errorf("failed to restrict state directory: %v", err)
			}
		}
		for _, sub := range []string{"pins", "outbox", "receipts", "logs", "collect"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				return nil, cmdline.Errorf("failed to create state directory: %v", err)
			}
		}
	}
	return &home{dir: dir, held: c.OutboxHeld}, nil
}

func (h *home) pins() pin.Store          { return pin.Store{Dir: filepath.Join(h.dir, "pins")} }
func (h *home) outbox() outbox.Outbox    { return outbox.Outbox{Dir: filepath.Join(h.dir, "outbox")} }
func (h *home) receiptsDir() string      { return filepath.Join(h.dir, "receipts") }
func (h *home) pinPath(hp string) string { return h.pins().Path(hp) }
func (h *home) trustPath() string        { return filepath.Join(h.dir, "trust.json") }

// floorsPath holds, per organisation key, the highest recipients version
// verified at any server.
func (h *home) floorsPath() string    { return filepath.Join(h.dir, "recipients-versions.json") }
func (h *home) deviceKeyPath() string { return filepath.Join(h.dir, devicekey.FileName) }

// checkpointPath holds the newest checkpoint of hp's log that 'receipts
// verify' checked.
func (h *home) checkpointPath(hp string) string { return filepath.Join(h.dir, "checkpoints", hp) }

// collectStatePath holds the collector's state for hp's log.
func (h *home) collectStatePath(hp string) string {
	return filepath.Join(h.dir, "collect", hp+".json")
}

// lockOutbox takes the outbox lock, with advice if another process has it.
func (h *home) lockOutbox() (func(), error) {
	if h.held {
		return func() {}, nil
	}
	unlock, err := h.outbox().Lock()
	if errors.Is(err, outbox.ErrLocked) {
		return nil, cmdline.Errorf("another testimony command or the testimony app is using %s", h.dir).
			Hint(`wait for it to finish, or close the app (the window where "testimony app" runs), then run the command again`)
	}
	return unlock, err
}

// explain adds advice to errors from talking to a server. again is the
// advice for network failures: what to run once the connection is back.
func explain(err error, u *url.URL, again string) error {
	var cc *certChangedError
	if errors.As(err, &cc) {
		return cc.asError()
	}
	var ce *cmdline.Error
	if errors.As(err, &ce) {
		return err
	}
	var (
		se   *api.StatusError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		verr *tls.CertificateVerificationError
	)
	host := ""
	if u != nil {
		host = u.Host
	}
	switch {
	case errors.As(err, &se) && se.Code == http.StatusUnauthorized:
		return cmdline.Errorf("%v", err).Hint("the access token was refused: check TESTIMONY_TOKEN or -token-file, or ask the operator for a new token (or enrolment file)").
			Hint("then %s", again)
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		return cmdline.Errorf("%v", err).Hint("this token's role does not allow this: submit needs a submit token, collect a collect token").
			Hint("then %s", again)
	case errors.Is(err, api.ErrPinMismatch):
		return cmdline.Errorf("%v: someone may be intercepting the connection, or the -pin value is wrong", err).
			Hint("do not go on: check the -pin value with the operator through another channel than this server (in person, by phone), and never use a fingerprint from anywhere else")
	case errors.As(err, &uerr), errors.As(err, &verr) && errors.As(verr.Err, &uerr):
		return cmdline.Errorf("%v", err).Hint("if %s uses its own certificate, pass -ca FILE or -pin SHA256 as given by the operator", host)
	case errors.As(err, &herr):
		return cmdline.Errorf("%v", err).Hint("the certificate is not for %s; check the -server URL", host)
	case errors.As(err, &se) && api.Retryable(err):
		return cmdline.Errorf("%v", err).Hint("the server is failing or overloaded; wait a while, then %s", again)
	case errors.As(err, &se):
		return err
	case api.Retryable(err):
		return cmdline.Errorf("%v", err).Hint("check the network connection (or proxy) to %s, then %s", host, again)
	}
	return err
}

// StateDir returns the state directory, $TESTIMONY_HOME or testimony/
// under the user's configuration directory, creating it (and its
// subdirectories, mode 0700) if create.
func (c *Client) StateDir(create bool) (string, error) {
	h, err := c.openHome(create)
	if err != nil {
		return "", err
	}
	return h.dir, nil
}

// LockOutbox takes the outbox lock, which every command that changes the
// outbox holds, and the app while it runs. An outbox locked by another
// process is an *cmdline.Error with advice.
func (c *Client) LockOutbox() (unlock func(), err error) {
	h, err := c.openHome(false)
	if err != nil {
		return nil, err
	}
	return h.lockOutbox()
}

// TryLockOutbox is LockOutbox for the app, whose message differs: an
// outbox locked by another process is outbox.ErrLocked.
func (c *Client) TryLockOutbox() (unlock func(), err error) {
	h, err := c.openHome(false)
	if err != nil {
		return nil, err
	}
	return h.outbox().Lock()
}
