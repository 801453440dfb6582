package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// ErrPinMismatch means the server presented a certificate whose SHA-256
// differs from the -pin fingerprint.
var ErrPinMismatch = errors.New("server certificate does not match the pinned fingerprint")

// ParseServer checks a server URL: https (the server speaks nothing else,
// also behind an onion service), no user info, query or fragment.
func ParseServer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("server %q is not a URL like https://intake.example.org", s)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server %q must start with https:// (also for an onion service: the server speaks only TLS)", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("server %q must not contain a user name, query or fragment", s)
	}
	if _, _, err := Canonical(u); err != nil {
		return nil, fmt.Errorf("server %q: %w", s, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// ErrNonASCIIHost means a server host name is not ASCII. Without an IDNA
// library (not a dependency) its xn-- form cannot be computed reliably,
// and a second spelling of the same server would get state of its own.
var ErrNonASCIIHost = errors.New("the host name is not ASCII; give its ASCII form (xn--…), as the operator gave it")

// Canonical returns u's host and port in the one spelling all per-server
// state (pins, remembered certificate checks, tokens, logs) is keyed by:
// lowercase, without the trailing dot of a fully qualified name, IP
// addresses in their canonical form (IPv4-mapped IPv6 as IPv4), and the
// port as a decimal number, 443 by default. Without it, example.org.,
// EXAMPLE.org:0443 or [0:0::1] would each start with no remembered check
// and no pinned keys, and accept whatever the server presents first.
func Canonical(u *url.URL) (host, port string, err error) {
	host = u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", "", ErrNonASCIIHost
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return "", "", errors.New("the host name is empty")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	port = "443"
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		port = strconv.FormatUint(n, 10)
	}
	return host, port, nil
}

// HostPort returns a file-name-safe "host_port" for u from its Canonical
// host and port; the CLI keys all per-server files by it. For an ordinary
// name (lowercase, no trailing dot, default or plain port) it is the same
// as before canonicalisation, so existing files keep working.
func HostPort(u *url.URL) string {
	host, port, err := Canonical(u)
	if err != nil {
		// ParseServer refused such a URL; keep a usable key for other callers.
		host, port = strings.ToLower(u.Hostname()), "443"
	}
	var b strings.Builder
	for _, r := range host + "_" + port {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// TLSOptions choose how the server's certificate is checked. At most one
// field may be set; with neither the system roots are used.
type TLSOptions struct {
	// CAPEM is a PEM file content with the only CA (or self-signed server
	// certificate) to trust.
	CAPEM []byte
	// Pin is the lowercase hex SHA-256 of the server's leaf certificate
	// (DER). Chain and name are not checked: the pin is the whole trust.
	Pin string
}

// ParsePin checks a -pin value and returns it in lowercase.
func ParsePin(s string) (string, error) {
	p := strings.ToLower(s)
	if !ids.ValidSHA256(p) {
		return "", fmt.Errorf("pin %q is not 64 hex characters (the SHA-256 of the server certificate)", s)
	}
	return p, nil
}

// TLSConfig returns the client TLS configuration for opt.
func TLSConfig(opt TLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case opt.CAPEM != nil && opt.Pin != "":
		return nil, errors.New("a CA and a pin are mutually exclusive")
	case opt.CAPEM != nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(opt.CAPEM) {
			return nil, errors.New("CA file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	case opt.Pin != "":
		want, err := hex.DecodeString(opt.Pin)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("malformed pin %q", opt.Pin)
		}
		// Chain verification is off only because the pin replaces it:
		// VerifyConnection runs on every handshake, resumed ones included,
		// and the handshake signature proves possession of the pinned key.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrPinMismatch
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				// The presented fingerprint is left out on purpose: shown
				// to someone whose pin did not match, it invites copying
				// the interceptor's fingerprint, which is then remembered.
				return ErrPinMismatch
			}
			return nil
		}
	}
	return cfg, nil
}

// ReadCAFile reads a -ca file.
func ReadCAFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("failed to read CA file: %w", err)
	}
	if _, err := TLSConfig(TLSOptions{CAPEM: data}); err != nil {
		return nil, fmt.Errorf("failed to read CA file %s: %w", name, err)
	}
	return data, nil
}

// sendBuffer is the socket send buffer of the client's connections (Linux
// doubles it): at 5 KB/s it drains in under a minute, the stall timeout,
// and it still fills a 20 Mbit/s link with a 100 ms round trip.
const sendBuffer = 128 << 10

// NewHTTPClient returns an HTTP client with cfg and timeouts suited to slow,
// unreliable links: connection setup and response headers are bounded, bodies
// are not (a large download may take hours). HTTPS_PROXY / ALL_PROXY style
// settings, including socks5:// for Tor, are honoured.
func NewHTTPClient(cfg *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			// The kernel would otherwise let megabytes of an upload wait
			// in the socket on a slow link: the client would believe them
			// sent, show them as sent, lose them at the next cut, and wait
			// minutes in silence for them to drain before the answer.
			tc.SetWriteBuffer(sendBuffer)
		}
		return c, err
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dial,
			TLSClientConfig:       cfg,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			// HTTP/1.1, one request per connection at a time: a cut or a
			// stall then costs exactly the request it hit. Over HTTP/2,
			// measured through tools/internal/badlink, chunk uploads on
			// the connections opened after a cut carried no body bytes
			// to the server at all, and an upload never finished.
			ForceAttemptHTTP2: false,
		},
		// The API never redirects; following one could send the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Retryable reports whether a failed request may succeed if repeated: network
// errors, 5xx, 408 and 429. Certificate problems, other 4xx answers and
// cancellation are final.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests || se.Code == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrPinMismatch) {
		return false
	}
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		rerr  tls.RecordHeaderError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cerr) || errors.As(err, &rerr) {
		return false
	}
	return true
}
