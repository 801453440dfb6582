package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmeDirName is the certificate cache inside the data directory: the ACME
// account key, and each certificate with its private key, one file each,
// mode 0600 in a directory of mode 0700.
const acmeDirName = "acme"

// ACMEConfig configures certificates from an ACME CA such as Let's Encrypt.
type ACMEConfig struct {
	// Domain is the one DNS name to get a certificate for. Required.
	Domain string
	// Email is the contact the CA writes to about expiring or revoked
	// certificates. Required: an operator who is not told misses a
	// revocation.
	Email string
	// DirectoryURL is the CA's ACME directory; empty means Let's Encrypt.
	DirectoryURL string
	// HTTPClient talks to the CA; nil means the default client and the
	// system's roots. Tests pass one that trusts their own CA.
	HTTPClient *http.Client
}

// ACMECacheDir is where serve keeps the ACME account key and certificates.
func ACMECacheDir(dataDir string) string { return filepath.Join(dataDir, acmeDirName) }

// acmeTLSConfig returns the server's TLS configuration with certificates
// for cfg.Domain from the CA, obtained on the first connection that asks
// for the name and renewed 30 days before they expire. The CA proves
// control of the name with TLS-ALPN-01 on the HTTPS port itself, so no
// port 80 is opened; the CA connects to port 443 of the name.
func acmeTLSConfig(dataDir string, cfg ACMEConfig) (*tls.Config, error) {
	domain := strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	if domain == "" || !strings.Contains(domain, ".") || strings.ContainsAny(domain, "/:*") {
		return nil, fmt.Errorf("failed to configure ACME: %q is not a DNS name like intake.example.org", cfg.Domain)
	}
	if strings.HasSuffix(domain, ".onion") {
		return nil, errors.New("failed to configure ACME: ACME CAs do not issue certificates for .onion names; use the self-signed certificate and its pin")
	}
	if cfg.Email == "" || !strings.Contains(cfg.Email, "@") {
		return nil, fmt.Errorf("failed to configure ACME: %q is not an email address", cfg.Email)
	}
	dir := ACMECacheDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the ACME cache: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; the cache holds
	// the TLS private keys.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to restrict the ACME cache to mode 0700: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(domain),
		Email:      cfg.Email,
		Client:     &acme.Client{DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.HTTPClient},
	}
	if m.Client.DirectoryURL == "" {
		m.Client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tlsCipherSuites,
		GetCertificate: m.GetCertificate,
		// net/http adds h2 and http/1.1; acme-tls/1 answers the CA's
		// TLS-ALPN-01 challenge.
		NextProtos: []string{acme.ALPNProto},
	}, nil
}
