// Package api is the testimony CLI's client for the intake server's HTTP
// API (docs/api.md). It knows the routes and JSON shapes and nothing about
// retries, files or state: the upload and collect logic drive it through
// small interfaces of their own, so they can be tested against fakes that
// fail on demand.
//
// Every response is read with a size cap and every message the server puts
// into an error is stripped of control characters before it can reach the
// user's terminal: the server may be hostile.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/bounded"
)

// Limits on what the client reads from the server.
const (
	// maxJSONResponse caps ordinary JSON responses (recipients, upload
	// state, receipts).
	maxJSONResponse = 1 << 20
	// maxListResponse caps one page of the submissions list: at most 1000
	// entries of about 200 bytes.
	maxListResponse = 1 << 20
	// maxErrorMessage caps the part of a server error message shown to the user.
	maxErrorMessage = 300
	// maxCheckpoint caps a signed checkpoint (intakelog.MaxCheckpointSize).
	maxCheckpoint = 8 << 10
	// maxLeavesResponse caps one page of log leaves: MaxLeaves entries of
	// about 200 bytes.
	maxLeavesResponse = 1 << 20
	// MaxLeaves is the most leaves the server returns per request.
	MaxLeaves = 1000
	// maxRetryAfter caps a Retry-After delay, in seconds.
	maxRetryAfter = 24 * 60 * 60
)

// Doer sends one HTTP request. *http.Client implements it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client talks to one intake server.
type Client struct {
	base  *url.URL
	token string
	hc    Doer
}

// New returns a client for the server at base (as checked by ParseServer)
// that authenticates with token and sends requests through hc.
func New(base *url.URL, token string, hc Doer) *Client {
	return &Client{base: base, token: token, hc: hc}
}

// StatusError is a response with an unexpected HTTP status.
type StatusError struct {
	Code    int
	Message string // the server's {"error": …} text, sanitized; may be empty
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("server answered %d %s", e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsStatus reports whether err is a StatusError with the given code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// RetryAfter returns the delay a 429 or 503 response asked for, or 0.
func RetryAfter(err error) time.Duration {
	var re *retryAfterError
	if errors.As(err, &re) {
		return re.after
	}
	return 0
}

type retryAfterError struct {
	*StatusError
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return e.StatusError }

// Recipients is the server's answer to GET /v1/recipients.
type Recipients struct {
	Type       string   `json:"type"`
	Recipients []string `json:"recipients"`
	// LogKey is the intake log's note verifier key.
	LogKey string `json:"log_key"`
	// SignedRecipients is the organisation-signed recipients note, or
	// empty if the operator installed none.
	SignedRecipients string `json:"signed_recipients"`
}

// LogLeaf is one entry of GET /v1/log/leaves.
type LogLeaf struct {
	Index  int64  `json:"index"`
	ID     string `json:"id"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Date   string `json:"date"`
}

// Upload is the state of a resumable upload, from POST /v1/uploads or
// GET /v1/uploads/{id}.
type Upload struct {
	ID        string `json:"id"`
	State     string `json:"state"` // "open" or "complete"; empty right after creation
	Size      int64  `json:"size"`
	ChunkSize int64  `json:"chunk_size"`
	Chunks    int    `json:"chunks"`
	Missing   []int  `json:"missing"`
	// Partial lists the missing chunks of which the server holds a start;
	// servers before resumption inside chunks never send it.
	Partial []Partial `json:"partial"`
	// Receipt is set when State is "complete".
	Receipt json.RawMessage `json:"receipt"`
}

// Partial is a chunk of which the server holds the first Offset bytes.
type Partial struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
}

// Upload states.
const (
	StateOpen     = "open"
	StateComplete = "complete"
)

// Submission is one entry of GET /v1/submissions.
type Submission struct {
	ID       string          `json:"id"`
	Size     int64           `json:"size"`
	SHA256   string          `json:"sha256"`
	Received string          `json:"received"`
	Index    int64           `json:"index"`
	Receipt  json.RawMessage `json:"receipt"`
}

// Recipients fetches the reviewers' recipients and the log key.
func (c *Client) Recipients(ctx context.Context) (*Recipients, error) {
	var r Recipients
	if err := c.doJSON(ctx, http.MethodGet, "/v1/recipients", nil, http.StatusOK, maxJSONResponse, &r); err != nil {
		return nil, fmt.Errorf("failed to get recipients: %w", err)
	}
	return &r, nil
}

// CreateUpload starts a resumable upload of size bytes whose SHA-256 is
// sha256Hex, or "" to give it only with Finish.
func (c *Client) CreateUpload(ctx context.Context, size int64, sha256Hex string) (*Upload, error) {
	body := struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256,omitempty"` // "": given at finish
	}{size, sha256Hex}
	var u Upload
	if err := c.doJSON(ctx, http.MethodPost, "/v1/uploads", body, http.StatusCreated, maxJSONResponse, &u); err != nil {
		return nil, fmt.Errorf("failed to create upload: %w", err)
	}
	return &u, nil
}

// PutChunk uploads chunk index of upload id from byte offset on: rest is
// the chunk from offset to its end, chunkSHA256 the SHA-256 of the whole
// chunk. The server keeps what arrives even if the request fails half way
// (docs/api.md, Upload-Offset). sent, if set, is called with the number of
// bytes of rest handed to the connection after each read, from the
// goroutine that sends the body.
func (c *Client) PutChunk(ctx context.Context, id string, index int, offset int64, rest []byte, chunkSHA256 string, sent func(n int)) error {
	body := &sentReader{r: bytes.NewReader(rest), sent: sent}
	req, err := c.request(ctx, http.MethodPut, "/v1/uploads/"+url.PathEscape(id)+"/chunks/"+strconv.Itoa(index), body)
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(rest))
	// A retry of a request whose connection died must not replay a body
	// the server may have partly stored; the uploader asks for the offset.
	req.GetBody = nil
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Chunk-SHA256", chunkSHA256)
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to upload chunk %d: %w", index, netError(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to upload chunk %d: %w", index, statusError(resp))
	}
	return nil
}

// sentReader reports the bytes read from it.
type sentReader struct {
	r    io.Reader
	sent func(int)
}

func (s *sentReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && s.sent != nil {
		s.sent(n)
	}
	return n, err
}

// UploadStatus fetches the state of upload id. A 404 means it expired or
// never existed.
func (c *Client) UploadStatus(ctx context.Context, id string) (*Upload, error) {
	var u Upload
	if err := c.doJSON(ctx, http.MethodGet, "/v1/uploads/"+url.PathEscape(id), nil, http.StatusOK, maxJSONResponse, &u); err != nil {
		return nil, fmt.Errorf("failed to get upload state: %w", err)
	}
	return &u, nil
}

// DeleteUpload abandons the unfinished upload id. An upload that no
// longer exists is not an error.
func (c *Client) DeleteUpload(ctx context.Context, id string) error {
	req, err := c.request(ctx, http.MethodDelete, "/v1/uploads/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to delete upload: %w", netError(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("failed to delete upload: %w", statusError(resp))
	}
	return nil
}

// Finish completes upload id and returns the receipt JSON.
func (c *Client) Finish(ctx context.Context, id, sha256Hex string) ([]byte, error) {
	body := struct {
		SHA256 string `json:"sha256"`
	}{sha256Hex}
	var raw json.RawMessage
	if err := c.doJSON(ctx, http.MethodPost, "/v1/uploads/"+url.PathEscape(id)+"/finish", body, http.StatusCreated, maxJSONResponse, &raw); err != nil {
		return nil, fmt.Errorf("failed to finish upload: %w", err)
	}
	return raw, nil
}

// Pending lists the submissions not yet marked collected, following the
// pages of GET /v1/submissions; each page is bounded by maxListResponse.
func (c *Client) Pending(ctx context.Context) ([]Submission, error) {
	var all []Submission
	path := "/v1/submissions?pending=1"
	for after := int64(-1); ; {
		var page struct {
			Submissions []Submission `json:"submissions"`
			Next        *int64       `json:"next"`
		}
		if err := c.doJSON(ctx, http.MethodGet, path, nil, http.StatusOK, maxListResponse, &page); err != nil {
			return nil, fmt.Errorf("failed to list submissions: %w", err)
		}
		all = append(all, page.Submissions...)
		if page.Next == nil {
			return all, nil
		}
		// A cursor that does not advance would page forever.
		if *page.Next <= after {
			return nil, fmt.Errorf("failed to list submissions: the server's next page (after %d) does not advance past %d", *page.Next, after)
		}
		after = *page.Next
		path = "/v1/submissions?pending=1&after=" + strconv.FormatInt(after, 10)
	}
}

// Checkpoint fetches the log's newest signed checkpoint (note text); the
// caller verifies it.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/log/checkpoint", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to get checkpoint: %w", netError(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to get checkpoint: %w", statusError(resp))
	}
	data, err := bounded.ReadAll(resp.Body, maxCheckpoint)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("failed to get checkpoint: response larger than %d bytes", maxCheckpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get checkpoint: %w", netError(err))
	}
	return data, nil
}

// Inclusion fetches the proof that leaf index is in the tree of size size.
func (c *Client) Inclusion(ctx context.Context, index, size int64) ([]string, error) {
	var r struct {
		Proof []string `json:"proof"`
	}
	path := fmt.Sprintf("/v1/log/inclusion?index=%d&size=%d", index, size)
	if err := c.doJSON(ctx, http.MethodGet, path, nil, http.StatusOK, maxJSONResponse, &r); err != nil {
		return nil, fmt.Errorf("failed to get inclusion proof of leaf %d: %w", index, err)
	}
	return r.Proof, nil
}

// Consistency fetches the proof that the tree of size newSize extends the
// tree of size oldSize.
func (c *Client) Consistency(ctx context.Context, oldSize, newSize int64) ([]string, error) {
	var r struct {
		Proof []string `json:"proof"`
	}
	path := fmt.Sprintf("/v1/log/consistency?old=%d&new=%d", oldSize, newSize)
	if err := c.doJSON(ctx, http.MethodGet, path, nil, http.StatusOK, maxJSONResponse, &r); err != nil {
		return nil, fmt.Errorf("failed to get consistency proof from size %d to %d: %w", oldSize, newSize, err)
	}
	return r.Proof, nil
}

// Leaves fetches the log leaves start … end-1 (at most MaxLeaves).
func (c *Client) Leaves(ctx context.Context, start, end int64) ([]LogLeaf, error) {
	var r struct {
		Leaves []LogLeaf `json:"leaves"`
	}
	path := fmt.Sprintf("/v1/log/leaves?start=%d&end=%d", start, end)
	if err := c.doJSON(ctx, http.MethodGet, path, nil, http.StatusOK, maxLeavesResponse, &r); err != nil {
		return nil, fmt.Errorf("failed to get log leaves %d to %d: %w", start, end, err)
	}
	return r.Leaves, nil
}

// Download opens the ciphertext of submission id. The caller must close
// the body. sha256Hex is the server's Ciphertext-SHA256 header.
func (c *Client) Download(ctx context.Context, id string) (body io.ReadCloser, size int64, sha256Hex string, err error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/submissions/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, 0, "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, "", fmt.Errorf("failed to download %s: %w", id, netError(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer drain(resp)
		return nil, 0, "", fmt.Errorf("failed to download %s: %w", id, statusError(resp))
	}
	return resp.Body, resp.ContentLength, resp.Header.Get("Ciphertext-SHA256"), nil
}

// MarkCollected tells the server submission id is safely in a bundle.
func (c *Client) MarkCollected(ctx context.Context, id string) error {
	req, err := c.request(ctx, http.MethodPost, "/v1/submissions/"+url.PathEscape(id)+"/collected", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to mark %s collected: %w", id, netError(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to mark %s collected: %w", id, statusError(resp))
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	path, query, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("failed to build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return req, nil
}

func (c *Client) doJSON(ctx context.Context, method, path string, in any, wantCode int, limit int64, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return netError(err)
	}
	defer drain(resp)
	if resp.StatusCode != wantCode {
		return statusError(resp)
	}
	data, err := bounded.ReadAll(resp.Body, limit)
	if errors.Is(err, bounded.ErrTooLarge) {
		return fmt.Errorf("response larger than %d bytes", limit)
	}
	if err != nil {
		return fmt.Errorf("failed to read response: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("malformed response from server: %v", err)
	}
	return nil
}

// errConnectionClosed replaces the bare "EOF" that net/http reports when a
// connection is cut before the answer, which means nothing to a user.
var errConnectionClosed = errors.New("connection closed before the server answered")

// netError drops the *url.Error wrapper, whose text repeats the method and
// URL, and names a cut connection.
func netError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", errConnectionClosed, err)
	}
	return err
}

// statusError turns an unexpected response into a *StatusError, keeping
// a sanitized copy of the server's message.
func statusError(resp *http.Response) error {
	se := &StatusError{Code: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		se.Message = Sanitize(body.Error, maxErrorMessage)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			// Capped before the multiplication, which a hostile server
			// could otherwise overflow into a negative delay.
			return &retryAfterError{se, time.Duration(min(secs, maxRetryAfter)) * time.Second}
		}
	}
	return se
}

// Sanitize makes text from the server safe to print: control characters
// (which could drive the terminal) become '?', and it is cut to max runes.
func Sanitize(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' || r == '\ufffd' ||
			(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// drain reads a little of the remaining body so the connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
