package main

import (
	"net/url"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// proxyURL reads -proxy, or $TESTIMONY_PROXY when the flag is not given:
// the SOCKS5 proxy (Tor's, for an .onion server) the command connects
// through. nil means a direct connection, or the HTTPS_PROXY / ALL_PROXY
// settings of the environment.
func (c *cli) proxyURL(cf connFlags) (*url.URL, error) {
	s, source := cf.proxy, "-proxy"
	if s == "" {
		s, source = c.getenv("TESTIMONY_PROXY"), "TESTIMONY_PROXY"
	}
	if s == "" {
		return nil, nil
	}
	p, err := api.ParseProxy(s)
	if err != nil {
		return nil, usageErrorf("%s: %v", source, err).
			Hint("with Tor running on this machine: -proxy socks5h://127.0.0.1:9050 (Tor Browser: socks5h://127.0.0.1:9150)")
	}
	return p, nil
}
