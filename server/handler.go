package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/testimony-ngo/testimony/store"
)

// call is one request as a route's function sees it.
type call struct {
	r   *http.Request
	rc  *http.ResponseController
	tok store.Token // the authenticated token; zero on routes without one
}

func (c *call) vars() map[string]string { return mux.Vars(c.r) }

// apiFunc implements a route. It returns the response body, the status for
// a successful response, or an error for errorStatus. The body is nil for
// none, json.RawMessage for JSON already encoded, textBody for text/plain
// (signed checkpoints), *download for a ciphertext stream, and anything
// else is encoded as JSON.
type apiFunc func(c *call) (any, int, error)

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"` // admin socket only
}

// endpoint is the shim between net/http and an apiFunc: it authenticates,
// bounds the body, calls fn and writes what it returns.
func (s *Server) endpoint(route, role string, bodyLimit int64, fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, route)
		resp, status, err := s.call(w, r, role, bodyLimit, fn)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		switch v := resp.(type) {
		case nil:
			w.WriteHeader(status)
		case json.RawMessage:
			s.writeRawJSON(w, status, v)
		case textBody:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(v)))
			w.WriteHeader(status)
			w.Write(v)
		case *download:
			s.stream(w, r, v)
		default:
			s.writeJSON(w, status, v)
		}
	})
}

func (s *Server) call(w http.ResponseWriter, r *http.Request, role string, bodyLimit int64, fn apiFunc) (any, int, error) {
	var tok store.Token
	if role != roleNone {
		var err error
		if tok, err = s.authenticate(r, role); err != nil {
			return nil, 0, err
		}
	}
	if bodyLimit > 0 && r.ContentLength > bodyLimit {
		return nil, 0, fail(errTooLarge, "request body of %d bytes is larger than this route's limit of %d bytes", r.ContentLength, bodyLimit)
	}
	// MaxBytesReader needs net/http's own ResponseWriter to make the
	// server close the connection instead of reading the rest of an
	// oversized body.
	r.Body = http.MaxBytesReader(innermost(w), r.Body, bodyLimit)
	return fn(&call{r: r, rc: http.NewResponseController(w), tok: tok})
}

func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := errorStatus(err)
	switch {
	case errors.Is(err, errQuota) || errors.Is(err, errStorageQuota):
		s.log.Info("request refused: token limit", "method", r.Method, "route", routeOf(r), "status", status)
		if ra := retryAfterOf(err); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
	case status == http.StatusServiceUnavailable:
		s.log.Warn("request refused: server busy", "method", r.Method, "route", routeOf(r))
		w.Header().Set("Retry-After", busyRetryAfter)
	case status >= 500:
		s.log.Error("request failed", "method", r.Method, "route", routeOf(r), "error", err)
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="testimony"`)
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	}
	body := errorBody{Error: msg}
	var ae *apiError
	if errors.As(err, &ae) {
		body.Code = ae.code
	}
	s.writeJSON(w, status, body)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Error("failed to encode response", "error", err)
		status, data = http.StatusInternalServerError, []byte(`{"error":"`+genericServerError+`"}`)
	}
	s.writeRawJSON(w, status, data)
}

func (s *Server) writeRawJSON(w http.ResponseWriter, status int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// checkContentType accepts a request's Content-Type if it is absent or one
// of allowed (parameters such as charset are ignored).
func checkContentType(r *http.Request, allowed ...string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, a := range allowed {
			if mt == a {
				return nil
			}
		}
	}
	return fail(errUnsupportedMedia, "Content-Type %q is not accepted here; use %s", ct, strings.Join(allowed, " or "))
}

// jsonContentTypes are accepted on JSON routes. curl's -d sends
// application/x-www-form-urlencoded unless told otherwise; the body is
// parsed as JSON either way.
var jsonContentTypes = []string{"application/json", "application/x-www-form-urlencoded"}

// decodeJSON reads the request body as exactly one JSON object into v,
// refusing unknown fields. An empty body is accepted only if allowEmpty.
func decodeJSON(c *call, v any, allowEmpty bool) error {
	if err := checkContentType(c.r, jsonContentTypes...); err != nil {
		return err
	}
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && allowEmpty {
			return nil
		}
		return jsonError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			return fail(errBadRequest, "request body must be a single JSON object, but more follows it")
		}
		return jsonError(err)
	}
	return nil
}

// jsonError turns a decoding error into a message that says what to fix.
func jsonError(err error) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return fail(errTooLarge, "JSON body is larger than %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return fail(errBadRequest, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(errBadRequest, "JSON body ends early")
	case errors.As(err, &syntaxErr):
		return fail(errBadRequest, "malformed JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fail(errBadRequest, "request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &typeErr) && isIntKind(typeErr.Type.Kind()) && strings.HasPrefix(typeErr.Value, "number "):
		// A fraction, an exponent, or more than 63 bits: say which
		// numbers are meant rather than "must be a number, not number".
		return fail(errBadRequest, "field %q must be a number without fraction or exponent, below 2^63, not %s",
			typeErr.Field, strings.TrimPrefix(typeErr.Value, "number "))
	case errors.As(err, &typeErr):
		return fail(errBadRequest, "field %q must be %s, not %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fail(errBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fail(errBadRequest, "invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func isIntKind(k reflect.Kind) bool {
	return reflect.Int <= k && k <= reflect.Uint64
}

func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	}
	return kind
}

// download is a ciphertext stream with the headers that describe it.
type download struct {
	name   string
	size   int64
	sha256 string
	body   io.ReadCloser
	// release, if set, gives back the buffer slot the download holds.
	release func()
}

// stream sends a download. The status is sent before the body, so a
// failure half way can only be logged; the client notices because fewer
// bytes than Content-Length arrive and net/http closes the connection.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, d *download) {
	defer d.body.Close()
	if d.release != nil {
		defer d.release()
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(d.size, 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", d.name))
	h.Set("Ciphertext-SHA256", d.sha256)
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(&deadlineWriter{w: w, rc: http.NewResponseController(w)}, d.body)
	if err != nil || n != d.size {
		s.log.Warn("download incomplete", "route", routeOf(r), "written", n, "size", d.size, "error", err)
	}
}

// deadlineWriter gives each write of up to a MiB transferTimeoutPerMiB to
// complete, so a long download is not cut off by the server's WriteTimeout
// as long as it keeps moving.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), ChunkSize)
		extendDeadline(d.rc.SetWriteDeadline)
		m, err := d.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// extendDeadline moves a read or write deadline transferTimeoutPerMiB into
// the future. Writers that do not support deadlines (tests) are fine.
func extendDeadline(set func(time.Time) error) {
	set(time.Now().Add(transferTimeoutPerMiB))
}
