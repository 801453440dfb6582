package server

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// oneShotContentTypes are accepted by POST /v1/submissions. The last is
// what curl --data-binary sends unless told otherwise.
var oneShotContentTypes = []string{"application/octet-stream", "application/age", "application/x-www-form-urlencoded"}

type submissionList struct {
	Submissions []submissionEntry `json:"submissions"`
	// Next is the after parameter of the next page, present when this page
	// is full: more submissions may follow.
	Next *int64 `json:"next,omitempty"`
}

type submissionEntry struct {
	ID       string `json:"id"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Received string `json:"received"`
	Index    int64  `json:"index"` // of its leaf in the intake log
	// Deleted is the UTC date its ciphertext was deleted after review.
	Deleted string `json:"deleted,omitempty"`
}

// GET /v1/recipients
func (s *Server) recipients(*call) (any, int, error) {
	return s.dep.Load().info(), http.StatusOK, nil
}

// POST /v1/submissions: the whole age file as the body, for small files and
// for plain tools such as curl. A body of one chunk is stored with its log
// leaf in one transaction (store.SubmitWhole). A longer one goes into an
// upload that no client can address, chunk by chunk, so memory stays
// bounded; if anything fails the upload is deleted and nothing remains.
func (s *Server) submitOneShot(c *call) (any, int, error) {
	if err := checkContentType(c.r, oneShotContentTypes...); err != nil {
		return nil, 0, err
	}
	id := newID()
	s.receiving.Store(id, struct{}{})
	defer s.receiving.Delete(id)
	if err := s.quota.open(c.tok.ID, id, -1, s.now(), s.uploadExists); err != nil {
		return nil, 0, err
	}
	resp, status, size, err := s.storeOneShot(c, id)
	if err != nil {
		if derr := s.db.DeleteUpload(id); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.Error("failed to delete a failed one-shot submission; upload expiry will remove it", "error", derr)
		}
		s.quota.closed(id)
	} else {
		s.quota.finished(id, size)
	}
	return resp, status, err
}

// storeOneShot also returns the size of the stored submission.
func (s *Server) storeOneShot(c *call, id string) (any, int, int64, error) {
	bufp, err := s.buffers.get(c.r.Context())
	if err != nil {
		return nil, 0, 0, err
	}
	defer s.buffers.put(bufp)
	buf := (*bufp)[:ChunkSize]
	var size, headerLen int64
	index := 0
	for {
		// The response comes only after the whole body, so the write
		// deadline has to move along with the read deadline.
		extendDeadline(c.rc.SetReadDeadline)
		extendDeadline(c.rc.SetWriteDeadline)
		n, readErr := io.ReadFull(c.r.Body, buf)
		last := errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF)
		if readErr != nil && !last {
			// A partial chunk followed by a failure is not stored.
			return nil, 0, 0, s.oneShotBodyError(readErr)
		}
		if n > 0 {
			chunk := buf[:n]
			if index == 0 {
				var err error
				if headerLen, err = s.checkHeader(chunk); err != nil {
					return nil, 0, 0, err
				}
			}
			if err := s.quota.receive(c.tok.ID, int64(n), s.now()); err != nil {
				return nil, 0, 0, err
			}
			if err := s.quota.unreviewedWith(c.tok.ID, size+int64(n)); err != nil {
				return nil, 0, 0, err
			}
			if index == 0 && last {
				resp, status, err := s.storeWhole(id, chunk, headerLen)
				return resp, status, int64(n), err
			}
			if index == 0 {
				now := s.now()
				if err := s.db.CreateUpload(store.Upload{ID: id, Size: -1, Created: now, Expires: now.Add(s.expiry)}); err != nil {
					return nil, 0, 0, err
				}
			}
			if err := s.db.PutChunk(id, index, chunk); err != nil {
				return nil, 0, 0, err
			}
			size += int64(n)
			index++
		}
		if last {
			break
		}
	}
	if size == 0 {
		return nil, 0, 0, fail(errBadRequest, "request body is empty; send the age file as the body")
	}
	if err := checkPayload(headerLen, size); err != nil {
		return nil, 0, 0, err
	}
	// The store hashed the chunks in the transactions that stored them.
	sum, _, err := s.db.UploadSHA256(id, size)
	if err != nil {
		return nil, 0, 0, err
	}
	resp, status, err := s.complete(id, size, sum, index)
	return resp, status, size, err
}

// storeWhole stores data, a one-shot body of one chunk with an age header
// of headerLen bytes, as the submission id, and returns its receipt.
func (s *Server) storeWhole(id string, data []byte, headerLen int64) (any, int, error) {
	if err := checkPayload(headerLen, int64(len(data))); err != nil {
		return nil, 0, err
	}
	sum := sha256.Sum256(data)
	sub := newSubmission(id, int64(len(data)), sum, 1, s.now())
	leaf := leafOf(sub)
	index, err := s.db.SubmitWhole(sub, data, leaf.Bytes())
	if err != nil {
		return nil, 0, err
	}
	return s.receipt(id, leaf, index)
}

func (s *Server) oneShotBodyError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return fail(errTooLarge, "the submission is larger than this server's limit of %d bytes", s.maxSize)
	}
	return bodyError(err)
}

// GET /v1/submissions[?pending=1][&after=I][&limit=N]: one page of the
// submissions in log order, at most store.MaxSubmissionsPage, so that the
// response and the time to build it stay small at any number of
// submissions. A full page carries next, the after of the next page.
func (s *Server) listSubmissions(c *call) (any, int, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, 0, fail(errBadRequest, "malformed query string: %v", err)
	}
	params := []string{"pending", "after", "limit"}
	for k, vs := range q {
		if !slices.Contains(params, k) {
			return nil, 0, fail(errBadRequest, "unknown query parameter %q; this route takes %s", k, joinParams(params))
		}
		if len(vs) > 1 {
			return nil, 0, fail(errBadRequest, "query parameter %s is given %d times; give it once", k, len(vs))
		}
	}
	var pending bool
	switch v := q.Get("pending"); v {
	case "", "0", "false":
	case "1", "true":
		pending = true
	default:
		return nil, 0, fail(errBadRequest, "query parameter pending must be 1 or 0, not %q", truncate(v, 40))
	}
	after, limit := int64(-1), store.MaxSubmissionsPage
	if v := q.Get("after"); v != "" {
		n, ok := parseQueryNumber(v)
		if !ok {
			return nil, 0, fail(errBadRequest, "query parameter after must be a log index (a decimal number from 0 to %d), not %q", int64(maxQueryNumber), truncate(v, 40))
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, ok := parseQueryNumber(v)
		if !ok || n < 1 || n > store.MaxSubmissionsPage {
			return nil, 0, fail(errBadRequest, "query parameter limit must be a number from 1 to %d, not %q", store.MaxSubmissionsPage, truncate(v, 40))
		}
		limit = int(n)
	}
	subs, err := s.db.SubmissionsPage(pending, after, limit)
	if err != nil {
		return nil, 0, err
	}
	list := &submissionList{Submissions: make([]submissionEntry, 0, len(subs))}
	for _, sub := range subs {
		list.Submissions = append(list.Submissions, submissionEntry{
			ID:       sub.ID,
			Size:     sub.Size,
			SHA256:   sub.SHA256,
			Received: sub.Received.UTC().Format(time.DateOnly),
			Index:    sub.Index,
			Deleted:  sub.Deleted,
		})
	}
	if len(subs) == limit {
		next := subs[len(subs)-1].Index
		list.Next = &next
	}
	return list, http.StatusOK, nil
}

// GET /v1/submissions/{id}
func (s *Server) downloadSubmission(c *call) (any, int, error) {
	id := c.vars()["id"]
	sub, err := s.db.Submission(id)
	if err != nil {
		return nil, 0, noSubmission(err, id)
	}
	if sub.Deleted != "" {
		return nil, 0, deletedError(sub)
	}
	// The store's reader holds a chunk while the download runs.
	if err := s.buffers.acquire(c.r.Context()); err != nil {
		return nil, 0, err
	}
	body, err := s.db.NewReader(id)
	if err != nil {
		s.buffers.release()
		return nil, 0, noSubmission(err, id)
	}
	return &download{name: id + ".age", size: sub.Size, sha256: sub.SHA256, body: body, release: s.buffers.release}, http.StatusOK, nil
}

// POST /v1/submissions/{id}/collected
func (s *Server) markCollected(c *call) (any, int, error) {
	id := c.vars()["id"]
	if err := s.db.MarkCollected(id); err != nil {
		return nil, 0, noSubmission(err, id)
	}
	s.quota.collected(id)
	return nil, http.StatusNoContent, nil
}

func noSubmission(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fail(errNotFound, "no submission %s", id)
	}
	return err
}
