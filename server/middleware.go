package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// securityHeaders go on every response. The API serves no HTML, so the
// policy forbids everything; no-store keeps receipts and ciphertext out of
// caches on shared machines.
var securityHeaders = map[string]string{
	"Strict-Transport-Security": "max-age=63072000",
	"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":    "nosniff",
	"Referrer-Policy":           "no-referrer",
	"Cache-Control":             "no-store",
}

type requestLogKey struct{}

// requestLog collects what the log line of a request says. The route is
// filled in by endpoint, which knows the template; the middleware only sees
// the concrete path, which holds ids.
type requestLog struct {
	route string
}

func setRoute(r *http.Request, route string) {
	if rl, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
		rl.route = route
	}
}

func routeOf(r *http.Request) string {
	if rl, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
		return rl.route
	}
	return "(unknown)"
}

// common wraps a router with the security headers and the request log. The
// log records method, route template, status, duration and byte counts:
// never the client's address, its User-Agent, the path's ids, a token or a
// body.
func (s *Server) common(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		rl := &requestLog{route: "(unknown)"}
		r = r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl))
		body := &countingReader{r: r.Body}
		r.Body = body
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		h.ServeHTTP(sw, r)
		s.log.Info("request", "method", r.Method, "route", rl.route, "status", sw.code(),
			"duration", time.Since(start).Round(time.Millisecond), "bytes_in", body.n, "bytes_out", sw.n)
	})
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the connection's deadlines through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// authenticate checks the request's bearer token and its role. Failures
// spend the server-wide failure budget; once it is exhausted they get 429
// instead of 401. A valid token is never refused for lack of budget, so
// flooding the server with bad tokens cannot lock caseworkers out.
func (s *Server) authenticate(r *http.Request, role string) (store.Token, error) {
	token, err := bearerToken(r.Header.Get("Authorization"))
	var t store.Token
	if err == nil {
		t, err = lookupToken(s.db, token)
	}
	if err != nil {
		if isAuthError(err) && !s.limiter.allow() {
			return store.Token{}, fail(errTooManyRequests, "too many failed authentication attempts on this server; wait a few seconds and try again")
		}
		return store.Token{}, err
	}
	if role != roleAny && t.Role != role {
		return store.Token{}, fail(errForbidden, "this route needs a %s token, and this is a %s token", role, t.Role)
	}
	return t, nil
}

func isAuthError(err error) bool {
	return errors.Is(err, errNoToken) || errors.Is(err, errMalformedToken) ||
		errors.Is(err, errUnknownToken) || errors.Is(err, errRevokedToken)
}

// failureLimiter is a token bucket for failed authentications, shared by
// all clients because the server keeps no client addresses.
type failureLimiter struct {
	mu     sync.Mutex
	rate   float64 // refill per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newFailureLimiter(rate float64, burst int, now func() time.Time) *failureLimiter {
	return &failureLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// allow records one failure and reports whether it was within budget.
func (l *failureLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); now.After(l.last) {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
