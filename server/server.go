package server

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// Limits and defaults. docs/api.md lists them; keep it in step.
const (
	// ChunkSize is the size of every upload chunk but the last.
	ChunkSize = store.ChunkSize
	// DefaultMaxSize is the largest submission accepted unless -max-size
	// says otherwise: hours of video.
	DefaultMaxSize int64 = 16 << 30
	// DefaultUploadExpiry is how long an unfinished upload is kept.
	DefaultUploadExpiry = 7 * 24 * time.Hour
	// DefaultStallTimeout is how long a chunk upload may carry no bytes in
	// either direction before the server closes it, keeping what arrived.
	DefaultStallTimeout = 60 * time.Second
	// maxJSONBody bounds every JSON request body.
	maxJSONBody = 4 << 10
	// transferTimeoutPerMiB is how long each MiB of a one-shot upload or a
	// download may take: 1 MiB at 20 KB/s, a bad satellite link, takes
	// 52 s. Streaming routes extend their deadlines by this much per MiB,
	// so a long transfer survives as long as it keeps moving.
	transferTimeoutPerMiB = 90 * time.Second
	// Failed authentications allowed per second across all clients, and
	// the burst allowed before 429s begin.
	defaultAuthFailureRate  = 10
	defaultAuthFailureBurst = 100
)

// Config configures a Server.
type Config struct {
	// DB is the open store of an initialized data directory. Required.
	DB *store.DB
	// MaxSize is the largest submission in bytes; zero means DefaultMaxSize.
	MaxSize int64
	// UploadExpiry is how long an unfinished upload is kept; zero means
	// DefaultUploadExpiry.
	UploadExpiry time.Duration
	// StallTimeout is how long a chunk upload may carry nothing before it
	// is closed; zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// Logger receives one line per request and the details of server
	// errors; nil discards them.
	Logger *slog.Logger
	// AuthFailureRate and AuthFailureBurst bound failed authentications
	// (per second, and the burst); zero means the defaults.
	AuthFailureRate  float64
	AuthFailureBurst int
	// Limits bound what each submit token may use; zero fields mean the
	// defaults.
	Limits Limits
	// RetainUncollected, if positive, is how long a submission may stay
	// uncollected before the server warns (log, GET /v1/health for collect
	// tokens). It never deletes.
	RetainUncollected time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Server serves the API of one deployment.
type Server struct {
	db *store.DB
	// dep changes only when recipients set replaces the recipients;
	// setMu serializes those changes.
	dep     atomic.Pointer[deployment]
	setMu   sync.Mutex
	intake  *intakeLog
	maxSize int64
	expiry  time.Duration
	stall   time.Duration
	writers uploadWriters
	log     *slog.Logger
	now     func() time.Time
	limiter *failureLimiter
	buffers *bufferPool
	quota   *quotas
	retain  time.Duration
	// receiving holds the ids of one-shot submissions whose body is still
	// arriving before anything of them is stored (a body of one chunk is
	// stored whole at the end), so that the limit on open uploads counts
	// them although the store has no upload record for them.
	receiving sync.Map
	// testHookCommitted, if set, is called after a submission is committed
	// and before its checkpoint is signed; crash tests kill the process
	// there.
	testHookCommitted func(index int64)
}

// New returns a Server for the deployment in cfg.DB. It fails with
// ErrNotInitialized if init has not been run.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("server: Config.DB is required")
	}
	dep, err := loadDeployment(cfg.DB)
	if err != nil {
		return nil, err
	}
	s := &Server{
		db:      cfg.DB,
		intake:  newIntakeLog(cfg.DB, dep.logSigner),
		maxSize: cfg.MaxSize,
		expiry:  cfg.UploadExpiry,
		stall:   cfg.StallTimeout,
		log:     cfg.Logger,
		now:     cfg.Now,
		buffers: newBufferPool(MaxChunksInFlight, bufferWait),
		quota:   newQuotas(cfg.Limits),
		retain:  cfg.RetainUncollected,
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxSize
	}
	if s.expiry <= 0 {
		s.expiry = DefaultUploadExpiry
	}
	if s.stall <= 0 {
		s.stall = DefaultStallTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	rate, burst := cfg.AuthFailureRate, cfg.AuthFailureBurst
	if rate <= 0 {
		rate = defaultAuthFailureRate
	}
	if burst <= 0 {
		burst = defaultAuthFailureBurst
	}
	s.limiter = newFailureLimiter(rate, burst, s.now)
	s.dep.Store(dep)
	return s, nil
}

// ExpireUploads deletes unfinished uploads whose expiry has passed.
func (s *Server) ExpireUploads() (int, error) {
	return s.db.ExpireUploads(s.now())
}
