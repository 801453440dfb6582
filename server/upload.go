package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/store"
)

type createUploadRequest struct {
	Size   *int64 `json:"size"`
	SHA256 string `json:"sha256"`
}

type uploadCreated struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	ChunkSize int    `json:"chunk_size"`
	Chunks    int    `json:"chunks"`
	Expires   string `json:"expires"`
}

type uploadOpen struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	ChunkSize int    `json:"chunk_size"`
	Chunks    int    `json:"chunks"`
	Missing   []int  `json:"missing"`
	// Partial lists the missing chunks of which the server holds a
	// start: a client continues each from its offset.
	Partial []partialChunk `json:"partial,omitempty"`
	State   string         `json:"state"`
}

type partialChunk struct {
	Index  int `json:"index"`
	Offset int `json:"offset"`
}

type uploadComplete struct {
	ID      string          `json:"id"`
	State   string          `json:"state"`
	Receipt json.RawMessage `json:"receipt"`
}

type finishRequest struct {
	SHA256 string `json:"sha256"`
}

// POST /v1/uploads
func (s *Server) createUpload(c *call) (any, int, error) {
	var req createUploadRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return nil, 0, err
	}
	switch {
	case req.Size == nil:
		return nil, 0, fail(errBadRequest, `field "size" is required: the size of the age file in bytes`)
	case *req.Size <= 0:
		return nil, 0, fail(errBadRequest, `field "size" must be at least 1, not %d`, *req.Size)
	case *req.Size > s.maxSize:
		return nil, 0, fail(errTooLarge, "a submission of %d bytes is larger than this server's limit of %d bytes", *req.Size, s.maxSize)
	}
	if req.SHA256 != "" {
		if err := checkSHA256(req.SHA256, `field "sha256"`); err != nil {
			return nil, 0, err
		}
	}
	now := s.now()
	u := store.Upload{ID: newID(), Size: *req.Size, SHA256: req.SHA256, Created: now, Expires: store.UploadExpiry(now.Add(s.expiry))}
	if err := s.quota.open(c.tok.ID, u.ID, u.Size, now, s.uploadExists); err != nil {
		return nil, 0, err
	}
	if err := s.db.CreateUpload(u); err != nil {
		s.quota.closed(u.ID)
		return nil, 0, err
	}
	return &uploadCreated{
		ID:        u.ID,
		Size:      u.Size,
		ChunkSize: ChunkSize,
		Chunks:    chunkCount(u.Size),
		Expires:   u.Expires.UTC().Truncate(time.Second).Format(time.RFC3339),
	}, http.StatusCreated, nil
}

// GET /v1/uploads/{id}. A client that lost the response to its finish
// request learns here that the upload is complete and gets its receipt.
func (s *Server) uploadStatus(c *call) (any, int, error) {
	id := c.vars()["id"]
	u, err := s.openUpload(id)
	if errors.Is(err, store.ErrUploadComplete) {
		sub, err := s.db.Submission(id)
		if err != nil {
			return nil, 0, err
		}
		rcpt, err := s.submissionReceipt(sub)
		if err != nil {
			return nil, 0, err
		}
		return &uploadComplete{ID: id, State: "complete", Receipt: rcpt}, http.StatusOK, nil
	} else if err != nil {
		return nil, 0, err
	}
	have, partial, err := s.db.ChunkState(id)
	if err != nil {
		return nil, 0, err
	}
	n := chunkCount(u.Size)
	open := &uploadOpen{
		ID:        id,
		Size:      u.Size,
		ChunkSize: ChunkSize,
		Chunks:    n,
		Missing:   missingChunks(have, n),
		State:     "open",
	}
	for _, p := range partial {
		open.Partial = append(open.Partial, partialChunk{Index: p.Index, Offset: p.Offset})
	}
	return open, http.StatusOK, nil
}

// pieceCommitInterval is the least time between two commits of pieces
// while a chunk arrives. On a slow link every piece of store.PieceSize is
// committed as it completes; on a fast one a chunk arrives within the
// interval and is committed once, whole, so fsyncs do not limit the rate.
const pieceCommitInterval = time.Second

// PUT /v1/uploads/{id}/chunks/{index}
//
// Without an Upload-Offset header the body is the whole chunk, and nothing
// is kept unless all of it arrives and matches Chunk-SHA256 (the protocol
// of the first clients). With Upload-Offset: N the body is the chunk from
// byte N on; what arrives is committed in pieces as it comes, also when
// the connection dies or stalls half way, and the chunk is checked against
// Chunk-SHA256 when its last byte arrives.
func (s *Server) putChunk(c *call) (any, int, error) {
	id := c.vars()["id"]
	index, err := strconv.Atoi(c.vars()["index"])
	if err != nil {
		return nil, 0, fail(errBadRequest, "chunk index %q is not a valid index", c.vars()["index"])
	}
	want, err := parseSHA256Header(c.r.Header.Get("Chunk-SHA256"))
	if err != nil {
		return nil, 0, err
	}
	offset, resumable, err := parseUploadOffset(c.r.Header.Values("Upload-Offset"))
	if err != nil {
		return nil, 0, err
	}
	u, err := s.openUpload(id)
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	n := chunkCount(u.Size)
	if index >= n {
		return nil, 0, fail(errUnprocessable, "chunk index %d is out of range: this upload has chunks 0 to %d", index, n-1)
	}
	wantLen := chunkLen(u.Size, index)
	if offset >= wantLen {
		return nil, 0, fail(errUnprocessable, "Upload-Offset %d is past the end of chunk %d, which has %d bytes", offset, index, wantLen)
	}
	if c.r.ContentLength >= 0 && c.r.ContentLength != wantLen-offset {
		if resumable {
			return nil, 0, fail(errUnprocessable, "chunk %d from offset %d must be exactly %d bytes, but Content-Length is %d", index, offset, wantLen-offset, c.r.ContentLength)
		}
		return nil, 0, fail(errUnprocessable, "chunk %d must be exactly %d bytes, but Content-Length is %d", index, wantLen, c.r.ContentLength)
	}
	// The newest request for a chunk wins: an older one still reading
	// (its client gave up on it) is stopped, and commits what it has,
	// before this one looks at what is stored. Requests for different
	// chunks of one upload run side by side: a client keeps the next
	// chunk on the wire while the server commits the last.
	key := writerKey{id, index}
	w, err := s.writers.claim(c.r.Context(), key, c.rc)
	if err != nil {
		return nil, 0, err
	}
	defer s.writers.release(key, w)
	// The store does not keep the buffer after it returns.
	bufp, err := s.buffers.get(c.r.Context())
	if err != nil {
		return nil, 0, err
	}
	defer s.buffers.put(bufp)
	buf := (*bufp)[:ChunkSize]
	stored, complete, err := s.db.ChunkPrefix(id, index, buf)
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	if resumable && !complete && int64(stored) < offset {
		return nil, 0, fail(errConflict, "the server holds %d bytes of chunk %d, not %d; send it from Upload-Offset %d (GET /v1/uploads/%s shows the offsets)", stored, index, offset, stored, id)
	}
	end := int(wantLen)
	if complete {
		stored = end
	}
	// The token's bytes of the day count what this request may add.
	if err := s.quota.receive(c.tok.ID, int64(max(0, end-max(int(offset), stored))), s.now()); err != nil {
		return nil, 0, err
	}
	cr := chunkReader{s: s, c: c, w: w, id: id, index: index, buf: buf, pos: int(offset), stored: stored, committed: stored, keep: resumable}
	if err := cr.read(end); err != nil {
		return nil, 0, err
	}
	data := buf[:end]
	if sha256.Sum256(data) != want {
		if !complete && stored > 0 {
			// The pieces stored before, or the bytes sent now, are not
			// this chunk; which cannot be told, so both go.
			if err := s.db.ResetChunk(id, index); err != nil {
				return nil, 0, err
			}
			return nil, 0, fail(errUnprocessable, "Chunk-SHA256 does not match the %d bytes of chunk %d; what the server held of this chunk was dropped: send the whole chunk again from offset 0", end, index)
		}
		return nil, 0, fail(errUnprocessable, "Chunk-SHA256 does not match the %d bytes received for chunk %d; send the chunk again", end-int(offset), index)
	}
	if index == 0 {
		if _, err := s.checkHeader(data); err != nil {
			if rerr := s.db.ResetChunk(id, index); rerr != nil {
				return nil, 0, rerr
			}
			return nil, 0, err
		}
	}
	// Each new chunk keeps the upload alive for another -upload-expiry, so a
	// long upload over a slow link never expires while it makes progress.
	if err := s.db.PutChunkUntil(id, index, data, s.now().Add(s.expiry)); errors.Is(err, store.ErrChunkConflict) {
		return nil, 0, fail(errConflict, "chunk %d is already stored with different bytes; a chunk cannot be changed, start a new upload if the file changed", index)
	} else if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	w.extend(s.stall)
	return nil, http.StatusNoContent, nil
}

// chunkReader reads the body of a chunk PUT into buf from pos on. Bytes
// below stored are already in buf (read from the store) and must be sent
// again unchanged; bytes from stored on are new. With keep, new bytes are
// committed as pieces as they arrive and when the body ends early.
type chunkReader struct {
	s         *Server
	c         *call
	w         *uploadWriter
	id        string
	index     int
	buf       []byte
	pos       int // next byte of the chunk the body carries
	stored    int // bytes of the chunk in buf from the store
	committed int // bytes of the chunk in the store
	keep      bool
	last      time.Time // last commit
}

// read reads the body up to byte end of the chunk and checks that nothing
// follows.
func (r *chunkReader) read(end int) error {
	start := r.pos
	r.last = time.Now()
	var scratch []byte
	for r.pos < end {
		r.w.extend(r.s.stall)
		var m int
		var err error
		if r.pos < r.stored {
			if scratch == nil {
				scratch = make([]byte, 32<<10)
			}
			m, err = r.c.r.Body.Read(scratch[:min(len(scratch), r.stored-r.pos)])
			if !bytes.Equal(scratch[:m], r.buf[r.pos:r.pos+m]) {
				return fail(errConflict, "chunk %d is already stored with different bytes; a chunk cannot be changed, start a new upload if the file changed", r.index)
			}
		} else {
			m, err = r.c.r.Body.Read(r.buf[r.pos:end])
		}
		r.pos += m
		if r.pos-r.committed >= store.PieceSize && time.Since(r.last) >= pieceCommitInterval {
			if cerr := r.commit(); cerr != nil {
				return cerr
			}
		}
		if errors.Is(err, io.EOF) && r.pos < end {
			if cerr := r.commit(); cerr != nil {
				return cerr
			}
			return fail(errUnprocessable, "chunk %d must be exactly %d bytes, got %d", r.index, end-start, r.pos-start)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// The client went away, stalled, or a newer request took
			// over: what arrived is kept for the next attempt.
			if cerr := r.commit(); cerr != nil {
				r.s.log.Error("failed to keep the part of a chunk that arrived", "error", cerr)
			}
			if r.w.wasAborted() {
				return fail(errConflict, "a newer request for chunk %d of upload %s took over; this one stopped after %d bytes", r.index, r.id, r.pos-start)
			}
			return bodyError(err)
		}
	}
	// The route's body limit bounds how much of an overlong body is read
	// to say how long it was.
	extra, err := io.Copy(io.Discard, r.c.r.Body)
	if err != nil {
		return bodyError(err)
	}
	if extra > 0 {
		return fail(errUnprocessable, "chunk %d must be exactly %d bytes, got %d", r.index, end-start, int64(end-start)+extra)
	}
	return nil
}

// commit stores the new bytes not yet committed as pieces.
func (r *chunkReader) commit() error {
	if !r.keep || r.pos <= r.committed {
		return nil
	}
	if err := r.s.db.PutPieces(r.id, r.index, r.committed, r.buf[r.committed:r.pos], r.s.now().Add(r.s.expiry)); err != nil {
		return finishedIsConflict(err, r.id)
	}
	r.committed, r.last = r.pos, time.Now()
	return nil
}

// parseUploadOffset parses the optional Upload-Offset header: the byte of
// the chunk the body starts at.
func parseUploadOffset(v []string) (int64, bool, error) {
	switch {
	case len(v) == 0:
		return 0, false, nil
	case len(v) > 1:
		return 0, false, fail(errBadRequest, "Upload-Offset is given %d times; give it once", len(v))
	}
	if v[0] == "" || len(v[0]) > 8 || strings.TrimLeft(v[0], "0123456789") != "" || len(v[0]) > 1 && v[0][0] == '0' {
		return 0, false, fail(errBadRequest, "Upload-Offset %q is not a byte offset within a chunk (decimal digits, no leading zeros)", clip(v[0]))
	}
	n, _ := strconv.ParseInt(v[0], 10, 64)
	return n, true, nil
}

// clip cuts a header value for an error message.
func clip(v string) string {
	if len(v) > 20 {
		return v[:20] + "…"
	}
	return v
}

// uploadWriters knows the request that is writing each chunk, so that a
// retry can stop a predecessor the client has given up on, instead of
// racing it for the same bytes.
type uploadWriters struct {
	mu sync.Mutex
	m  map[writerKey]*uploadWriter
}

// writerKey names one chunk of one upload.
type writerKey struct {
	id    string
	index int
}

type uploadWriter struct {
	mu      sync.Mutex
	rc      *http.ResponseController
	aborted bool
	done    chan struct{}
}

// claim makes the caller the writer of a chunk, stopping the previous
// writer and waiting until it has committed what it received.
func (ws *uploadWriters) claim(ctx context.Context, key writerKey, rc *http.ResponseController) (*uploadWriter, error) {
	for {
		ws.mu.Lock()
		old := ws.m[key]
		if old == nil {
			if ws.m == nil {
				ws.m = make(map[writerKey]*uploadWriter)
			}
			w := &uploadWriter{rc: rc, done: make(chan struct{})}
			ws.m[key] = w
			ws.mu.Unlock()
			return w, nil
		}
		ws.mu.Unlock()
		old.abort()
		select {
		case <-old.done:
		case <-ctx.Done():
			return nil, fail(errBadRequest, "the request was cancelled")
		}
	}
}

func (ws *uploadWriters) release(key writerKey, w *uploadWriter) {
	ws.mu.Lock()
	if ws.m[key] == w {
		delete(ws.m, key)
	}
	ws.mu.Unlock()
	close(w.done)
}

// extend gives the connection another d to move a byte either way: this is
// the server's stall detection. Writers that do not support deadlines
// (tests with a recorder) are fine.
func (w *uploadWriter) extend(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.aborted {
		t := time.Now().Add(d)
		w.rc.SetReadDeadline(t)
		w.rc.SetWriteDeadline(t)
	}
}

func (w *uploadWriter) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted = true
	w.rc.SetReadDeadline(time.Now())
}

func (w *uploadWriter) wasAborted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.aborted
}

// POST /v1/uploads/{id}/finish
func (s *Server) finishUpload(c *call) (any, int, error) {
	id := c.vars()["id"]
	var req finishRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return nil, 0, err
	}
	u, err := s.openUpload(id)
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	declared := u.SHA256
	if req.SHA256 != "" {
		if err := checkSHA256(req.SHA256, `field "sha256"`); err != nil {
			return nil, 0, err
		}
		if declared != "" && declared != req.SHA256 {
			return nil, 0, fail(errUnprocessable, `field "sha256" differs from the sha256 declared when the upload was created`)
		}
		declared = req.SHA256
	}
	if declared == "" {
		return nil, 0, fail(errBadRequest, `field "sha256" is required: this upload did not declare one when it was created`)
	}
	n := chunkCount(u.Size)
	have, err := s.db.ChunkIndexes(id)
	if err != nil {
		return nil, 0, err
	}
	if missing := missingChunks(have, n); len(missing) > 0 {
		return nil, 0, fail(errUnprocessable, "%d of %d chunks are missing (the first is chunk %d); GET /v1/uploads/%s lists them", len(missing), n, missing[0], id)
	}
	// Checking chunk 0 again, and hashing what the running hash has not
	// covered, hold one chunk at a time.
	if err := s.buffers.acquire(c.r.Context()); err != nil {
		return nil, 0, err
	}
	sum, err := s.uploadSum(id, u.Size)
	s.buffers.release()
	if got := hex.EncodeToString(sum[:]); err == nil && got != declared {
		err = fail(errUnprocessable, "the uploaded file's SHA-256 is %s, not the declared %s; the upload has been deleted, start a new one", got, declared)
	}
	if errors.Is(err, errUnprocessable) {
		// Every chunk matched its Chunk-SHA256, so the stored bytes are
		// what the client sent: the file itself is wrong, and keeping the
		// upload could only lead to the same failure.
		if err := s.db.DeleteUpload(id); err != nil {
			s.log.Error("failed to delete a rejected upload; upload expiry will remove it", "error", err)
		}
		s.quota.closed(id)
	}
	if err != nil {
		return nil, 0, err
	}
	resp, status, err := s.complete(id, u.Size, sum, n)
	if err == nil {
		s.quota.finished(id, u.Size)
	}
	return resp, status, err
}

// DELETE /v1/uploads/{id}
func (s *Server) deleteUpload(c *call) (any, int, error) {
	id := c.vars()["id"]
	if _, err := s.openUpload(id); err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	if err := s.db.DeleteUpload(id); err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	s.quota.closed(id)
	return nil, http.StatusNoContent, nil
}

// openUpload returns the chunked upload id, store.ErrUploadComplete if it
// is a submission, or a 404 error. One-shot submissions in progress are
// uploads of unknown size that no client can address, so they are not
// found either.
func (s *Server) openUpload(id string) (store.Upload, error) {
	u, err := s.db.Upload(id)
	if errors.Is(err, store.ErrNotFound) {
		if _, serr := s.db.Submission(id); serr == nil {
			return store.Upload{}, store.ErrUploadComplete
		} else if !errors.Is(serr, store.ErrNotFound) {
			return store.Upload{}, serr
		}
		return store.Upload{}, fail(errNotFound, "no upload %s: it never existed, expired after %s, or was deleted; start a new upload", id, s.expiry)
	} else if err != nil {
		return store.Upload{}, err
	}
	if u.Size < 0 {
		return store.Upload{}, fail(errNotFound, "no upload %s", id)
	}
	return u, nil
}

// finishedIsConflict says what to do when a request needs an open upload
// but the upload has already been finished.
func finishedIsConflict(err error, id string) error {
	if errors.Is(err, store.ErrUploadComplete) {
		return fail(errConflict, "upload %s is already finished; GET /v1/uploads/%s returns its receipt", id, id)
	}
	return err
}

// checkHeader checks that data, the start of a submission, begins with an
// age header for the deployment's recipient type, and returns the header's
// length.
func (s *Server) checkHeader(data []byte) (int64, error) {
	typ := s.dep.Load().recipients.Type
	n, err := recipients.HeaderLength(bytes.NewReader(data), typ)
	if err != nil {
		return 0, fail(errUnprocessable, "not an acceptable age file for this server (recipient type %s): %v", typ, err)
	}
	return n, nil
}

// checkPayload checks that an age file of size bytes with a header of
// headerLen bytes has a payload that age could have produced, which catches
// truncated and padded files; only the reviewer can check the rest.
func checkPayload(headerLen, size int64) error {
	if _, err := recipients.PlaintextSize(size - headerLen); err != nil {
		return fail(errUnprocessable, "not a complete age file (truncated or extended?): %v; nothing was kept, send the whole file again", err)
	}
	return nil
}

// uploadSum checks the age header and payload length again with chunk 0
// of the upload id of size bytes, and returns the SHA-256 of the stored
// bytes. The store keeps a running hash of what it stored in order, in the
// transactions that stored it, so the receipt's hash is true of the store
// and an upload sent in order is not read back: finishing it takes the same
// time at any size.
func (s *Server) uploadSum(id string, size int64) ([32]byte, error) {
	data, err := s.db.ReadChunk(id, 0)
	if err != nil {
		return [32]byte{}, err
	}
	n, err := s.checkHeader(data)
	if err != nil {
		return [32]byte{}, err
	}
	if err := checkPayload(n, size); err != nil {
		return [32]byte{}, err
	}
	sum, _, err := s.db.UploadSHA256(id, size)
	return sum, err
}

// complete turns a fully stored upload into a submission, appending its
// leaf to the intake log in the same transaction, and returns its receipt.
func (s *Server) complete(id string, size int64, sum [32]byte, chunks int) (any, int, error) {
	sub := newSubmission(id, size, sum, chunks, s.now())
	leaf := leafOf(sub)
	index, err := s.db.FinishUpload(id, sub, leaf.Bytes())
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	return s.receipt(id, leaf, index)
}

// newSubmission is the record of a submission received now. It carries the
// UTC date only, and so does its log leaf: nothing on the server pins an
// interview to an hour.
func newSubmission(id string, size int64, sum [32]byte, chunks int, now time.Time) store.Submission {
	y, m, d := now.UTC().Date()
	return store.Submission{
		ID:       id,
		Size:     size,
		SHA256:   hex.EncodeToString(sum[:]),
		Chunks:   chunks,
		Received: time.Date(y, m, d, 0, 0, 0, 0, time.UTC),
	}
}

// receipt answers for the submission id, committed as log leaf index.
func (s *Server) receipt(id string, leaf intakelog.Leaf, index int64) (any, int, error) {
	if s.testHookCommitted != nil {
		s.testHookCommitted(index)
	}
	// The submission is safe from here on. If the receipt fails, the
	// client's retry of finish gets 409 and GET /v1/uploads/{id} builds
	// the receipt again.
	data, err := s.intake.receipt(leaf, index)
	if err != nil {
		return nil, 0, fmt.Errorf("submission %s is stored as log leaf %d, but its receipt failed: %w", id, index, err)
	}
	return data, http.StatusCreated, nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func chunkCount(size int64) int {
	return int((size + ChunkSize - 1) / ChunkSize)
}

// chunkLen is the exact length of chunk index of a file of size bytes.
func chunkLen(size int64, index int) int64 {
	return min(ChunkSize, size-int64(index)*ChunkSize)
}

// missingChunks returns the indexes below n that are not in have (sorted).
func missingChunks(have []int, n int) []int {
	missing := make([]int, 0)
	j := 0
	for i := range n {
		for j < len(have) && have[j] < i {
			j++
		}
		if j < len(have) && have[j] == i {
			continue
		}
		missing = append(missing, i)
	}
	return missing
}

func checkSHA256(s, what string) error {
	if !ids.ValidSHA256(s) {
		return fail(errBadRequest, "%s must be 64 lowercase hex characters (a SHA-256)", what)
	}
	return nil
}

func parseSHA256Header(v string) ([32]byte, error) {
	var sum [32]byte
	if v == "" {
		return sum, fail(errBadRequest, "missing Chunk-SHA256 header: send the SHA-256 of the chunk in lowercase hex")
	}
	if err := checkSHA256(v, "Chunk-SHA256 header"); err != nil {
		return sum, err
	}
	hex.Decode(sum[:], []byte(v))
	return sum, nil
}

// bodyError describes a failure to read a request body.
func bodyError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return fail(errTooLarge, "request body is larger than this route's limit of %d bytes", maxErr.Limit)
	}
	return fail(errBadRequest, "failed to read the request body: %v", err)
}
