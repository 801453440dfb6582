package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/testimony-ngo/testimony/internal/safefile"
)

// selfSignedValidity is how long a self-signed certificate lasts. Clients
// pin it, and replacing it means handing every caseworker a new pin, so it
// is long.
const selfSignedValidity = 5 * 365 * 24 * time.Hour

// tlsCipherSuites are the TLS 1.2 suites offered: forward secret (ECDHE)
// and authenticated encryption (AES-GCM, ChaCha20-Poly1305) only. TLS 1.3
// suites are not configurable and are all of that kind.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns the server's TLS configuration for cert: TLS 1.2 or
// newer, and in TLS 1.2 only the suites in tlsCipherSuites.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsCipherSuites,
		Certificates: []tls.Certificate{cert},
	}
}

// Fingerprint is the SHA-256 of a certificate's DER encoding in lowercase
// hex, the form clients take with -pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// LoadCertificate loads a PEM certificate chain and key, as given with
// -tls-cert and -tls-key.
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to load the TLS certificate: %w", err)
	}
	return cert, nil
}

// SelfSignedCertificate returns the data directory's self-signed
// certificate, creating it on first use. host (the host part of -addr) is
// added to the certificate's names next to 127.0.0.1, ::1 and localhost.
// Once created, the certificate is reused as is, so its fingerprint stays
// the same across restarts.
func SelfSignedCertificate(dataDir, host string) (tls.Certificate, error) {
	certPath, keyPath := SelfSignedCertPath(dataDir), selfSignedKeyPath(dataDir)
	_, certErr := os.Stat(certPath)
	if certErr == nil {
		return LoadCertificate(certPath, keyPath)
	} else if !errors.Is(certErr, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("failed to read the self-signed certificate: %w", certErr)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to create the TLS directory: %w", err)
	}
	certPEM, keyPEM, err := newSelfSigned(host, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	// The key goes first and the certificate last: a certificate on disk
	// always has its key, and a lone key from a crash is replaced.
	if err := safefile.Write(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := safefile.Write(certPath, certPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func newSelfSigned(host string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate a TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "testimony self-signed"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedValidity),
		// Marked as its own CA so that tools other than Go (curl,
		// OpenSSL) accept it as a trust anchor with --cacert.
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to encode the TLS key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
