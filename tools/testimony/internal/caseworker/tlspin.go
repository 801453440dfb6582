package caseworker

// The certificate check given with -pin or -ca is remembered per server
// origin (https://host:port) after the first successful connection, the
// way the server's keys are pinned on first use: typing a 64-digit
// fingerprint for every command invites mistakes and the habit of copying
// whatever fingerprint an error shows. Once remembered, a server whose
// certificate no longer matches is refused with its own message, and a
// -pin or -ca that differs from the remembered one is refused unless
// -replace-pin says the change is intended.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// parsePinFlag accepts a certificate fingerprint as people find it: 64 hex
// digits in either case, with or without the colons browsers and openssl
// print, and with openssl's "SHA256 Fingerprint=" in front.
func parsePinFlag(s string) (string, error) {
	p := strings.TrimSpace(s)
	if i := strings.IndexByte(p, '='); i >= 0 && strings.EqualFold(strings.TrimSpace(p[:i]), "sha256 fingerprint") {
		p = p[i+1:]
	}
	p = strings.ReplaceAll(p, ":", "")
	pinned, err := api.ParsePin(p)
	if err != nil {
		return "", fmt.Errorf("-pin %q is not a certificate fingerprint: 64 hex digits, with or without colons (AB:CD:…), as the operator gave it", s)
	}
	return pinned, nil
}

// tlsChoice is the certificate check a command uses with one server.
type tlsChoice struct {
	opt api.TLSOptions
	// fromMemory says opt is the remembered check, not a flag.
	fromMemory bool
	// remember says opt is to be remembered once a connection succeeded.
	remember bool
	// replaced is the remembered check that remember replaces, if any.
	replaced *pin.TLS
	hp       string
	origin   string
	path     string
	since    string
	// proxy is the SOCKS5 proxy to connect through, or nil.
	proxy *url.URL
}

func (h *home) tlsStore() pin.TLSStore { return pin.TLSStore{Dir: filepath.Join(h.dir, "tls")} }

// origin is u's scheme://host:port, the unit a certificate check is
// remembered for, in the canonical spelling of api.Canonical, so that
// messages name the same server the same way whatever the spelling.
func origin(u *url.URL) string {
	host, port, err := api.Canonical(u)
	if err != nil {
		host, port = u.Hostname(), "443"
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port)
}

// chooseTLS decides the certificate check for u from -ca, -pin,
// -replace-pin and what is remembered.
func (c *Client) chooseTLS(h *home, u *url.URL, cf Conn) (*tlsChoice, error) {
	opt, set, err := cf.tlsOptions()
	if err != nil {
		return nil, err
	}
	if cf.ReplacePin && !set {
		return nil, cmdline.Errorf("-replace-pin needs the new -pin SHA256 or -ca FILE").Usage("")
	}
	hp := api.HostPort(u)
	ch := &tlsChoice{opt: opt, hp: hp, origin: origin(u), path: h.tlsStore().Path(hp)}
	if ch.proxy, err = c.proxyURL(cf); err != nil {
		return nil, err
	}
	rem, err := h.tlsStore().Load(hp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, cmdline.Errorf("%v", err).
			Hint("the file may be damaged or tampered with; restore it from a backup, or delete it and give -pin or -ca again as the operator told you")
	}
	switch {
	case rem == nil:
		ch.remember = set
	case !set:
		ch.opt = api.TLSOptions{Pin: rem.Pin}
		if rem.CA != "" {
			ch.opt.CAPEM = []byte(rem.CA)
		}
		ch.fromMemory, ch.since = true, rem.Remembered
	case sameTLS(opt, rem):
	case !cf.ReplacePin:
		what, was := "-pin "+opt.Pin, "fingerprint "+rem.Pin
		if opt.CAPEM != nil {
			what = "-ca " + cf.CA
			if cf.CAPEM != nil {
				what = cf.CASource
			}
		}
		if rem.CA != "" {
			was = "CA certificate"
		}
		return nil, cmdline.Errorf("%s differs from the certificate check remembered for %s in %s (%s, since %s)", what, ch.origin, ch.path, was, rem.Remembered).
			Hint("a changed certificate may mean someone is intercepting the connection; confirm the change with the operator through another channel than this server").
			Hint("if the certificate was really replaced, add -replace-pin")
	default:
		ch.remember, ch.replaced = true, rem
	}
	return ch, nil
}

// sameTLS reports whether opt is the remembered check rem.
func sameTLS(opt api.TLSOptions, rem *pin.TLS) bool {
	if opt.Pin != "" || rem.Pin != "" {
		return opt.Pin == rem.Pin
	}
	return slices.EqualFunc(pemCerts(opt.CAPEM), pemCerts([]byte(rem.CA)), bytes.Equal)
}

// pemCerts lists the DER certificates in a PEM file, so that the same CA
// saved with other line endings or comments compares equal.
func pemCerts(data []byte) [][]byte {
	var certs [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return certs
		}
		if b.Type == "CERTIFICATE" {
			certs = append(certs, b.Bytes)
		}
	}
}

// rememberTLS saves the check of ch after a connection with it succeeded.
func (c *Client) rememberTLS(h *home, ch *tlsChoice) error {
	if ch == nil || !ch.remember {
		return nil
	}
	t := &pin.TLS{Server: ch.origin, Pin: ch.opt.Pin, CA: string(ch.opt.CAPEM), Remembered: c.Now().UTC().Format("2006-01-02")}
	if err := h.tlsStore().Save(ch.hp, t); err != nil {
		return cmdline.Errorf("%v", err)
	}
	ch.remember = false
	if ch.replaced != nil {
		c.notef("replaced the certificate check remembered for %s in %s", ch.origin, ch.path)
	} else {
		c.notef("remembered the certificate check for %s in %s; later commands to it need no -pin or -ca", ch.origin, ch.path)
	}
	return nil
}

// tlsConfig is api.TLSConfig for ch. A remembered check that fails says
// so in its own words (certChangedError), rather than blaming a -pin or
// -ca the user did not give this time.
func (ch *tlsChoice) tlsConfig(u *url.URL) (*tls.Config, error) {
	cfg, err := api.TLSConfig(ch.opt)
	if err != nil || !ch.fromMemory {
		return cfg, err
	}
	changed := func(err error) error {
		return &certChangedError{origin: ch.origin, path: ch.path, since: ch.since, pin: ch.opt.Pin != "", err: err}
	}
	if ch.opt.Pin != "" {
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return changed(err)
			}
			return nil
		}
		return cfg, nil
	}
	// The standard chain check runs before any callback and fails with
	// its own error, so the remembered CA is checked here instead, the
	// same way (chain to the CA, name of the host).
	roots, host := cfg.RootCAs, u.Hostname()
	cfg.RootCAs, cfg.InsecureSkipVerify = nil, true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return changed(errors.New("the server presented no certificate"))
		}
		inter := x509.NewCertPool()
		for _, cert := range cs.PeerCertificates[1:] {
			inter.AddCert(cert)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
		if err != nil {
			return changed(err)
		}
		return nil
	}
	return cfg, nil
}

// certChangedError is a server certificate that does not pass the
// remembered check. It unwraps to the failure, so it is never retried.
type certChangedError struct {
	origin, path, since string
	pin                 bool
	err                 error
}

func (e *certChangedError) Error() string {
	return fmt.Sprintf("the certificate of %s does not match the one remembered for it: %v", e.origin, e.err)
}

func (e *certChangedError) Unwrap() error { return e.err }

func (e *certChangedError) asError() *cmdline.Error {
	flag := "-pin NEW"
	if !e.pin {
		flag = "-ca NEWFILE"
	}
	return cmdline.Errorf("the certificate of %s is not the one remembered in %s (since %s): someone may be intercepting the connection, or the operator replaced the certificate", e.origin, e.path, e.since).
		Hint("do not go on until you know which: ask the operator through another channel than this server whether the certificate was replaced, and for the new fingerprint").
		Hint("only if it was, run the command again with %s -replace-pin", flag)
}
