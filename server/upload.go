package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/testimony-ngo/testimony/crypto/recipients"
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
	State     string `json:"state"`
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
	u := store.Upload{ID: newID(), Size: *req.Size, SHA256: req.SHA256, Created: now, Expires: now.Add(s.expiry)}
	if err := s.db.CreateUpload(u); err != nil {
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
	have, err := s.db.ChunkIndexes(id)
	if err != nil {
		return nil, 0, err
	}
	n := chunkCount(u.Size)
	return &uploadOpen{
		ID:        id,
		Size:      u.Size,
		ChunkSize: ChunkSize,
		Chunks:    n,
		Missing:   missingChunks(have, n),
		State:     "open",
	}, http.StatusOK, nil
}

// PUT /v1/uploads/{id}/chunks/{index}
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
	u, err := s.openUpload(id)
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
	n := chunkCount(u.Size)
	if index >= n {
		return nil, 0, fail(errUnprocessable, "chunk index %d is out of range: this upload has chunks 0 to %d", index, n-1)
	}
	wantLen := chunkLen(u.Size, index)
	if c.r.ContentLength >= 0 && c.r.ContentLength != wantLen {
		return nil, 0, fail(errUnprocessable, "chunk %d must be exactly %d bytes, but Content-Length is %d", index, wantLen, c.r.ContentLength)
	}
	// The store does not keep the buffer after PutChunk returns.
	bufp, err := s.buffers.get(c.r.Context())
	if err != nil {
		return nil, 0, err
	}
	defer s.buffers.put(bufp)
	// No deadline extension here: a 1 MiB chunk at 20 KB/s arrives well
	// within the server's ReadTimeout.
	nread, err := io.ReadFull(c.r.Body, *bufp)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, 0, bodyError(err)
	}
	data := (*bufp)[:nread]
	if int64(nread) != wantLen {
		return nil, 0, fail(errUnprocessable, "chunk %d must be exactly %d bytes, got %d", index, wantLen, nread)
	}
	if sha256.Sum256(data) != want {
		return nil, 0, fail(errUnprocessable, "Chunk-SHA256 does not match the %d bytes received for chunk %d; send the chunk again", nread, index)
	}
	if index == 0 {
		if _, err := s.checkHeader(data); err != nil {
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
	return nil, http.StatusNoContent, nil
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
	// Reading the upload back holds one chunk at a time.
	if err := s.buffers.acquire(c.r.Context()); err != nil {
		return nil, 0, err
	}
	sum, err := s.hashChunks(id, u.Size)
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
	}
	if err != nil {
		return nil, 0, err
	}
	return s.complete(id, u.Size, sum, n)
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

// hashChunks reads the chunks of the upload id of size bytes back from the
// store, one at a time, checks the age header and payload length again with
// chunk 0, and returns the SHA-256 of the whole file. Hashing what the store
// holds, rather than trusting what passed by on the way in, is what makes
// the receipt's hash true of the store.
func (s *Server) hashChunks(id string, size int64) ([32]byte, error) {
	h := sha256.New()
	for i := range chunkCount(size) {
		data, err := s.db.ReadChunk(id, i)
		if err != nil {
			return [32]byte{}, err
		}
		if i == 0 {
			n, err := s.checkHeader(data)
			if err != nil {
				return [32]byte{}, err
			}
			if err := checkPayload(n, size); err != nil {
				return [32]byte{}, err
			}
		}
		h.Write(data)
	}
	return [32]byte(h.Sum(nil)), nil
}

// complete turns a fully stored upload into a submission, appending its
// leaf to the intake log in the same transaction, and returns its receipt.
// The leaf carries the UTC date only, and so does the stored submission:
// nothing on the server pins an interview to an hour.
func (s *Server) complete(id string, size int64, sum [32]byte, chunks int) (any, int, error) {
	y, m, d := s.now().UTC().Date()
	sub := store.Submission{
		ID:       id,
		Size:     size,
		SHA256:   hex.EncodeToString(sum[:]),
		Chunks:   chunks,
		Received: time.Date(y, m, d, 0, 0, 0, 0, time.UTC),
	}
	leaf := leafOf(sub)
	index, err := s.db.FinishUpload(id, sub, leaf.Bytes())
	if err != nil {
		return nil, 0, finishedIsConflict(err, id)
	}
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
	if len(s) != 64 || !isLowerHex(s) {
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
