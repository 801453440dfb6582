package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Timeouts of the HTTPS server. Routes that stream (one-shot upload,
// download) extend their deadlines per MiB; see transferTimeoutPerMiB.
const (
	readHeaderTimeout = 20 * time.Second
	readTimeout       = 120 * time.Second
	writeTimeout      = 120 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 30 * time.Second
	maxHeaderBytes    = 16 << 10
	// maxFrameSize is the largest HTTP/2 frame the server accepts: the
	// protocol's minimum. A DATA frame reaches the handler only once all
	// of it has arrived, and Go's client fills frames up to 512 KiB when
	// the server allows 1 MiB (net/http's default): over a 20 KB/s link
	// cut every 30 s, each frame needs 26 s, and a chunk upload delivered
	// no byte to the handler on any connection. With 16 KiB frames a cut
	// costs at most 16 KiB of body, as with HTTP/1.1.
	maxFrameSize = 16 << 10
	// expireInterval is how often unfinished uploads past their expiry
	// are deleted.
	expireInterval = 10 * time.Minute
)

// RunConfig configures Run, the serve command.
type RunConfig struct {
	// DataDir is an initialized data directory. Required.
	DataDir string
	// Addr is the HOST:PORT to listen on for TCP. At least one of Addr,
	// UnixPath and Listeners is required; each one given is served.
	Addr string
	// UnixPath is a unix socket to listen on, for a Tor onion service.
	UnixPath string
	// Listeners are sockets already listening, as passed by systemd's
	// socket activation (ActivationListeners). Run closes them.
	Listeners []net.Listener
	// CertFile and KeyFile are the PEM certificate chain and key to serve,
	// unless SelfSigned is set; then the data directory's self-signed
	// certificate is used, and created on first use. Unless ACME is set;
	// then certificates come from an ACME CA.
	CertFile, KeyFile string
	SelfSigned        bool
	ACME              *ACMEConfig
	// MaxSize and UploadExpiry: see Config.
	MaxSize      int64
	UploadExpiry time.Duration
	// StallTimeout: see Config.
	StallTimeout time.Duration
	// Limits and RetainUncollected: see Config.
	Limits            Limits
	RetainUncollected time.Duration
	// ReadHeaderTimeout is how long a client may take for the TLS
	// handshake, and then for each request's headers; zero means 20 s.
	// Tests shorten it.
	ReadHeaderTimeout time.Duration
	// Logger receives the request log; nil discards it.
	Logger *slog.Logger
	// Version names the program and its version ("testimony-server 0.9.0
	// (go1.26.8 linux/amd64)", internal/version) for the log line Run
	// writes when it starts. It is never served: a response that named
	// the build would tell an attacker which known flaws to try.
	Version string
	// Ready, if set, is called once the server accepts connections.
	Ready func(ReadyInfo)
}

// ReadyInfo tells the operator how to reach a running server.
type ReadyInfo struct {
	Addr net.Addr
	// Unix is the unix socket listened on, if any, and Activated the
	// number of sockets passed by systemd.
	Unix      string
	Activated int
	// Fingerprint is the SHA-256 of the certificate, the value of the
	// clients' -pin; empty with ACME, whose certificates change.
	Fingerprint string
}

// Run serves the deployment in cfg.DataDir until ctx is done, then shuts
// down gracefully: it stops accepting, lets requests in flight finish (for
// up to 30 s), removes the admin socket and closes the store.
func Run(ctx context.Context, cfg RunConfig) error {
	lns := cfg.Listeners
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if cfg.DataDir == "" || (cfg.Addr == "" && cfg.UnixPath == "" && len(lns) == 0) {
		closeAll()
		return errors.New("failed to start: a data directory and an address are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sources := 0
	for _, set := range []bool{cfg.CertFile != "" || cfg.KeyFile != "", cfg.SelfSigned, cfg.ACME != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 || (cfg.CertFile == "") != (cfg.KeyFile == "") {
		closeAll()
		return errors.New("failed to start: give one of a certificate and its key, self-signed, or ACME")
	}
	defer closeAll()
	db, err := openStore(cfg.DataDir, false)
	if err != nil {
		return err
	}
	defer func() {
		// Close saves the freelist, which makes the next start fast.
		if err := db.Close(); err != nil {
			logger.Error("failed to close the store", "error", err)
		}
	}()
	if err := ensureDataDir(cfg.DataDir); err != nil {
		return err
	}
	srv, err := New(Config{DB: db, MaxSize: cfg.MaxSize, UploadExpiry: cfg.UploadExpiry, StallTimeout: cfg.StallTimeout, Limits: cfg.Limits, RetainUncollected: cfg.RetainUncollected, Logger: logger})
	if err != nil {
		return err
	}

	var (
		tlsConfig   *tls.Config
		fingerprint string
	)
	switch {
	case cfg.ACME != nil:
		if tlsConfig, err = acmeTLSConfig(cfg.DataDir, *cfg.ACME); err != nil {
			return err
		}
	default:
		var cert tls.Certificate
		if cfg.SelfSigned {
			var host string
			if cfg.Addr != "" {
				if host, _, err = net.SplitHostPort(cfg.Addr); err != nil {
					return fmt.Errorf("failed to parse the address %q: %w", cfg.Addr, err)
				}
			}
			if cert, err = SelfSignedCertificate(cfg.DataDir, host); err != nil {
				return err
			}
		} else if cert, err = LoadCertificate(cfg.CertFile, cfg.KeyFile); err != nil {
			return err
		}
		tlsConfig, fingerprint = TLSConfig(cert), Fingerprint(cert.Certificate[0])
	}

	activated := len(lns)
	if cfg.Addr != "" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("failed to listen on %s: %w", cfg.Addr, err)
		}
		lns = append(lns, ln)
	}
	if cfg.UnixPath != "" {
		ln, err := listenUnix(cfg.UnixPath)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		// Go removes the socket file when the listener closes.
	}
	adminLn, err := listenAdmin(cfg.DataDir)
	if err != nil {
		return err
	}

	headerTimeout := cfg.ReadHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = readHeaderTimeout
	}
	errorLog := log.New(&redactingWriter{log: logger}, "", 0)
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
		HTTP2:             &http.HTTP2Config{MaxReadFrameSize: maxFrameSize},
	}
	as := &http.Server{
		Handler:           srv.AdminHandler(),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		ErrorLog:          errorLog,
	}

	var wg sync.WaitGroup
	serveErr := make(chan error, len(lns)+1)
	for _, ln := range lns {
		wg.Go(func() { serveErr <- hs.ServeTLS(ln, "", "") })
	}
	wg.Go(func() { serveErr <- as.Serve(adminLn) })
	loopCtx, stopLoop := context.WithCancel(ctx)
	wg.Go(func() { srv.expireLoop(loopCtx) })

	info := ReadyInfo{Addr: lns[len(lns)-1].Addr(), Unix: cfg.UnixPath, Activated: activated, Fingerprint: fingerprint}
	for _, ln := range lns {
		if ln.Addr().Network() == "tcp" {
			info.Addr = ln.Addr()
			break
		}
	}
	logger.Info("serving", "version", cfg.Version, "addr", info.Addr.String(), "unix", cfg.UnixPath, "activated", activated, "acme", cfg.ACME != nil, "admin_socket", AdminSocketPath(cfg.DataDir))
	if cfg.Ready != nil {
		cfg.Ready(info)
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		err = fmt.Errorf("server stopped: %w", err)
	}
	logger.Info("shutting down")
	stopLoop()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if serr := hs.Shutdown(shutCtx); serr != nil {
		hs.Close()
	}
	if serr := as.Shutdown(shutCtx); serr != nil {
		as.Close()
	}
	wg.Wait()
	return err
}

// listenAdmin listens on the admin socket. A socket file left by a server
// that was killed is replaced; one that answers means another server runs
// on this data directory.
func listenAdmin(dataDir string) (net.Listener, error) {
	path := AdminSocketPath(dataDir)
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("failed to create the admin socket: another server answers on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to remove the old admin socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to create the admin socket %s: %w", path, err)
	}
	// The directory (0700) already keeps others out; the mode is a second
	// fence where the system honours it.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to restrict the admin socket: %w", err)
	}
	return ln, nil
}

func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		n, err := s.ExpireUploads()
		if err != nil {
			s.log.Error("failed to expire uploads", "error", err)
		} else if n > 0 {
			s.log.Info("expired uploads", "count", n)
		}
		// Deletions after review that a crash interrupted are finished
		// here, at start and then now and again.
		if n, err := s.db.FinishDeletions(); err != nil {
			s.log.Error("failed to finish deleting reviewed ciphertext", "error", err)
		} else if n > 0 {
			s.log.Info("finished deleting reviewed ciphertext", "submissions", n)
		}
		s.logRetention()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clientAddr matches the IPv4 and IPv6 "host:port" forms net/http puts in
// its own messages ("TLS handshake error from 192.0.2.1:4711: …").
var clientAddr = regexp.MustCompile(`\[[0-9A-Fa-f:.%\w-]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}:\d+`)

// redactingWriter takes net/http's own error log and passes it to the
// request log without client addresses.
type redactingWriter struct {
	log *slog.Logger
}

func (w *redactingWriter) Write(p []byte) (int, error) {
	msg := clientAddr.ReplaceAllString(strings.TrimSpace(string(p)), "[client]")
	w.log.Warn("http server", "detail", msg)
	return len(p), nil
}
