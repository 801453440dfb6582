package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/server"
)

const serveUsage = `Usage: testimony-server serve -data DIR
           (-addr HOST:PORT | -listen-unix PATH | sockets from systemd)...
           (-tls-cert FILE -tls-key FILE | -tls-self-signed |
            -acme-domain NAME -acme-email ADDR [-acme-directory URL])
           [-max-size BYTES] [-upload-expiry DURATION] [-stall-timeout DURATION]
           [-compact-at-start] [-max-open-uploads N] [-max-bytes-per-day BYTES]
           [-max-unreviewed BYTES] [-retain-uncollected DURATION]

Serves the HTTPS API (docs/api.md) until SIGINT or SIGTERM, then lets
requests in flight finish. Also listens on DIR/admin.sock for the token and
recipients commands. Logs go to stderr and never hold client addresses,
User-Agents, tokens or bodies. The line logged when serving starts names
the version, as "testimony-server version" prints it; no response does.

Flags:
    -data DIR                initialized data directory
    -addr HOST:PORT          TCP address to listen on, e.g. 0.0.0.0:443
    -listen-unix PATH        also (or only) listen on this unix socket, for
                             a Tor onion service (HiddenServicePort 443
                             unix:PATH); TLS stays on
    -tls-cert FILE           PEM certificate chain
    -tls-key FILE            PEM private key of -tls-cert
    -tls-self-signed         use DIR/tls/cert.pem, creating it on first use
                             (ECDSA P-256, for 127.0.0.1, ::1, localhost and
                             the host of -addr); clients use -ca or -pin with
                             the fingerprint printed at start
    -acme-domain NAME        get and renew the certificate for NAME from an
                             ACME CA (Let's Encrypt by default), which checks
                             that NAME's port 443 reaches this server
                             (TLS-ALPN-01); kept in DIR/acme
    -acme-email ADDR         where the CA writes about the certificate
    -acme-directory URL      the CA's ACME directory URL (default Let's
                             Encrypt's)
    -max-size BYTES          largest submission (default 16GiB; suffixes
                             KiB, MiB, GiB, TiB)
    -upload-expiry DURATION  how long an unfinished upload is kept
                             (default 168h; Go durations, or days as 7d)
    -stall-timeout DURATION  close a chunk upload that moved no byte either
                             way for this long, keeping what arrived
                             (default 60s)
    -compact-at-start        before serving, compact the database (as
                             "testimony-server compact") when more than 10%
                             of it, and at least 1 MiB, is free pages left by
                             deleted data
    -max-open-uploads N      unfinished uploads one submit token may have at
                             once (default 8; then 429)
    -max-bytes-per-day BYTES bytes one submit token may send per UTC day
                             (default 64GiB; then 429 with Retry-After)
    -max-unreviewed BYTES    bytes of one submit token's submissions not yet
                             collected (default 256GiB; then 507)
    -retain-uncollected DURATION
                             warn in the log (every 10 minutes) and in GET
                             /v1/health for collect tokens when submissions
                             are uncollected for longer than this (Go
                             durations, or days as 30d); never deletes

The limits per token are counted in memory and start from zero when the
server starts: nothing on disk links a submission to its token.

Started by systemd with socket activation (LISTEN_FDS), serve also serves
the sockets it was given, and then needs neither -addr nor -listen-unix.

Examples:
    testimony-server serve -data /var/lib/testimony -addr 0.0.0.0:443 \
        -acme-domain intake.example.org -acme-email ops@example.org
    testimony-server serve -data /var/lib/testimony -tls-self-signed \
        -listen-unix /run/testimony/https.sock
`

func (c *cli) serve(args []string) error {
	fs := cmdline.NewFlagSet("serve")
	data := fs.String("data", "", "")
	addr := fs.String("addr", "", "")
	certFile := fs.String("tls-cert", "", "")
	keyFile := fs.String("tls-key", "", "")
	selfSigned := fs.Bool("tls-self-signed", false, "")
	maxSize := fs.String("max-size", "16GiB", "")
	expiry := fs.String("upload-expiry", "168h", "")
	stall := fs.Duration("stall-timeout", server.DefaultStallTimeout, "")
	compactAtStart := fs.Bool("compact-at-start", false, "")
	maxOpen := fs.Int("max-open-uploads", server.DefaultOpenUploads, "")
	maxDay := fs.String("max-bytes-per-day", "64GiB", "")
	maxUnreviewed := fs.String("max-unreviewed", "256GiB", "")
	retain := fs.String("retain-uncollected", "", "")
	unixPath := fs.String("listen-unix", "", "")
	acmeDomain := fs.String("acme-domain", "", "")
	acmeEmail := fs.String("acme-email", "", "")
	acmeDirectory := fs.String("acme-directory", "", "")
	rest, err := c.parseFlags(fs, serveUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	acme, err := acmeFlags(*acmeDomain, *acmeEmail, *acmeDirectory)
	if err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{*certFile != "" || *keyFile != "", *selfSigned, acme != nil} {
		if set {
			sources++
		}
	}
	if (*certFile == "") != (*keyFile == "") || sources != 1 {
		return cmdline.Errorf("give one of -tls-cert and -tls-key, -tls-self-signed, or -acme-domain").
			Hint("with a public name: -acme-domain intake.example.org -acme-email you@example.org; with a certificate from your CA: -tls-cert cert.pem -tls-key key.pem; for an onion service or without a name: -tls-self-signed")
	}
	if *unixPath != "" && !filepath.IsAbs(*unixPath) {
		return cmdline.Errorf("-listen-unix %q is not an absolute path", *unixPath).Hint("give the path Tor's HiddenServicePort names, e.g. -listen-unix /run/testimony/https.sock")
	}
	// Sockets from systemd are taken before anything else can open a
	// descriptor, and only when no address is given would they be missing.
	activated, err := server.ActivationListeners()
	if err != nil && !errors.Is(err, server.ErrNoActivation) {
		return cmdline.Errorf("%w", err).Hint("check the ListenStream= lines of testimony-server.socket")
	}
	if *addr == "" && *unixPath == "" && len(activated) == 0 {
		return cmdline.Errorf("missing -addr HOST:PORT or -listen-unix PATH").Hint("e.g. -addr 0.0.0.0:443, or -listen-unix /run/testimony/https.sock for an onion service")
	}
	size, err := parseSize(*maxSize)
	if err != nil {
		return cmdline.Errorf("invalid -max-size: %w", err).Hint("use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-size 16GiB")
	}
	exp, err := parseExpiry(*expiry)
	if err != nil {
		return cmdline.Errorf("invalid -upload-expiry: %w", err).Hint("use a Go duration or days, e.g. -upload-expiry 168h or 7d")
	}
	if *stall < time.Second || *stall > time.Hour {
		return cmdline.Errorf("invalid -stall-timeout %s: want 1s to 1h", *stall).Hint("a slow link needs a minute or more, e.g. -stall-timeout 60s")
	}
	if *maxOpen < 1 || *maxOpen > 10000 {
		return cmdline.Errorf("invalid -max-open-uploads %d: want 1 to 10000", *maxOpen).Hint("a caseworker needs one upload per interview in flight, e.g. -max-open-uploads 8")
	}
	perDay, err := parseSize(*maxDay)
	if err != nil {
		return cmdline.Errorf("invalid -max-bytes-per-day: %w", err).Hint("use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-bytes-per-day 64GiB")
	}
	unreviewed, err := parseSize(*maxUnreviewed)
	if err != nil {
		return cmdline.Errorf("invalid -max-unreviewed: %w", err).Hint("use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-unreviewed 256GiB")
	}
	var retainFor time.Duration
	if *retain != "" {
		if retainFor, err = parseExpiry(*retain); err != nil {
			return cmdline.Errorf("invalid -retain-uncollected: %w", err).Hint("use a Go duration or days, e.g. -retain-uncollected 30d")
		}
	}
	if *compactAtStart {
		did, res, err := server.CompactIfFree(*data, server.DefaultCompactFree)
		if err != nil {
			return explain(err, *data)
		}
		if did {
			fmt.Fprintf(c.stdout, "compacted %s: %d bytes before, %d after\n", server.DBPath(*data), res.Before, res.After)
		}
	}
	return c.runServer(server.RunConfig{
		StallTimeout: *stall,
		DataDir:      *data,
		Addr:         *addr,
		UnixPath:     *unixPath,
		Listeners:    activated,
		ACME:         acme,
		CertFile:     *certFile,
		KeyFile:      *keyFile,
		SelfSigned:   *selfSigned,
		MaxSize:      size,
		UploadExpiry: exp,
		Limits:       server.Limits{OpenUploads: *maxOpen, BytesPerDay: perDay, UnreviewedBytes: unreviewed},

		RetainUncollected: retainFor,
	}, nil)
}

// acmeFlags checks -acme-domain, -acme-email and -acme-directory; nil
// means ACME is not used.
func acmeFlags(domain, email, directory string) (*server.ACMEConfig, error) {
	if domain == "" {
		if email != "" || directory != "" {
			return nil, cmdline.Errorf("-acme-email and -acme-directory need -acme-domain").Hint("add -acme-domain with the server's public DNS name")
		}
		return nil, nil
	}
	if strings.HasSuffix(strings.TrimSuffix(strings.ToLower(domain), "."), ".onion") {
		return nil, cmdline.Errorf("-acme-domain %s: ACME CAs do not issue certificates for onion services", domain).Hint("for an onion service use -tls-self-signed and give caseworkers its -pin")
	}
	if !strings.Contains(domain, ".") || strings.ContainsAny(domain, "/:* ") {
		return nil, cmdline.Errorf("-acme-domain %q is not a DNS name", domain).Hint("give the server's public name only, e.g. -acme-domain intake.example.org")
	}
	if email == "" || !strings.Contains(email, "@") {
		return nil, cmdline.Errorf("-acme-email %q is not an email address", email).Hint("the CA writes there about expiring or revoked certificates, e.g. -acme-email ops@example.org")
	}
	if directory != "" {
		u, err := url.Parse(directory)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, cmdline.Errorf("-acme-directory %q is not an https:// URL", directory).Hint("leave it out for Let's Encrypt, or give the CA's directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory")
		}
	}
	return &server.ACMEConfig{Domain: domain, Email: email, DirectoryURL: directory}, nil
}

// defaultMemoryLimit is the Go runtime's soft memory limit while serving.
const defaultMemoryLimit = 128 << 20

// runServer runs the server, printing how to reach it; ready, if set, is
// called after that with the listening address.
func (c *cli) runServer(cfg server.RunConfig, ready func(server.ReadyInfo)) error {
	// The live heap is bounded (server.MaxChunksInFlight chunk buffers, small
	// per-connection state), but by default the garbage collector lets the
	// heap grow to twice the live size. A soft limit keeps a small VPS's
	// memory predictable; GOMEMLIMIT in the environment overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.stderr, nil))
	cfg.Version = version.String(progName)
	cfg.Ready = func(info server.ReadyInfo) {
		if cfg.ACME != nil {
			fmt.Fprintf(c.stdout, "TLS certificate for %s from the ACME CA, fetched on the first connection; clients need neither -ca nor -pin\n", cfg.ACME.Domain)
		} else {
			fmt.Fprintf(c.stdout, "TLS certificate SHA-256 fingerprint: %s\n", info.Fingerprint)
		}
		if cfg.SelfSigned {
			fmt.Fprintf(c.stdout, "clients: -ca %s or -pin %s\n", server.SelfSignedCertPath(cfg.DataDir), info.Fingerprint)
		}
		if info.Activated > 0 {
			fmt.Fprintf(c.stdout, "serving %d socket(s) from systemd\n", info.Activated)
		}
		if info.Unix != "" {
			fmt.Fprintf(c.stdout, "listening on unix socket %s\n", info.Unix)
		}
		if info.Addr.Network() == "tcp" {
			fmt.Fprintf(c.stdout, "listening on https://%s (admin socket %s)\n", info.Addr, server.AdminSocketPath(cfg.DataDir))
		} else {
			fmt.Fprintf(c.stdout, "admin socket %s\n", server.AdminSocketPath(cfg.DataDir))
		}
		if ready != nil {
			ready(info)
		}
	}
	return explain(server.Run(c.ctx, cfg), cfg.DataDir)
}

var sizeSuffixes = []struct {
	suffix string
	shift  uint
}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}}

func parseSize(s string) (int64, error) {
	shift := uint(0)
	for _, sfx := range sizeSuffixes {
		if num, ok := strings.CutSuffix(s, sfx.suffix); ok {
			s, shift = num, sfx.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of bytes", s)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

func parseExpiry(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("%q is not a number of days between 1 and 3650", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return d, nil
}
