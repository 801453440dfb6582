package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// hostileServer answers every request with the same response, whose body
// may repeat forever; it counts what the client read of it.
type hostileServer struct {
	status     int
	retryAfter string
	body       []byte
	endless    bool
	read       int64
}

func (h *hostileServer) Do(req *http.Request) (*http.Response, error) {
	var body io.Reader = bytes.NewReader(h.body)
	if h.endless {
		body = &repeatReader{data: h.body}
	}
	resp := &http.Response{
		StatusCode:    h.status,
		Header:        http.Header{},
		Body:          io.NopCloser(&countReader{r: body, n: &h.read}),
		ContentLength: -1,
		Request:       req,
	}
	if h.retryAfter != "" {
		resp.Header.Set("Retry-After", h.retryAfter)
	}
	return resp, nil
}

type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		r.data = []byte{' '}
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// FuzzServerResponse plays a hostile server: any status, Retry-After and
// body (possibly endless) in answer to every client call. The client must
// return, read no more than its cap for the call, never report a negative
// delay, and never put a control character into an error message that the
// CLI prints.
func FuzzServerResponse(f *testing.F) {
	f.Add(200, "", []byte(`{"type":"X25519","recipients":["age1x"],"log_key":"k","signed_recipients":""}`), false)
	f.Add(201, "", []byte(`{"id":"0123456789abcdef0123456789abcdef","size":10,"chunk_size":1048576,"chunks":1}`), false)
	f.Add(200, "", []byte(`{"submissions":[{"id":"x","size":-1,"receipt":{}}]}`), false)
	f.Add(200, "", []byte(`{"proof":["AAAA"],"leaves":[{"index":-1}]}`), false)
	f.Add(404, "", []byte(`{"error":"no such upload \u001b[2J\u202e"}`), false)
	f.Add(429, "9223372037", []byte(`{"error":"slow down"}`), false)
	f.Add(503, "99999999999999999999", []byte(`{}`), false)
	f.Add(429, "-5", []byte(`{"error":"x"}`), false)
	f.Add(200, "", []byte(`[`), true)
	f.Add(500, "", []byte("\x1b]0;pwned\a"), true)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte, endless bool) {
		if status < 100 || status > 999 {
			status = 200 + (status%100+100)%100
		}
		srv := &hostileServer{status: status, retryAfter: retryAfter, body: body, endless: endless}
		base, _ := url.Parse("https://intake.example")
		c := New(base, "tm1_token", srv)
		ctx := context.Background()
		id := "0123456789abcdef0123456789abcdef"
		calls := []struct {
			name  string
			limit int64 // the most the call may read of a body
			call  func() error
		}{
			{"Recipients", maxJSONResponse, func() error { _, err := c.Recipients(ctx); return err }},
			{"CreateUpload", maxJSONResponse, func() error { _, err := c.CreateUpload(ctx, 10, strings.Repeat("0", 64)); return err }},
			{"PutChunk", 64 << 10, func() error { return c.PutChunk(ctx, id, 0, 0, []byte("x"), strings.Repeat("0", 64), nil) }},
			{"UploadStatus", maxJSONResponse, func() error { _, err := c.UploadStatus(ctx, id); return err }},
			{"Finish", maxJSONResponse, func() error { _, err := c.Finish(ctx, id, strings.Repeat("0", 64)); return err }},
			{"Pending", maxListResponse, func() error { _, err := c.Pending(ctx); return err }},
			{"Checkpoint", maxCheckpoint, func() error { _, err := c.Checkpoint(ctx); return err }},
			{"Inclusion", maxJSONResponse, func() error { _, err := c.Inclusion(ctx, 0, 1); return err }},
			{"Consistency", maxJSONResponse, func() error { _, err := c.Consistency(ctx, 0, 1); return err }},
			{"Leaves", maxLeavesResponse, func() error { _, err := c.Leaves(ctx, 0, 1); return err }},
			{"MarkCollected", 64 << 10, func() error { return c.MarkCollected(ctx, id) }},
		}
		for _, call := range calls {
			if endless && call.limit > maxJSONResponse {
				continue // reading 64 MiB per call would only slow the fuzzer
			}
			srv.read = 0
			err := call.call()
			// The client reads up to its cap plus one byte to detect an
			// oversized answer, then drains at most 64 KiB to reuse the
			// connection.
			if max := call.limit + 1 + 64<<10; srv.read > max {
				t.Fatalf("%s read %d bytes, more than %d", call.name, srv.read, max)
			}
			if err == nil {
				continue
			}
			if d := RetryAfter(err); d < 0 {
				t.Fatalf("%s: Retry-After %q gives a negative delay %v", call.name, retryAfter, d)
			}
			for _, r := range err.Error() {
				if unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
					t.Fatalf("%s: error %q holds the control character %U", call.name, err, r)
				}
			}
		}
	})
}
