package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// ErrNotHTTPTransport means UseProxy was given a client whose transport is
// not the *http.Transport of NewHTTPClient.
var ErrNotHTTPTransport = errors.New("the HTTP client's transport is not an *http.Transport")

// ParseProxy checks a -proxy value: a SOCKS5 proxy such as Tor's,
// socks5h://127.0.0.1:9050. socks5:// is accepted as the same thing: in
// both, net/http hands the server's host name to the proxy and never looks
// it up itself, so an .onion name works and no DNS query for the server
// leaves the machine. Other proxies (http://) are refused: the API's
// traffic is already TLS, and a proxy that resolves names locally would
// tell the network which server the caseworker talks to.
func ParseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || u.Port() == "" {
		return nil, fmt.Errorf("proxy %q is not a URL like socks5h://127.0.0.1:9050", s)
	}
	if u.Scheme != "socks5h" && u.Scheme != "socks5" {
		return nil, fmt.Errorf("proxy %q must start with socks5h:// (a SOCKS5 proxy such as Tor)", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy %q must be only socks5h://HOST:PORT", s)
	}
	return &url.URL{Scheme: "socks5h", Host: u.Host, User: u.User}, nil
}

// UseProxy makes c, an HTTP client from NewHTTPClient, connect through the
// SOCKS5 proxy p (from ParseProxy) for every request, loopback ones
// included. The connection to the proxy itself goes through the client's
// own dialer, with its timeouts and send buffer.
func UseProxy(c *http.Client, p *url.URL) error {
	t, ok := c.Transport.(*http.Transport)
	if !ok {
		return ErrNotHTTPTransport
	}
	t.Proxy = http.ProxyURL(p)
	return nil
}
