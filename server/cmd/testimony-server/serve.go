package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/server"
)

const serveUsage = `Usage: testimony-server serve -data DIR -addr HOST:PORT
           (-tls-cert FILE -tls-key FILE | -tls-self-signed)
           [-max-size BYTES] [-upload-expiry DURATION] [-stall-timeout DURATION]
           [-compact-at-start] [-max-open-uploads N] [-max-bytes-per-day BYTES]
           [-max-unreviewed BYTES]

Serves the HTTPS API (docs/api.md) until SIGINT or SIGTERM, then lets
requests in flight finish. Also listens on DIR/admin.sock for the token and
recipients commands. Logs go to stderr and never hold client addresses,
User-Agents, tokens or bodies.

Flags:
    -data DIR                initialized data directory
    -addr HOST:PORT          address to listen on, e.g. 0.0.0.0:443
    -tls-cert FILE           PEM certificate chain
    -tls-key FILE            PEM private key of -tls-cert
    -tls-self-signed         use DIR/tls/cert.pem, creating it on first use
                             (ECDSA P-256, for 127.0.0.1, ::1, localhost and
                             the host of -addr); clients use -ca or -pin with
                             the fingerprint printed at start
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

The limits per token are counted in memory and start from zero when the
server starts: nothing on disk links a submission to its token.

Example:
    testimony-server serve -data /var/lib/testimony -addr 0.0.0.0:443 \
        -tls-cert /etc/testimony/cert.pem -tls-key /etc/testimony/key.pem
`

func (c *cli) serve(args []string) error {
	fs := newFlags("serve")
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
	rest, err := c.parseFlags(fs, serveUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data", "addr"); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") || (*certFile == "") == !*selfSigned {
		return withHint(errors.New("give either -tls-cert and -tls-key, or -tls-self-signed"),
			"with a certificate from your CA: -tls-cert cert.pem -tls-key key.pem; without one: -tls-self-signed")
	}
	size, err := parseSize(*maxSize)
	if err != nil {
		return withHint(fmt.Errorf("invalid -max-size: %w", err), "use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-size 16GiB")
	}
	exp, err := parseExpiry(*expiry)
	if err != nil {
		return withHint(fmt.Errorf("invalid -upload-expiry: %w", err), "use a Go duration or days, e.g. -upload-expiry 168h or 7d")
	}
	if *stall < time.Second || *stall > time.Hour {
		return withHint(fmt.Errorf("invalid -stall-timeout %s: want 1s to 1h", *stall), "a slow link needs a minute or more, e.g. -stall-timeout 60s")
	}
	if *maxOpen < 1 || *maxOpen > 10000 {
		return withHint(fmt.Errorf("invalid -max-open-uploads %d: want 1 to 10000", *maxOpen), "a caseworker needs one upload per interview in flight, e.g. -max-open-uploads 8")
	}
	perDay, err := parseSize(*maxDay)
	if err != nil {
		return withHint(fmt.Errorf("invalid -max-bytes-per-day: %w", err), "use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-bytes-per-day 64GiB")
	}
	unreviewed, err := parseSize(*maxUnreviewed)
	if err != nil {
		return withHint(fmt.Errorf("invalid -max-unreviewed: %w", err), "use bytes, or a number with KiB, MiB, GiB or TiB, e.g. -max-unreviewed 256GiB")
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
		CertFile:     *certFile,
		KeyFile:      *keyFile,
		SelfSigned:   *selfSigned,
		MaxSize:      size,
		UploadExpiry: exp,
		Limits:       server.Limits{OpenUploads: *maxOpen, BytesPerDay: perDay, UnreviewedBytes: unreviewed},
	}, nil)
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
	cfg.Ready = func(info server.ReadyInfo) {
		fmt.Fprintf(c.stdout, "TLS certificate SHA-256 fingerprint: %s\n", info.Fingerprint)
		if cfg.SelfSigned {
			fmt.Fprintf(c.stdout, "clients: -ca %s or -pin %s\n", server.SelfSignedCertPath(cfg.DataDir), info.Fingerprint)
		}
		fmt.Fprintf(c.stdout, "listening on https://%s (admin socket %s)\n", info.Addr, server.AdminSocketPath(cfg.DataDir))
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
