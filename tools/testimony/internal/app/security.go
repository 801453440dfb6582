package app

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// The guards of a local web UI that handles plaintext. Any web page the
// caseworker visits can make their browser send requests to 127.0.0.1, and
// by DNS rebinding can even read the answers, so every request must prove
// it comes from the page the app itself served:
//
//   - Host must name the app (127.0.0.1:PORT or localhost:PORT): a
//     rebinding page sends its own host name.
//   - The launch token in the first URL is exchanged, once, for a session
//     cookie (HttpOnly, SameSite=Strict); every page needs the cookie.
//   - A state-changing request also needs the session's CSRF token and
//     must come from the app's own origin (Origin, Sec-Fetch-Site).

const (
	cookieName = "testimony_session"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// csp allows nothing but the app's own script, stylesheet and requests.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// sessions holds the launch token (until used) and the live sessions.
type sessions struct {
	mu     sync.Mutex
	launch string            // "" once used
	byID   map[string]string // session id -> CSRF token
}

func newSessions() *sessions {
	return &sessions{launch: randomHex(32), byID: map[string]string{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// exchange turns the launch token into a new session, once.
func (s *sessions) exchange(token string) (id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.launch == "" || !equal(token, s.launch) {
		return "", false
	}
	s.launch = ""
	id = randomHex(32)
	s.byID[id] = randomHex(32)
	return id, true
}

// csrf returns the CSRF token of r's session; ok is false without a session.
func (s *sessions) csrf(r *http.Request) (token string, ok bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	token, ok = s.byID[c.Value]
	return token, ok
}

// hostAllowed: the Host header names this app, by IP or as localhost.
func hostAllowed(host string, port string) bool {
	return host == "127.0.0.1:"+port || host == "localhost:"+port
}

// originAllowed: a state-changing request comes from the app's own pages.
// Browsers send Origin "null" for same-origin POSTs under Referrer-Policy
// no-referrer; Sec-Fetch-Site, which pages cannot set, then says whether
// the request is same-origin.
func originAllowed(r *http.Request, port string) bool {
	o := r.Header.Get("Origin")
	switch o {
	case "http://127.0.0.1:" + port, "http://localhost:" + port:
		return strings.TrimPrefix(o, "http://") == r.Host
	case "", "null":
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	return false
}

// guard wraps the app's handler with the Host check, the security headers,
// the session check and, for state-changing requests, the CSRF and origin
// checks. launch and static assets need no session.
func (a *App) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.forbidden(w, r, "cross-origin")
	}))
	inner := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !hostAllowed(r.Host, a.port) {
			// No page, no hint: whoever sends another Host is not the
			// caseworker's browser at the app's address.
			http.Error(w, "wrong host", http.StatusMisdirectedRequest)
			return
		}
		if r.URL.Path == "/launch" || strings.HasPrefix(r.URL.Path, "/static/") {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		token, ok := a.sessions.csrf(r)
		if !ok {
			a.forbidden(w, r, "no-session")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !originAllowed(r, a.port) {
				a.forbidden(w, r, "cross-origin")
				return
			}
			got := r.Header.Get(csrfHeader)
			if got == "" && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
				// Bounded: every form of the app is small.
				r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
				got = r.PostFormValue(csrfField)
			}
			if !equal(got, token) {
				a.forbidden(w, r, "csrf")
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// handleLaunch exchanges the launch token for a session cookie and sends
// the browser on to a clean address, so the token leaves the address bar.
func (a *App) handleLaunch(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessions.exchange(r.URL.Query().Get("t"))
	if !ok {
		a.forbidden(w, r, "launch-used")
		return
	}
	a.removeLaunchFile()
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	// Not an HTTP redirect: a browser that came from the launch page (a
	// local file, launch.go) is on a cross-site navigation, on which it
	// would not send the SameSite=Strict cookie to the redirect's target.
	// A navigation this page starts is the app's own.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, launchedPage)
}

// launchedPage sends the browser on to the app's first page.
const launchedPage = `<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/"><title>Testimony</title></head>
<body><p><a href="/">Testimony</a></p></body></html>
`

// loopbackOnly refuses an address that is not on 127.0.0.1.
func loopbackOnly(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.Equal(net.IPv4(127, 0, 0, 1))
}
