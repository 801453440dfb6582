package server

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// Limits per submit token (docs/api.md, "Limits"; SECURITY.md, "Quotas").
// They bound what one stolen or runaway token can do to the disk; the disk
// itself (507) remains the bound on the total.
type Limits struct {
	// OpenUploads is how many unfinished uploads (chunked or one-shot) a
	// token may have at once; zero means DefaultOpenUploads.
	OpenUploads int
	// BytesPerDay is how many ciphertext bytes a token may send per UTC
	// day, counted as chunks and one-shot bodies are stored; zero means
	// DefaultBytesPerDay.
	BytesPerDay int64
	// UnreviewedBytes is how many bytes of a token's finished submissions
	// may wait on the server at once. Until deletion after review exists,
	// "unreviewed" means "not yet collected". Zero means
	// DefaultUnreviewedBytes.
	UnreviewedBytes int64
}

// Defaults of Limits: generous for a caseworker who records several long
// interviews a day, and far below what fills a small server's disk in one
// day.
const (
	DefaultOpenUploads     = 8
	DefaultBytesPerDay     = 64 << 30
	DefaultUnreviewedBytes = 256 << 30
)

// errQuota is a limit per token: 429.
var errQuota = errors.New("token limit reached")

// errStorageQuota is the limit on a token's unreviewed bytes: 507.
var errStorageQuota = errors.New("token storage limit reached")

// quotaError carries the Retry-After of a limit that waiting lifts.
type quotaError struct {
	apiError
	retryAfter time.Duration // 0: waiting alone does not help
}

func (e *quotaError) Unwrap() error { return e.kind }

// quotas counts what each submit token uses. The counters live in memory
// only, on purpose: nothing on disk links a submission or an upload to the
// token that sent it, so a seized server does not tell which device sent
// which testimony. The price is that a restart forgets them: uploads and
// submissions from before the restart count against no token, and the day's
// bytes start again from zero. Each request updates its token's counters in
// O(1), apart from the open uploads, which are checked against the store
// (at most OpenUploads lookups) so that expired ones stop counting.
type quotas struct {
	limits Limits
	mu     sync.Mutex
	tokens map[string]*tokenUse // by token id
	owner  map[string]string    // upload or submission id -> token id
	sizes  map[string]int64     // uncollected submission id -> size
}

type tokenUse struct {
	open       map[string]bool // ids of unfinished uploads
	day        string          // UTC date of dayBytes
	dayBytes   int64
	unreviewed int64
}

// TokenUsage is what a token uses now, for token list. It counts since the
// server started.
type TokenUsage struct {
	OpenUploads     int   `json:"open_uploads"`
	BytesToday      int64 `json:"bytes_today"`
	UnreviewedBytes int64 `json:"unreviewed_bytes"`
}

func newQuotas(l Limits) *quotas {
	if l.OpenUploads <= 0 {
		l.OpenUploads = DefaultOpenUploads
	}
	if l.BytesPerDay <= 0 {
		l.BytesPerDay = DefaultBytesPerDay
	}
	if l.UnreviewedBytes <= 0 {
		l.UnreviewedBytes = DefaultUnreviewedBytes
	}
	return &quotas{limits: l, tokens: map[string]*tokenUse{}, owner: map[string]string{}, sizes: map[string]int64{}}
}

func (q *quotas) use(tok string) *tokenUse {
	u := q.tokens[tok]
	if u == nil {
		u = &tokenUse{open: map[string]bool{}}
		q.tokens[tok] = u
	}
	return u
}

func (u *tokenUse) today(now time.Time) {
	if d := now.UTC().Format(time.DateOnly); u.day != d {
		u.day, u.dayBytes = d, 0
	}
}

func untilTomorrow(now time.Time) time.Duration {
	now = now.UTC()
	return now.Truncate(24*time.Hour).Add(24*time.Hour).Sub(now) + time.Second
}

// open reserves an upload for tok, of declared size (-1 unknown), or
// refuses with a quota error. exists tells whether an upload still exists.
func (q *quotas) open(tok, id string, size int64, now time.Time, exists func(id string) bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.use(tok)
	if len(u.open) >= q.limits.OpenUploads {
		// Uploads that expired or were deleted stop counting.
		for other := range u.open {
			if !exists(other) {
				delete(u.open, other)
				delete(q.owner, other)
			}
		}
	}
	if len(u.open) >= q.limits.OpenUploads {
		return &quotaError{apiError: apiError{kind: errQuota, msg: fmt.Sprintf(
			"this token has %d unfinished uploads, the most this server allows at once; finish or delete one (DELETE /v1/uploads/{id}) before starting another", len(u.open))}}
	}
	if err := q.checkDay(u, 0, now); err != nil {
		return err
	}
	if size > 0 && u.unreviewed+size > q.limits.UnreviewedBytes {
		return q.storageError(u)
	}
	u.open[id] = true
	q.owner[id] = tok
	return nil
}

func (q *quotas) storageError(u *tokenUse) error {
	return &quotaError{apiError: apiError{kind: errStorageQuota, msg: fmt.Sprintf(
		"this token's submissions waiting for review already take %d bytes, and this server allows %d; nothing was stored. Submit again after the collector has fetched earlier submissions",
		u.unreviewed, q.limits.UnreviewedBytes)}}
}

func (q *quotas) checkDay(u *tokenUse, n int64, now time.Time) error {
	u.today(now)
	if u.dayBytes+n > q.limits.BytesPerDay || (n == 0 && u.dayBytes >= q.limits.BytesPerDay) {
		return &quotaError{apiError: apiError{kind: errQuota, msg: fmt.Sprintf(
			"this token has sent %d bytes today (UTC), and this server allows %d per day; nothing more was stored. Try again tomorrow: an upload resumes where it stopped",
			u.dayBytes, q.limits.BytesPerDay)}, retryAfter: untilTomorrow(now)}
	}
	return nil
}

// receive counts n bytes that tok is about to store, or refuses them.
func (q *quotas) receive(tok string, n int64, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.use(tok)
	if err := q.checkDay(u, n, now); err != nil {
		return err
	}
	u.dayBytes += n
	return nil
}

// finished turns upload id into a submission of size bytes waiting for
// review.
func (q *quotas) finished(id string, size int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	tok, ok := q.owner[id]
	if !ok {
		return
	}
	u := q.use(tok)
	delete(u.open, id)
	u.unreviewed += size
	q.sizes[id] = size
}

// closed forgets an upload that was deleted without becoming a submission.
func (q *quotas) closed(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if tok, ok := q.owner[id]; ok {
		delete(q.use(tok).open, id)
		delete(q.owner, id)
	}
}

// collected releases a submission's bytes.
func (q *quotas) collected(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	tok, ok := q.owner[id]
	if !ok {
		return
	}
	u := q.use(tok)
	u.unreviewed -= q.sizes[id]
	delete(q.sizes, id)
	delete(q.owner, id)
}

// unreviewedWith refuses a submission that would take tok over its limit
// of unreviewed bytes.
func (q *quotas) unreviewedWith(tok string, size int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.use(tok)
	if u.unreviewed+size > q.limits.UnreviewedBytes {
		return q.storageError(u)
	}
	return nil
}

func (q *quotas) usage(tok string, now time.Time) *TokenUsage {
	q.mu.Lock()
	defer q.mu.Unlock()
	u, ok := q.tokens[tok]
	if !ok {
		return &TokenUsage{}
	}
	u.today(now)
	return &TokenUsage{OpenUploads: len(u.open), BytesToday: u.dayBytes, UnreviewedBytes: u.unreviewed}
}

// retryAfterOf is the Retry-After header of err, or "".
func retryAfterOf(err error) string {
	var qe *quotaError
	if errors.As(err, &qe) && qe.retryAfter > 0 {
		return strconv.Itoa(int(qe.retryAfter / time.Second))
	}
	return ""
}

func (s *Server) uploadExists(id string) bool {
	if _, ok := s.receiving.Load(id); ok {
		return true
	}
	_, err := s.db.Upload(id)
	return !errors.Is(err, store.ErrNotFound)
}
