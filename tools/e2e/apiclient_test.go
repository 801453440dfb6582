package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/testimony-ngo/testimony/crypto/receipt"
)

// The robustness tests (crash, disk full, load, logs) drive the server's
// HTTP API directly, as a caseworker's and a collector's program would,
// rather than through the CLI: they need to see every status code, to
// resume at will and to run a hundred clients at once.

// apiChunkSize is the API's fixed chunk size (docs/api.md).
const apiChunkSize = 1 << 20

// apiClient is one client of the API with its own connections.
type apiClient struct {
	base       string
	hc         *http.Client
	submit     string
	collect    string
	recipients []age.Recipient
	// logKey verifies receipts: the intake log's key, as the server
	// announces it.
	logKey    string
	userAgent string
	// dialed records the local address of every connection made, so a
	// test can look for it in the server's output.
	mu     sync.Mutex
	dialed []string
}

// newAPIClient returns a client for e's server with its own transport (so
// its own TLS connections), encrypting to e's recipients.
func newAPIClient(t testing.TB, e *env) *apiClient {
	t.Helper()
	f, err := os.Open(e.recips)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := age.ParseRecipients(f)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(e.certFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in " + e.certFile())
	}
	c := &apiClient{base: e.url(), submit: e.submitTok, collect: e.collTok, recipients: rs}
	c.hc = &http.Client{
		// Generous: a bound against a hung test, never a measurement.
		Timeout: 10 * time.Minute,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err == nil {
					c.mu.Lock()
					c.dialed = append(c.dialed, conn.LocalAddr().String())
					c.mu.Unlock()
				}
				return conn, err
			},
		},
	}
	code, body, err := c.do("GET", "/v1/recipients", c.submit, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("recipients: %d %s %v", code, body, err)
	}
	var info struct {
		LogKey string `json:"log_key"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.LogKey == "" {
		t.Fatalf("recipients without a log key: %s", body)
	}
	c.logKey = info.LogKey
	return c
}

func (c *apiClient) localAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.dialed...)
}

// do sends one request and returns the status and body; err is a transport
// error (the server is down, or died during the request).
func (c *apiClient) do(method, path, token string, body []byte, header ...string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// encrypt returns an age file of size bytes of seeded pseudo-random
// plaintext, encrypted to the deployment's recipients.
func (c *apiClient) encrypt(t testing.TB, size int, seed uint64) []byte {
	t.Helper()
	file, err := c.seal(size, seed)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// seal is encrypt for goroutines other than the test's.
func (c *apiClient) seal(size int, seed uint64) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, c.recipients...)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 16))
	if _, err := io.CopyN(w, rand.NewChaCha8(key), int64(size)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// statusErr is an answer other than the one a helper expected.
type statusErr struct {
	what string
	code int
	body []byte
}

func (e *statusErr) Error() string { return fmt.Sprintf("%s: %d %s", e.what, e.code, e.body) }

// receiptFields is what the tests keep of a receipt.
type receiptFields struct {
	ID     string
	Size   int64
	SHA256 string
}

// checkReceipt parses a receipt, verifies its checkpoint signature and
// inclusion proof with the log key, and checks that it is for file.
func (c *apiClient) checkReceipt(body, file []byte) (receiptFields, error) {
	r, err := receipt.Parse(bytes.TrimSpace(body))
	if err != nil {
		return receiptFields{}, err
	}
	if _, err := r.Verify(c.logKey); err != nil {
		return receiptFields{}, err
	}
	if r.Size != int64(len(file)) || r.SHA256 != hexSHA256(file) {
		return receiptFields{}, fmt.Errorf("receipt %s is not for the %d bytes sent (sha256 %s)", body, len(file), hexSHA256(file))
	}
	return receiptFields{r.ID, r.Size, r.SHA256}, nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func chunkAt(file []byte, i int) []byte {
	return file[i*apiChunkSize : min(len(file), (i+1)*apiChunkSize)]
}

func apiChunks(size int) int { return (size + apiChunkSize - 1) / apiChunkSize }

// oneShot submits file with POST /v1/submissions.
func (c *apiClient) oneShot(file []byte) (receiptFields, error) {
	code, body, err := c.do("POST", "/v1/submissions", c.submit, file, "Content-Type", "application/age")
	if err != nil {
		return receiptFields{}, err
	}
	if code != http.StatusCreated {
		return receiptFields{}, &statusErr{"one-shot submission", code, body}
	}
	return c.checkReceipt(body, file)
}

// chunked submits file with the chunked protocol, without interruptions.
func (c *apiClient) chunked(file []byte) (receiptFields, error) {
	id, err := c.create(file)
	if err != nil {
		return receiptFields{}, err
	}
	for i := range apiChunks(len(file)) {
		if code, body, err := c.putChunk(id, i, chunkAt(file, i)); err != nil {
			return receiptFields{}, err
		} else if code != http.StatusNoContent {
			return receiptFields{}, &statusErr{fmt.Sprintf("chunk %d", i), code, body}
		}
	}
	code, body, err := c.do("POST", "/v1/uploads/"+id+"/finish", c.submit, nil)
	if err != nil {
		return receiptFields{}, err
	}
	if code != http.StatusCreated {
		return receiptFields{}, &statusErr{"finish", code, body}
	}
	return c.checkReceipt(body, file)
}

func (c *apiClient) create(file []byte) (string, error) {
	code, body, err := c.do("POST", "/v1/uploads", c.submit,
		fmt.Appendf(nil, `{"size":%d,"sha256":"%s"}`, len(file), hexSHA256(file)), "Content-Type", "application/json")
	if err != nil {
		return "", err
	}
	if code != http.StatusCreated {
		return "", &statusErr{"create upload", code, body}
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || len(created.ID) != 32 {
		return "", fmt.Errorf("create upload answered %s", body)
	}
	return created.ID, nil
}

func (c *apiClient) putChunk(id string, i int, chunk []byte) (int, []byte, error) {
	return c.do("PUT", "/v1/uploads/"+id+"/chunks/"+strconv.Itoa(i), c.submit, chunk,
		"Chunk-SHA256", hexSHA256(chunk), "Content-Type", "application/octet-stream")
}

// uploadState is GET /v1/uploads/{id}.
type uploadState struct {
	State   string          `json:"state"`
	Missing []int           `json:"missing"`
	Receipt json.RawMessage `json:"receipt"`
}

// listed is an entry of GET /v1/submissions.
type listed struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (c *apiClient) list() ([]listed, error) {
	code, body, err := c.do("GET", "/v1/submissions", c.collect, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, &statusErr{"list", code, body}
	}
	var l struct {
		Submissions []listed `json:"submissions"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("list: %v", err)
	}
	return l.Submissions, nil
}

// download streams a submission's ciphertext through SHA-256 and returns
// the hash and the length.
func (c *apiClient) download(id string) (string, int64, error) {
	req, err := http.NewRequest("GET", c.base+"/v1/submissions/"+id, nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.collect)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", 0, &statusErr{"download " + id, resp.StatusCode, msg}
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("download %s: %v", id, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkDownloads downloads every submission in want (id -> sha256), a few
// at a time, and fails the test for any that is missing or differs.
func (c *apiClient) checkDownloads(t testing.TB, want map[string]string) {
	t.Helper()
	ids := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				got, _, err := c.download(id)
				if err == nil && got != want[id] {
					err = fmt.Errorf("submission %s downloads with sha256 %s, want %s", id, got, want[id])
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
}
