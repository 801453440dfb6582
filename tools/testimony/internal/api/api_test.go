package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseServer(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{"https://intake.example.org", "https://intake.example.org"},
		{"https://intake.example.org/", "https://intake.example.org"},
		{"https://example.org:8443/testimony/", "https://example.org:8443/testimony"},
		{"https://abcdefghij.onion", "https://abcdefghij.onion"},
		{"http://abcdefghij.onion", ""},
		{"http://intake.example.org", ""},
		{"ftp://intake.example.org", ""},
		{"intake.example.org", ""},
		{"https://user:pw@intake.example.org", ""},
		{"https://intake.example.org/?x=1", ""},
		{"https://intake.example.org/#frag", ""},
		{"https://", ""},
		{"https://xn--intak-dva.example.org", "https://xn--intak-dva.example.org"},
		{"https://intaké.example.org", ""},
		{"https://example.org:0", ""},
		{"https://example.org:65536", ""},
	} {
		u, err := ParseServer(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseServer(%q) = %v, want error", tt.in, u)
		case tt.want != "" && err != nil:
			t.Errorf("ParseServer(%q): %v", tt.in, err)
		case tt.want != "" && u.String() != tt.want:
			t.Errorf("ParseServer(%q) = %q, want %q", tt.in, u, tt.want)
		}
	}
}

// TestHostPort: every spelling of one server gets the same key, and the
// key of an ordinary spelling (the first four) is the one used before
// canonicalisation, so existing pins, tokens and logs keep working.
func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"https://Intake.Example.org":       "intake.example.org_443",
		"https://intake.example.org:8443":  "intake.example.org_8443",
		"https://abc.onion":                "abc.onion_443",
		"https://[::1]:8443/x":             "__1_8443",
		"https://intake.example.org.":      "intake.example.org_443",
		"https://INTAKE.example.org.:443":  "intake.example.org_443",
		"https://intake.example.org:0443":  "intake.example.org_443",
		"https://intake.example.org:08443": "intake.example.org_8443",
		"https://[0:0:0::1]:8443":          "__1_8443",
		"https://[0:0:0:0:0:0:0:1]:08443":  "__1_8443",
		"https://[2001:DB8::0:1]":          "2001_db8__1_443",
		"https://[::ffff:127.0.0.1]:8443":  "127.0.0.1_8443",
		"https://127.0.0.1:8443":           "127.0.0.1_8443",
	} {
		u, err := ParseServer(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := HostPort(u); got != want {
			t.Errorf("HostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePin(t *testing.T) {
	good := strings.Repeat("ab", 32)
	if p, err := ParsePin(strings.ToUpper(good)); err != nil || p != good {
		t.Errorf("ParsePin(upper) = %q, %v", p, err)
	}
	for _, bad := range []string{"", good[:62], good + "00", strings.Repeat("zz", 32), "ab:" + good[3:]} {
		if _, err := ParsePin(bad); err == nil {
			t.Errorf("ParsePin(%q) accepted", bad)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain error":            "plain error",
		"bell\a and \x1b[31mred": "bell? and ?[31mred",
		"new\nline":              "new?line",
		"rtl \u202e override":    "rtl ? override",
		strings.Repeat("x", 305): strings.Repeat("x", 300) + "…",
	} {
		if got := Sanitize(in, 300); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// tlsServer starts a real TLS server answering GET /v1/recipients.
func tlsServer(t *testing.T) *httptest.Server {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tm1_test" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid token \u001b[2J"}`)
			return
		}
		fmt.Fprint(w, `{"type":"X25519","recipients":["age1x"],"log_key":"k","signed_recipients":"note"}`)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func client(t *testing.T, ts *httptest.Server, opt TLSOptions, token string) *Client {
	t.Helper()
	cfg, err := TLSConfig(opt)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return New(u, token, NewHTTPClient(cfg))
}

func TestTLSPin(t *testing.T) {
	ts := tlsServer(t)
	sum := sha256.Sum256(ts.Certificate().Raw)
	ctx := context.Background()

	r, err := client(t, ts, TLSOptions{Pin: hex.EncodeToString(sum[:])}, "tm1_test").Recipients(ctx)
	if err != nil {
		t.Fatalf("with the right pin: %v", err)
	}
	if r.Type != "X25519" || len(r.Recipients) != 1 || r.LogKey != "k" || r.SignedRecipients != "note" {
		t.Errorf("Recipients = %+v", r)
	}

	sum[0] ^= 1
	_, err = client(t, ts, TLSOptions{Pin: hex.EncodeToString(sum[:])}, "tm1_test").Recipients(ctx)
	if !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("with a wrong pin: %v, want ErrPinMismatch", err)
	}
	// The presented fingerprint must not be offered for copying.
	sum[0] ^= 1
	if strings.Contains(strings.ToLower(err.Error()), hex.EncodeToString(sum[:])[:16]) {
		t.Errorf("a pin mismatch shows the presented fingerprint: %v", err)
	}
	if Retryable(err) {
		t.Errorf("a pin mismatch must not be retried")
	}
}

func TestTLSCA(t *testing.T) {
	ts := tlsServer(t)
	ctx := context.Background()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if _, err := client(t, ts, TLSOptions{CAPEM: caPEM}, "tm1_test").Recipients(ctx); err != nil {
		t.Fatalf("with the server's CA: %v", err)
	}

	// The system roots do not know the test certificate.
	_, err := client(t, ts, TLSOptions{}, "tm1_test").Recipients(ctx)
	if err == nil {
		t.Fatal("system roots accepted the test certificate")
	}
	if Retryable(err) {
		t.Errorf("certificate error %v must not be retried", err)
	}
	if _, err := TLSConfig(TLSOptions{CAPEM: []byte("not pem")}); err == nil {
		t.Error("TLSConfig accepted a CA file without certificates")
	}
	if _, err := TLSConfig(TLSOptions{CAPEM: caPEM, Pin: strings.Repeat("0", 64)}); err == nil {
		t.Error("TLSConfig accepted both a CA and a pin")
	}
	cfg, _ := TLSConfig(TLSOptions{CAPEM: caPEM})
	if cfg.MinVersion < 0x0303 {
		t.Errorf("MinVersion = %x, want at least TLS 1.2", cfg.MinVersion)
	}
}

func TestStatusErrors(t *testing.T) {
	ts := tlsServer(t)
	sum := sha256.Sum256(ts.Certificate().Raw)
	_, err := client(t, ts, TLSOptions{Pin: hex.EncodeToString(sum[:])}, "wrong").Recipients(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Fatalf("err = %v, want a 401 StatusError", err)
	}
	if strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("server message reached the error unsanitized: %q", err)
	}
	if Retryable(err) {
		t.Error("401 must not be retried")
	}
}

func TestRetryable(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := map[string]int{"/500": 500, "/503": 503, "/429": 429, "/404": 404, "/409": 409, "/400": 400}[r.URL.Path]
		if code == 429 {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	c := New(u, "t", ts.Client())
	for path, want := range map[string]bool{"/500": true, "/503": true, "/429": true, "/404": false, "/409": false, "/400": false} {
		err := c.doJSON(context.Background(), "GET", path, nil, 200, 100, new(any))
		if got := Retryable(err); got != want {
			t.Errorf("%s: Retryable(%v) = %v, want %v", path, err, got, want)
		}
		if path == "/429" && RetryAfter(err) != 7*time.Second {
			t.Errorf("RetryAfter = %v, want 7s", RetryAfter(err))
		}
	}
	if Retryable(context.Canceled) || Retryable(nil) {
		t.Error("cancellation and nil must not be retried")
	}
	if !Retryable(errors.New("connection reset by peer")) {
		t.Error("network errors must be retried")
	}
}

// TestLogRoutes checks the paths, queries and limits of the log routes.
func TestLogRoutes(t *testing.T) {
	var big bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/v1/log/checkpoint":
			if big {
				w.Write([]byte(strings.Repeat("x", maxCheckpoint+1)))
				return
			}
			fmt.Fprint(w, "origin\n3\nroot\n\n— sig\n")
		case "/v1/log/inclusion":
			fmt.Fprintf(w, `{"proof":["i%s-%s"]}`, q.Get("index"), q.Get("size"))
		case "/v1/log/consistency":
			fmt.Fprintf(w, `{"proof":["c%s-%s"]}`, q.Get("old"), q.Get("new"))
		case "/v1/log/leaves":
			fmt.Fprintf(w, `{"leaves":[{"index":%s,"id":"x","sha256":"y","size":5,"date":"2026-11-27"}]}`, q.Get("start"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	c := New(u, "t", ts.Client())
	ctx := context.Background()
	if cp, err := c.Checkpoint(ctx); err != nil || !strings.HasPrefix(string(cp), "origin\n3\n") {
		t.Errorf("Checkpoint = %q, %v", cp, err)
	}
	if p, err := c.Inclusion(ctx, 4, 9); err != nil || len(p) != 1 || p[0] != "i4-9" {
		t.Errorf("Inclusion = %v, %v", p, err)
	}
	if p, err := c.Consistency(ctx, 3, 9); err != nil || len(p) != 1 || p[0] != "c3-9" {
		t.Errorf("Consistency = %v, %v", p, err)
	}
	if l, err := c.Leaves(ctx, 7, 8); err != nil || len(l) != 1 || l[0].Index != 7 || l[0].Size != 5 || l[0].Date != "2026-11-27" {
		t.Errorf("Leaves = %+v, %v", l, err)
	}
	big = true
	if _, err := c.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized checkpoint: %v", err)
	}
}

// TestPendingPages: Pending follows the pages of the list, and refuses a
// cursor that does not advance instead of asking for the same page forever.
func TestPendingPages(t *testing.T) {
	stuck := false
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/v1/submissions" || q.Get("pending") != "1" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		switch after := q.Get("after"); {
		case after == "" || stuck:
			fmt.Fprint(w, `{"submissions":[{"id":"a","index":0},{"id":"b","index":2}],"next":2}`)
		case after == "2":
			fmt.Fprint(w, `{"submissions":[{"id":"c","index":5},{"id":"d","index":6}],"next":6}`)
		case after == "6":
			fmt.Fprint(w, `{"submissions":[{"id":"e","index":9}]}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	c := New(u, "t", ts.Client())
	subs, err := c.Pending(context.Background())
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ID)
	}
	if err != nil || strings.Join(ids, "") != "abcde" {
		t.Errorf("Pending = %v, %v; want a to e", ids, err)
	}
	stuck = true
	if _, err := c.Pending(context.Background()); err == nil || !strings.Contains(err.Error(), "does not advance") {
		t.Errorf("Pending with a stuck cursor: %v", err)
	}
}
