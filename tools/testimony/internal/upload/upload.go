// Package upload sends one ciphertext to the intake server as a resumable,
// chunked upload and retries through the failures of slow or censored
// links: network errors, 5xx and 429 answers are retried with exponential
// backoff and jitter, and after every failure the server is asked what it
// holds — which chunks are missing, and how much of a chunk that was cut
// off arrived — so nothing is sent twice needlessly and nothing is skipped.
//
// It never gives up while the upload advances: a failure after which the
// server holds more than before starts the backoff again, and only time
// without progress (GiveUpAfter, a day by default) ends the attempts. A
// chunk request on which no byte moves for StallTimeout is abandoned and
// retried.
//
// On a fast link two chunks travel side by side, so that the next chunk is
// on the wire while the server commits the last; on a slow one (a chunk
// takes longer than FastChunk) one at a time, so that a cut never holds
// two chunks in flight.
//
// The file may still be being written when the upload starts (Job.Written):
// its size must be known, its SHA-256 is given to the server only with the
// finish, once the whole file exists.
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// MaxChunkSize bounds the chunk size a server may ask for; the uploader
// holds one chunk in memory per chunk in flight.
const MaxChunkSize = 8 << 20

// DefaultParallel is how many chunk requests a fast link carries at once.
// Two hide the round trip and the server's commit of each chunk; more
// only share the same link.
const DefaultParallel = 2

// FastChunk is the time under which a chunk must have been sent, answer
// included, for the next ones to go side by side. Slower links (below
// 2 MiB/s with 1 MiB chunks) send one chunk at a time: there the round
// trip is a small part of a chunk's time, and a second chunk in flight
// would only be a second chunk cut off at every drop of the link.
const FastChunk = 500 * time.Millisecond

// DefaultRequestTimeout bounds one request other than a chunk upload; a
// chunk upload is bounded by StallTimeout instead, however long it takes.
const DefaultRequestTimeout = 10 * time.Minute

// DefaultStallTimeout is how long a chunk upload may hand no byte to the
// connection before it is abandoned and retried.
const DefaultStallTimeout = 60 * time.Second

// errStalled is the error of a chunk upload abandoned for a stall.
var errStalled = errors.New("no data moved: the connection stalled")

// ErrBadServerState means the server described an upload that cannot be
// right for this file (wrong size, impossible chunk numbers).
var ErrBadServerState = errors.New("server reported an inconsistent upload")

// Server is the part of the API the uploader needs. *api.Client implements it.
type Server interface {
	CreateUpload(ctx context.Context, size int64, sha256Hex string) (*api.Upload, error)
	PutChunk(ctx context.Context, id string, index int, offset int64, rest []byte, chunkSHA256 string, sent func(n int)) error
	UploadStatus(ctx context.Context, id string) (*api.Upload, error)
	Finish(ctx context.Context, id, sha256Hex string) ([]byte, error)
}

// Uploader uploads files. Only Server is required.
type Uploader struct {
	Server Server
	// Retry is the backoff between attempts without progress; zero means
	// retry.Upload. Its Attempts, if set, bounds the consecutive failures
	// without progress.
	Retry retry.Policy
	// GiveUpAfter is how long to keep trying without progress; zero means
	// retry.DefaultGiveUpAfter, negative means forever.
	GiveUpAfter time.Duration
	// Now is the clock of GiveUpAfter; nil means time.Now.
	Now func() time.Time
	// Sleep waits between attempts; nil means retry.Sleep.
	Sleep retry.SleepFunc
	// Progress, if set, is called with the bytes sent so far: those the
	// server holds, and during a chunk those handed to the connection.
	Progress func(done, total int64)
	// Retrying, if set, is told about every failure that will be retried,
	// the wait before the next try, and the bytes the server holds of the
	// total; a wait of 0 means the failure cut off a chunk that had
	// advanced, and the upload continues at once.
	Retrying func(err error, wait time.Duration, held, total int64)
	// RequestTimeout bounds each request but chunk uploads; zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// StallTimeout is how long a chunk upload may move no byte before it
	// is abandoned; zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// RateLimit, if positive, caps the average upload rate in bytes per
	// second (paced per chunk), for links that must not be saturated or
	// where a burst of traffic draws attention.
	RateLimit int64
	// Parallel is the most chunk requests on the wire at once on a fast
	// link (see FastChunk); zero means DefaultParallel, 1 one at a time.
	Parallel int
}

// Job is one file to upload.
type Job struct {
	File io.ReaderAt
	Size int64
	// SHA256 is the file's SHA-256 in lowercase hex, or "" for a file
	// that is still being written: then Written and Sum must be set.
	SHA256 string
	// Written, if set, blocks until the first n bytes of File can be
	// read; an error ends the upload. Chunks are sent in order, each once
	// it is written, so the upload overlaps the writing.
	Written func(ctx context.Context, n int64) error
	// Sum, if SHA256 is "", blocks until the file is complete and returns
	// its SHA-256; the upload is finished only then.
	Sum func(ctx context.Context) (string, error)
	// UploadID is the upload a previous run created, or "".
	UploadID string
	// SaveUploadID persists a newly created upload id before any chunk is
	// sent, so a killed client resumes that upload.
	SaveUploadID func(id string) error
}

// Run uploads job and returns the submission id and the server's receipt
// JSON, which the caller must verify.
func (u *Uploader) Run(ctx context.Context, job Job) (id string, receipt []byte, err error) {
	r := &run{Uploader: u, job: job, id: job.UploadID}
	pol := u.Retry
	if pol.Initial == 0 {
		pol = retry.Upload
	}
	giveUp := u.GiveUpAfter
	switch {
	case giveUp == 0:
		giveUp = retry.DefaultGiveUpAfter
	case giveUp < 0:
		giveUp = 0
	}
	r.backoff = retry.Progress{Policy: pol, GiveUpAfter: giveUp, Now: u.Now}
	if r.RequestTimeout == 0 {
		r.RequestTimeout = DefaultRequestTimeout
	}
	if r.StallTimeout == 0 {
		r.StallTimeout = DefaultStallTimeout
	}
	if job.SHA256 == "" && (job.Written == nil || job.Sum == nil) {
		return "", nil, errors.New("upload: a job without SHA256 needs Written and Sum")
	}
	receipt, err = r.loop(ctx)
	if err != nil {
		return "", nil, err
	}
	return r.id, receipt, nil
}

type run struct {
	*Uploader
	job       Job
	id        string
	chunkSize int64
	chunks    int
	missing   []int         // nil: unknown, ask the server
	offsets   map[int]int64 // bytes the server holds of missing chunks
	backoff   retry.Progress
	// held is the most the server was seen to hold; more is progress.
	held int64
	// moved is whether a chunk request that failed handed bytes to the
	// connection; then the server is asked what arrived before the
	// failure counts as one without progress (probeErr).
	moved    bool
	probeErr error
	// bufs are the chunk buffers not in use.
	bufs [][]byte
	// fast is whether the last chunk was sent within FastChunk.
	fast bool
	// mu guards what the requests in flight share with the run: missing,
	// offsets, moved, inFlight, and calls of Progress.
	mu sync.Mutex
	// inFlight is, for each chunk in flight, the bytes handed to the
	// connection.
	inFlight map[int]int64
	// rejected is the finish error that made the client ask for the
	// upload state; if the state then shows nothing left to send, retrying
	// cannot help.
	rejected error
	// paceStart and paced track the bytes sent for RateLimit.
	paceStart time.Time
	paced     int64
}

func (r *run) loop(ctx context.Context) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.id == "" {
			if err := r.create(ctx); err != nil {
				if err := r.afterFailure(ctx, err); err != nil {
					return nil, err
				}
			}
			continue
		}
		if r.missing == nil {
			receipt, err := r.state(ctx)
			if receipt != nil {
				return receipt, nil
			}
			if err != nil {
				if err := r.afterFailure(ctx, err); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := r.sendMissing(ctx); err != nil {
			if err := r.afterFailure(ctx, err); err != nil {
				return nil, err
			}
			continue
		}
		receipt, err := r.finish(ctx)
		if err == nil {
			return receipt, nil
		}
		if err := r.afterFailure(ctx, err); err != nil {
			return nil, err
		}
	}
}

// afterFailure decides after a failure: it returns nil after waiting if the
// operation should be tried again, or the error to give up with.
func (r *run) afterFailure(ctx context.Context, err error) error {
	if retry.IsPermanent(err) || errors.Is(err, ErrBadServerState) || !api.Retryable(err) && !errors.Is(err, errAskAgain) && !errors.Is(err, errStalled) {
		return err
	}
	// After any failure the server's view is the truth: ask it again.
	r.missing = nil
	if r.moved {
		// Whether this was progress only the server can say: ask it
		// right away, and count the failure only if nothing arrived.
		r.moved, r.probeErr = false, err
		return nil
	}
	// A failed question about what arrived counts as the failure; the
	// message keeps what started it (a cut, a stall).
	if r.probeErr != nil {
		err = fmt.Errorf("%w (after %v)", err, r.probeErr)
		r.probeErr = nil
	}
	d, gerr := r.backoff.Failed(err)
	if gerr != nil {
		return gerr
	}
	if ra := api.RetryAfter(err); ra > d {
		d = min(ra, max(r.backoff.Policy.Max, d))
	}
	if r.Retrying != nil {
		r.Retrying(err, d, r.held, r.job.Size)
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = retry.Sleep
	}
	return sleep(ctx, d)
}

// errAskAgain marks answers that are not network failures but mean the
// client's view of the upload is stale (a finish that raced another
// client, chunks the server lost, an offset that moved); the cure is to
// ask for the state, and it still counts as a failure so that a confused
// server cannot keep the client looping.
var errAskAgain = errors.New("upload state changed on the server")

func (r *run) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.RequestTimeout)
}

func (r *run) create(ctx context.Context) error {
	cctx, cancel := r.call(ctx)
	defer cancel()
	up, err := r.Server.CreateUpload(cctx, r.job.Size, r.job.SHA256)
	if err != nil {
		return err
	}
	if !ids.ValidSubmission(up.ID) {
		return fmt.Errorf("%w: malformed upload id", ErrBadServerState)
	}
	if err := r.setGeometry(up); err != nil {
		return err
	}
	if r.job.SaveUploadID != nil {
		if err := r.job.SaveUploadID(up.ID); err != nil {
			return retry.Permanent(err)
		}
	}
	r.id = up.ID
	r.missing = make([]int, r.chunks)
	for i := range r.missing {
		r.missing[i] = i
	}
	r.offsets = nil
	r.progress()
	return nil
}

// state asks the server about the upload. It returns the receipt if the
// upload is already complete.
func (r *run) state(ctx context.Context) ([]byte, error) {
	cctx, cancel := r.call(ctx)
	defer cancel()
	up, err := r.Server.UploadStatus(cctx, r.id)
	if api.IsStatus(err, http.StatusNotFound) {
		if r.rejected != nil {
			// The server refused the finished file and deleted it: the
			// stored bytes were not the file this client hashed.
			return nil, retry.Permanent(r.rejected)
		}
		// Expired (or never stored): start a new upload of the same file.
		r.id = ""
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if up.State == api.StateComplete {
		if len(up.Receipt) == 0 {
			return nil, fmt.Errorf("%w: complete upload without a receipt", ErrBadServerState)
		}
		return up.Receipt, nil
	}
	if up.State != api.StateOpen {
		return nil, fmt.Errorf("%w: unknown state %q", ErrBadServerState, api.Sanitize(up.State, 20))
	}
	if err := r.setGeometry(up); err != nil {
		return nil, err
	}
	seen := make(map[int]bool, len(up.Missing))
	missing := make([]int, 0, len(up.Missing))
	for _, i := range up.Missing {
		if i < 0 || i >= r.chunks {
			return nil, fmt.Errorf("%w: missing chunk %d of %d", ErrBadServerState, i, r.chunks)
		}
		if !seen[i] {
			seen[i] = true
			missing = append(missing, i)
		}
	}
	offsets := make(map[int]int64, len(up.Partial))
	for _, p := range up.Partial {
		if !seen[p.Index] || p.Offset < 0 || p.Offset >= r.chunkLen(p.Index) {
			return nil, fmt.Errorf("%w: %d bytes held of chunk %d", ErrBadServerState, p.Offset, p.Index)
		}
		offsets[p.Index] = p.Offset
	}
	if len(missing) == 0 && r.rejected != nil {
		return nil, retry.Permanent(r.rejected)
	}
	r.missing, r.offsets = missing, offsets
	held := r.heldBytes()
	progressed := held > r.held
	if progressed {
		r.held = held
		r.backoff.Advanced()
	}
	if err := r.probeErr; err != nil {
		r.probeErr = nil
		if !progressed {
			return nil, err
		}
		if r.Retrying != nil {
			r.Retrying(err, 0, r.held, r.job.Size)
		}
	}
	r.progress()
	return nil, nil
}

func (r *run) setGeometry(up *api.Upload) error {
	if up.Size != r.job.Size {
		return fmt.Errorf("%w: server expects %d bytes, the file has %d", ErrBadServerState, up.Size, r.job.Size)
	}
	if up.ChunkSize <= 0 || up.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d", ErrBadServerState, up.ChunkSize)
	}
	n := (r.job.Size + up.ChunkSize - 1) / up.ChunkSize
	if int64(up.Chunks) != n {
		return fmt.Errorf("%w: %d chunks for %d bytes of %d", ErrBadServerState, up.Chunks, r.job.Size, up.ChunkSize)
	}
	r.chunkSize, r.chunks = up.ChunkSize, up.Chunks
	return nil
}

// heldBytes returns what the server holds, as far as the client knows.
func (r *run) heldBytes() int64 {
	held := r.job.Size
	for _, i := range r.missing {
		held -= r.chunkLen(i) - r.offsets[i]
	}
	return held
}

// progress reports what the server holds plus the bytes of chunks in
// flight handed to the connection.
func (r *run) progress() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progressLocked()
}

func (r *run) progressLocked() {
	if r.Progress == nil {
		return
	}
	done := r.heldBytes()
	for _, n := range r.inFlight {
		done += n
	}
	r.Progress(min(done, r.job.Size), r.job.Size)
}

func (r *run) chunkLen(i int) int64 {
	off := int64(i) * r.chunkSize
	return min(r.chunkSize, r.job.Size-off)
}

// sent is the outcome of one chunk request.
type sent struct {
	index int
	buf   []byte
	took  time.Duration
	err   error
}

// sendMissing sends the missing chunks in order, two side by side while
// the link is fast. After a failure it sends nothing more, waits for the
// requests in flight and returns the first error.
func (r *run) sendMissing(ctx context.Context) error {
	parallel := r.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	r.mu.Lock()
	queue := append([]int(nil), r.missing...)
	r.moved = false
	r.mu.Unlock()
	results := make(chan sent, parallel)
	inFlight := 0
	var first error
	for {
		for first == nil && len(queue) > 0 && (inFlight == 0 || r.fast && inFlight < parallel) {
			i := queue[0]
			data, off, sum, err := r.prepare(ctx, i)
			if err != nil {
				first = err
				break
			}
			queue = queue[1:]
			inFlight++
			// The id is read here: a 404 for another chunk clears
			// r.id while this one may still be starting.
			id := r.id
			go func() {
				start := time.Now()
				err := r.putChunk(ctx, id, i, off, data[off:], sum)
				results <- sent{index: i, buf: data, took: time.Since(start), err: err}
			}()
		}
		if inFlight == 0 {
			return first
		}
		res := <-results
		inFlight--
		r.bufs = append(r.bufs, res.buf[:0])
		if err := r.sentErr(res); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		r.fast = res.took < FastChunk
		r.backoff.Advanced()
		r.rejected = nil
		r.mu.Lock()
		for k, m := range r.missing {
			if m == res.index {
				r.missing = append(r.missing[:k], r.missing[k+1:]...)
				break
			}
		}
		delete(r.offsets, res.index)
		delete(r.inFlight, res.index)
		r.held = max(r.held, r.heldBytes())
		r.progressLocked()
		r.mu.Unlock()
	}
}

// prepare reads chunk i into a free buffer once it is written, and paces
// it; it returns the chunk, the offset to send it from and its SHA-256.
func (r *run) prepare(ctx context.Context, i int) (data []byte, off int64, sum string, err error) {
	if n := len(r.bufs); n > 0 && int64(cap(r.bufs[n-1])) >= r.chunkSize {
		data, r.bufs = r.bufs[n-1], r.bufs[:n-1]
	} else {
		data = make([]byte, r.chunkSize)
	}
	data = data[:r.chunkLen(i)]
	if r.job.Written != nil {
		if err := r.job.Written(ctx, int64(i)*r.chunkSize+int64(len(data))); err != nil {
			return nil, 0, "", retry.Permanent(fmt.Errorf("failed to read chunk %d of the outbox file: %w", i, err))
		}
	}
	if _, err := r.job.File.ReadAt(data, int64(i)*r.chunkSize); err != nil && !(errors.Is(err, io.EOF) && len(data) > 0) {
		return nil, 0, "", retry.Permanent(fmt.Errorf("failed to read chunk %d of the outbox file: %w", i, err))
	}
	r.mu.Lock()
	off = r.offsets[i]
	r.mu.Unlock()
	if err := r.pace(ctx, len(data)-int(off)); err != nil {
		return nil, 0, "", err
	}
	h := sha256.Sum256(data)
	return data, off, hex.EncodeToString(h[:]), nil
}

// sentErr turns the failure of a chunk request into what the run does next.
func (r *run) sentErr(res sent) error {
	err := res.err
	switch {
	case err == nil:
		return nil
	case api.IsStatus(err, http.StatusNotFound):
		r.id = ""
		return errAskAgain
	case api.IsStatus(err, http.StatusConflict) && r.offsetOf(res.index) > 0:
		// The offset moved (another request of ours stored more, or
		// the server dropped a chunk whose hash failed): ask again.
		return fmt.Errorf("%w: %w", errAskAgain, err)
	}
	return err
}

func (r *run) offsetOf(i int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offsets[i]
}

// putChunk sends rest, chunk index of upload id from off on, and abandons
// the request if no byte is handed to the connection for StallTimeout: a
// link that silently stopped carrying anything then costs a minute, not
// the ten of a request timeout. Bytes sent are reported as progress as they go. If
// the request fails after bytes went out, r.moved is set. It runs beside
// the run's goroutine and shares only what r.mu guards.
func (r *run) putChunk(ctx context.Context, id string, index int, off int64, rest []byte, sum string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		// mu guards the state the transport's goroutine shares with
		// this one, which may still read the body after PutChunk
		// returned.
		mu   sync.Mutex
		last = time.Now()
		sent int64
		over bool
	)
	onSent := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		if over {
			return
		}
		last = time.Now()
		sent += int64(n)
		r.mu.Lock()
		if r.inFlight == nil {
			r.inFlight = make(map[int]int64)
		}
		r.inFlight[index] = sent
		r.progressLocked()
		r.mu.Unlock()
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(max(r.StallTimeout/8, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			idle := time.Since(last)
			mu.Unlock()
			if idle >= r.StallTimeout {
				cancel(errStalled)
				return
			}
		}
	}()
	err := r.Server.PutChunk(ctx, id, index, off, rest, sum, onSent)
	close(stop)
	mu.Lock()
	over = true
	moved := err != nil && sent > 0
	mu.Unlock()
	r.mu.Lock()
	r.moved = r.moved || moved
	if err != nil {
		delete(r.inFlight, index)
	}
	r.mu.Unlock()
	if err != nil && errors.Is(context.Cause(ctx), errStalled) {
		return fmt.Errorf("failed to upload chunk %d: %w for %s", index, errStalled, r.StallTimeout)
	}
	return err
}

// pace waits, if RateLimit is set, until sending n more bytes keeps the
// average rate since the first chunk at or under the limit.
func (r *run) pace(ctx context.Context, n int) error {
	if r.RateLimit <= 0 {
		return nil
	}
	if r.paceStart.IsZero() {
		r.paceStart = time.Now()
	}
	r.paced += int64(n)
	due := r.paceStart.Add(time.Duration(float64(r.paced) / float64(r.RateLimit) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = retry.Sleep
	}
	return sleep(ctx, d)
}

func (r *run) finish(ctx context.Context) ([]byte, error) {
	if r.job.SHA256 == "" {
		sum, err := r.job.Sum(ctx)
		if err != nil {
			return nil, retry.Permanent(err)
		}
		r.job.SHA256 = sum
	}
	cctx, cancel := r.call(ctx)
	defer cancel()
	receipt, err := r.Server.Finish(cctx, r.id, r.job.SHA256)
	switch {
	case err == nil:
		return receipt, nil
	case api.IsStatus(err, http.StatusConflict), api.IsStatus(err, http.StatusNotFound):
		// Already finished by an earlier attempt whose answer was lost:
		// the state holds the receipt.
		return nil, fmt.Errorf("%w: %w", errAskAgain, err)
	case api.IsStatus(err, http.StatusUnprocessableEntity):
		// Chunks are missing (the state lists them), or the server
		// rejected the stored file (the state shows nothing to send, or
		// the upload is gone); state tells the two apart.
		r.rejected = err
		return nil, fmt.Errorf("%w: %w", errAskAgain, err)
	}
	return nil, err
}
