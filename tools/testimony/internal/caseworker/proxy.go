package caseworker

import (
	"net/url"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// proxyURL reads -proxy, or $TESTIMONY_PROXY when the flag is not given:
// the SOCKS5 proxy (Tor's, for an .onion server) the command connects
// through. nil means a direct connection, or the HTTPS_PROXY / ALL_PROXY
// settings of the environment.
func (c *Client) proxyURL(cf Conn) (*url.URL, error) {
	s, source := cf.Proxy, "-proxy"
	if s == "" {
		s, source = c.Getenv("TESTIMONY_PROXY"), "TESTIMONY_PROXY"
	}
	if s == "" {
		return nil, nil
	}
	p, err := api.ParseProxy(s)
	if err != nil {
		return nil, cmdline.Errorf("%s: %v", source, err).Usage("").
			Hint("with Tor running on this machine: -proxy socks5h://127.0.0.1:9050 (Tor Browser: socks5h://127.0.0.1:9150)")
	}
	return p, nil
}
