package api

import (
	"net/http"
	"net/url"
	"testing"
)

func TestParseProxy(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"socks5h://127.0.0.1:9050", "socks5h://127.0.0.1:9050"},
		{"socks5h://127.0.0.1:9050/", "socks5h://127.0.0.1:9050"},
		// net/http lets the proxy resolve names with socks5 too; it is
		// accepted and written as what it does.
		{"socks5://localhost:9150", "socks5h://localhost:9150"},
		{"socks5h://[::1]:9050", "socks5h://[::1]:9050"},
		{"http://127.0.0.1:8080", ""},
		{"https://127.0.0.1:8080", ""},
		{"socks4://127.0.0.1:9050", ""},
		{"socks5h://127.0.0.1", ""},
		{"127.0.0.1:9050", ""},
		{"socks5h://127.0.0.1:9050/path", ""},
		{"socks5h://127.0.0.1:9050?x=1", ""},
		{"", ""},
	} {
		got, err := ParseProxy(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseProxy(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseProxy(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestUseProxy(t *testing.T) {
	p, _ := url.Parse("socks5h://127.0.0.1:9050")
	c := NewHTTPClient(nil)
	if err := UseProxy(c, p); err != nil {
		t.Fatal(err)
	}
	// Loopback servers go through the proxy too: an explicit proxy has no
	// exceptions, unlike the environment's.
	req, _ := http.NewRequest("GET", "https://127.0.0.1/v1/health", nil)
	got, err := c.Transport.(*http.Transport).Proxy(req)
	if err != nil || got.String() != p.String() {
		t.Errorf("proxy for a loopback server = %v, %v; want %v", got, err, p)
	}
	if err := UseProxy(&http.Client{Transport: roundTripFunc(nil)}, p); err != ErrNotHTTPTransport {
		t.Errorf("UseProxy on another transport: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
