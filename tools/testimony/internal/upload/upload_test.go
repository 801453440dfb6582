package upload

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
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

const testChunk = 1 << 10

// fakeServer implements the upload routes of the API in memory. Its knobs
// inject the failures a caseworker's link produces.
type fakeServer struct {
	mu       sync.Mutex
	uploads  map[string]*fakeUpload
	finished map[string][]byte // id -> receipt
	// dropNext makes the next requests fail at the network level: the
	// connection is closed without an answer.
	dropNext int
	// dropAfterPuts starts dropping every request after this many chunk
	// PUTs have been stored (0: off).
	dropAfterPuts int
	// busyNext answers the next requests with 429 and Retry-After.
	busyNext int
	// loseFinishAnswer finishes the upload but drops the answer once.
	loseFinishAnswer bool
	// forgetChunk, if positive, makes the first finish find chunk
	// forgetChunk-1 missing.
	forgetChunk int
	// cutAfter, if positive, keeps only this many bytes of every chunk
	// body (as a server does with what arrived before a cut) and then
	// drops the connection.
	cutAfter int
	// hangNext makes the next chunk PUTs wait, reading nothing more, until
	// the client gives up on them.
	hangNext int
	// expireAfterPuts, if positive, forgets the upload (as a server does
	// when it expires) once this many chunks of it are stored.
	expireAfterPuts int
	// bodyBytes counts the chunk bytes received.
	bodyBytes int
	puts      map[int]int // chunk index -> times stored
	requests  []string
}

type fakeUpload struct {
	size    int64
	sum     string
	chunks  map[int][]byte
	partial map[int][]byte
}

func newFake() *fakeServer {
	return &fakeServer{uploads: map[string]*fakeUpload{}, finished: map[string][]byte{}, puts: map[int]int{}}
}

func (f *fakeServer) chunks(size int64) int { return int((size + testChunk - 1) / testChunk) }

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	stored := 0
	for _, n := range f.puts {
		stored += n
	}
	if f.dropNext > 0 || (f.dropAfterPuts > 0 && stored >= f.dropAfterPuts) {
		if f.dropNext > 0 {
			f.dropNext--
		}
		panic(http.ErrAbortHandler) // closes the connection without a response
	}
	if f.busyNext > 0 {
		f.busyNext--
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":"slow down"}`)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/uploads"), "/")
	fail := func(code int, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/uploads":
		var req struct {
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var b [16]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		f.uploads[id] = &fakeUpload{size: req.Size, sum: req.SHA256, chunks: map[int][]byte{}, partial: map[int][]byte{}}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": id, "size": req.Size, "chunk_size": testChunk, "chunks": f.chunks(req.Size), "expires": "x"})
	case r.Method == "GET" && len(parts) == 2:
		id := parts[1]
		if rec, ok := f.finished[id]; ok {
			json.NewEncoder(w).Encode(map[string]any{"id": id, "state": "complete", "receipt": json.RawMessage(rec)})
			return
		}
		u, ok := f.uploads[id]
		if !ok {
			fail(404, "no such upload")
			return
		}
		missing := []int{}
		for i := range f.chunks(u.size) {
			if u.chunks[i] == nil {
				missing = append(missing, i)
			}
		}
		partial := []map[string]int{}
		for i, p := range u.partial {
			partial = append(partial, map[string]int{"index": i, "offset": len(p)})
		}
		json.NewEncoder(w).Encode(map[string]any{"id": id, "state": "open", "size": u.size, "chunk_size": testChunk, "chunks": f.chunks(u.size), "missing": missing, "partial": partial})
	case r.Method == "PUT" && len(parts) == 4 && parts[2] == "chunks":
		u, ok := f.uploads[parts[1]]
		if !ok {
			fail(404, "no such upload")
			return
		}
		i, _ := strconv.Atoi(parts[3])
		if f.hangNext > 0 {
			f.hangNext--
			f.mu.Unlock()
			// Reading the body to its end lets the server notice when
			// the client goes away.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			f.mu.Lock()
			return
		}
		off, _ := strconv.Atoi(r.Header.Get("Upload-Offset"))
		if off != len(u.partial[i]) && u.chunks[i] == nil {
			fail(409, "offset")
			return
		}
		if f.cutAfter > 0 && u.chunks[i] == nil {
			part := make([]byte, f.cutAfter)
			n, _ := io.ReadFull(r.Body, part)
			f.bodyBytes += n
			if u.partial == nil {
				u.partial = map[int][]byte{}
			}
			u.partial[i] = append(u.partial[i], part[:n]...)
			rest, _ := io.ReadAll(r.Body)
			if len(rest) > 0 || n == f.cutAfter {
				panic(http.ErrAbortHandler)
			}
		}
		data, _ := io.ReadAll(r.Body)
		f.bodyBytes += len(data)
		if f.cutAfter > 0 && u.chunks[i] == nil {
			data = u.partial[i]
		}
		sum := sha256.Sum256(data)
		if r.Header.Get("Chunk-SHA256") != hex.EncodeToString(sum[:]) {
			fail(400, "chunk hash mismatch")
			return
		}
		if old := u.chunks[i]; old != nil && !bytes.Equal(old, data) {
			fail(409, "chunk conflict")
			return
		}
		u.chunks[i] = data
		delete(u.partial, i)
		f.puts[i]++
		if f.expireAfterPuts > 0 && len(u.chunks) >= f.expireAfterPuts {
			f.expireAfterPuts = 0
			delete(f.uploads, parts[1])
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == "POST" && len(parts) == 3 && parts[2] == "finish":
		id := parts[1]
		if _, ok := f.finished[id]; ok {
			fail(409, "already finished")
			return
		}
		u, ok := f.uploads[id]
		if !ok {
			fail(404, "no such upload")
			return
		}
		var req struct {
			SHA256 string `json:"sha256"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if u.sum == "" {
			u.sum = req.SHA256
		}
		if f.forgetChunk > 0 {
			delete(u.chunks, f.forgetChunk-1)
			f.forgetChunk = 0
		}
		var all []byte
		for i := range f.chunks(u.size) {
			if u.chunks[i] == nil {
				fail(422, "chunk "+strconv.Itoa(i)+" is missing")
				return
			}
			all = append(all, u.chunks[i]...)
		}
		sum := sha256.Sum256(all)
		if hex.EncodeToString(sum[:]) != u.sum {
			delete(f.uploads, id)
			fail(422, "the stored file does not have the declared sha256; the upload was deleted")
			return
		}
		rec := []byte(fmt.Sprintf(`{"id":%q,"size":%d}`, id, u.size))
		f.finished[id] = rec
		delete(f.uploads, id)
		if f.loseFinishAnswer {
			f.loseFinishAnswer = false
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(http.StatusCreated)
		w.Write(rec)
	default:
		fail(404, "no such route")
	}
}

// setup starts f behind real TLS and returns an uploader whose sleeps are
// recorded instead of waited.
func setup(t *testing.T, f *fakeServer) (*Uploader, *[]time.Duration) {
	t.Helper()
	ts := httptest.NewUnstartedServer(f)
	ts.Config.ErrorLog = nil
	ts.StartTLS()
	t.Cleanup(ts.Close)
	sum := sha256.Sum256(ts.Certificate().Raw)
	cfg, err := api.TLSConfig(api.TLSOptions{Pin: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ts.URL)
	var waits []time.Duration
	return &Uploader{
		Server: api.New(u, "tm1_test", api.NewHTTPClient(cfg)),
		Retry:  retry.Policy{Initial: time.Second, Max: 8 * time.Second, Attempts: 5},
		Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		},
	}, &waits
}

func job(size int) (Job, []byte, *[]string) {
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var saved []string
	return Job{
		File:         bytes.NewReader(data),
		Size:         int64(size),
		SHA256:       hex.EncodeToString(sum[:]),
		SaveUploadID: func(id string) error { saved = append(saved, id); return nil },
	}, data, &saved
}

func (f *fakeServer) totalPuts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.puts {
		n += c
	}
	return n
}

func TestUploadHappyPath(t *testing.T) {
	f := newFake()
	up, waits := setup(t, f)
	var last, total int64
	up.Progress = func(done, tot int64) { last, total = done, tot }
	j, _, saved := job(4*testChunk + 17)
	id, rec, err := up.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if len(*saved) != 1 || (*saved)[0] != id {
		t.Errorf("saved upload ids %v, want [%s]", *saved, id)
	}
	if !strings.Contains(string(rec), id) {
		t.Errorf("receipt %s does not name %s", rec, id)
	}
	if f.totalPuts() != 5 || len(*waits) != 0 {
		t.Errorf("%d chunk PUTs and waits %v, want 5 and none", f.totalPuts(), *waits)
	}
	if last != total || total != j.Size {
		t.Errorf("progress ended at %d/%d, want %d", last, total, j.Size)
	}
}

func TestUploadRetriesNetworkFailures(t *testing.T) {
	f := newFake()
	f.dropAfterPuts = 2
	up, waits := setup(t, f)
	up.Retrying = func(err error, wait time.Duration, held, total int64) {
		f.mu.Lock()
		f.dropAfterPuts = 0 // the link comes back after the first failure
		f.mu.Unlock()
	}
	j, _, _ := job(5 * testChunk)
	if _, _, err := up.Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	// Every chunk stored exactly once: after the failure the client asked
	// which chunks were missing instead of starting over.
	for i := range 5 {
		if f.puts[i] != 1 {
			t.Errorf("chunk %d stored %d times, want once", i, f.puts[i])
		}
	}
	if len(*waits) != 1 || (*waits)[0] < 500*time.Millisecond || (*waits)[0] > time.Second {
		t.Errorf("waits %v, want one jittered initial backoff", *waits)
	}
	var sawStatus bool
	for _, r := range f.requests {
		if strings.HasPrefix(r, "GET /v1/uploads/") {
			sawStatus = true
		}
	}
	if !sawStatus {
		t.Errorf("no GET of the upload state after a failure: %v", f.requests)
	}
}

func TestUploadBackoffGrowsAndGivesUp(t *testing.T) {
	f := newFake()
	f.dropNext = 100
	up, waits := setup(t, f)
	j, _, _ := job(testChunk)
	_, _, err := up.Run(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "giving up after 5 failed attempts") {
		t.Fatalf("Run = %v, want giving up", err)
	}
	if len(*waits) != 4 {
		t.Fatalf("waits %v, want 4", *waits)
	}
	for i, w := range *waits {
		max := min(time.Second<<i, 8*time.Second)
		if w < max/2 || w > max {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, w, max/2, max)
		}
	}
}

func TestUploadHonoursRetryAfter(t *testing.T) {
	f := newFake()
	f.busyNext = 1
	up, waits := setup(t, f)
	j, _, _ := job(testChunk)
	if _, _, err := up.Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Errorf("waits %v, want the server's Retry-After of 3s", *waits)
	}
}

func TestUploadResumesExistingUpload(t *testing.T) {
	f := newFake()
	up, _ := setup(t, f)
	j, data, saved := job(4 * testChunk)
	// A first client stored chunks 0 and 2, then died.
	id := "0123456789abcdef0123456789abcdef"
	f.uploads[id] = &fakeUpload{size: j.Size, sum: j.SHA256, chunks: map[int][]byte{
		0: data[:testChunk], 2: data[2*testChunk : 3*testChunk],
	}}
	j.UploadID = id
	got, _, err := up.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if got != id || len(*saved) != 0 {
		t.Errorf("resumed as %s (saved %v), want the existing upload %s", got, *saved, id)
	}
	if f.puts[0] != 0 || f.puts[2] != 0 || f.puts[1] != 1 || f.puts[3] != 1 {
		t.Errorf("puts %v, want only the missing chunks 1 and 3", f.puts)
	}
}

func TestUploadExpiredStartsOver(t *testing.T) {
	f := newFake()
	up, _ := setup(t, f)
	j, _, saved := job(2 * testChunk)
	j.UploadID = "ffffffffffffffffffffffffffffffff" // the server forgot it
	id, _, err := up.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if id == j.UploadID || len(*saved) != 1 || (*saved)[0] != id {
		t.Errorf("id %s, saved %v: want a new upload recorded", id, *saved)
	}
}

func TestUploadLostFinishAnswer(t *testing.T) {
	f := newFake()
	f.loseFinishAnswer = true
	up, waits := setup(t, f)
	j, _, _ := job(testChunk)
	id, rec, err := up.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec), id) || len(*waits) != 1 {
		t.Errorf("receipt %s, waits %v: want the receipt from the upload state after one retry", rec, *waits)
	}
}

func TestUploadAlreadyComplete(t *testing.T) {
	f := newFake()
	up, _ := setup(t, f)
	j, _, _ := job(testChunk)
	id := "0123456789abcdef0123456789abcdef"
	f.finished[id] = []byte(`{"id":"` + id + `"}`)
	j.UploadID = id
	got, rec, err := up.Run(context.Background(), j)
	if err != nil || got != id || len(rec) == 0 || f.totalPuts() != 0 {
		t.Errorf("Run = %s, %s, %v with %d puts; want the stored receipt and no upload", got, rec, err, f.totalPuts())
	}
}

func TestUploadFatalErrors(t *testing.T) {
	f := newFake()
	up, waits := setup(t, f)
	j, _, _ := job(testChunk)
	j.SHA256 = strings.Repeat("0", 64) // the server will refuse to finish
	_, _, err := up.Run(context.Background(), j)
	if !api.IsStatus(err, http.StatusUnprocessableEntity) || !retry.IsPermanent(err) {
		t.Errorf("Run = %v, want the server's 422", err)
	}
	if f.totalPuts() != 1 || len(*waits) != 1 {
		t.Errorf("%d chunk PUTs and waits %v: a rejected file must not be uploaded again", f.totalPuts(), *waits)
	}
	*waits = nil

	j, _, _ = job(testChunk)
	j.SaveUploadID = func(string) error { return errors.New("disk full") }
	if _, _, err := up.Run(context.Background(), j); err == nil || !strings.Contains(err.Error(), "disk full") || len(*waits) != 0 {
		t.Errorf("Run with a failing SaveUploadID = %v, waits %v", err, *waits)
	}
}

func TestUploadFinishFindsMissingChunk(t *testing.T) {
	f := newFake()
	f.forgetChunk = 2 // chunk 1
	up, _ := setup(t, f)
	j, _, _ := job(3 * testChunk)
	if _, _, err := up.Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if f.puts[0] != 1 || f.puts[1] != 2 || f.puts[2] != 1 {
		t.Errorf("puts %v, want chunk 1 sent again and no other", f.puts)
	}
}

func TestUploadRateLimit(t *testing.T) {
	f := newFake()
	up, waits := setup(t, f)
	up.RateLimit = testChunk // one chunk per second
	j, _, _ := job(3 * testChunk)
	if _, _, err := up.Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	// The sleeps are recorded, not waited, so chunk k is due k seconds
	// after the start minus the little real time that passed.
	if len(*waits) != 3 {
		t.Fatalf("waits %v, want one before each chunk", *waits)
	}
	for k, w := range *waits {
		want := time.Duration(k+1) * time.Second
		if w > want || w < want-500*time.Millisecond {
			t.Errorf("wait before chunk %d = %v, want about %v", k, w, want)
		}
	}
}

// badState answers the upload state with whatever it is given.
type badState struct {
	Server
	up *api.Upload
}

func (b badState) UploadStatus(context.Context, string) (*api.Upload, error) { return b.up, nil }

func TestUploadRefusesInconsistentServer(t *testing.T) {
	j, _, _ := job(3 * testChunk)
	j.UploadID = "0123456789abcdef0123456789abcdef"
	for name, up := range map[string]*api.Upload{
		"other size":     {State: "open", Size: 1, ChunkSize: testChunk, Chunks: 1},
		"zero chunk":     {State: "open", Size: j.Size, ChunkSize: 0, Chunks: 3},
		"huge chunk":     {State: "open", Size: j.Size, ChunkSize: 1 << 30, Chunks: 1},
		"wrong count":    {State: "open", Size: j.Size, ChunkSize: testChunk, Chunks: 7},
		"missing range":  {State: "open", Size: j.Size, ChunkSize: testChunk, Chunks: 3, Missing: []int{5}},
		"unknown state":  {State: "weird"},
		"empty complete": {State: "complete"},
	} {
		u := &Uploader{Server: badState{up: up}, Sleep: func(context.Context, time.Duration) error { return nil }}
		if _, _, err := u.Run(context.Background(), j); !errors.Is(err, ErrBadServerState) {
			t.Errorf("%s: Run = %v, want ErrBadServerState", name, err)
		}
	}
}

// TestUploadContinuesInsideChunk: a link that cuts every chunk request
// after 300 bytes still delivers the file, each byte once, although every
// request fails: each failure moved the upload forward. The client before
// resumption sent whole chunks again and gave up.
//
// With two chunks side by side (the fake answers fast), a cut may stop both
// at once: fewer rounds, the same bytes.
func TestUploadContinuesInsideChunk(t *testing.T) {
	for _, tc := range []struct{ parallel, rounds int }{{1, 9}, {2, 5}} {
		f := newFake()
		f.cutAfter = 300
		up, waits := setup(t, f)
		up.Parallel = tc.parallel
		up.Retry = retry.Policy{Initial: time.Second, Max: 8 * time.Second, Attempts: 3}
		var lines []string
		up.Retrying = func(err error, wait time.Duration, held, total int64) {
			lines = append(lines, fmt.Sprintf("%v %d/%d", wait, held, total))
		}
		j, data, _ := job(3*testChunk + 100)
		id, _, err := up.Run(context.Background(), j)
		if err != nil {
			t.Fatalf("parallel %d: Run = %v; told %v", tc.parallel, err, lines)
		}
		f.mu.Lock()
		if f.bodyBytes != len(data) {
			t.Errorf("parallel %d: %d chunk bytes sent for a file of %d: each byte should go once", tc.parallel, f.bodyBytes, len(data))
		}
		if len(*waits) != 0 || len(lines) < tc.rounds || !strings.HasPrefix(lines[0], "0s 300/") {
			t.Errorf("parallel %d: waits %v, told %v: want no wait, and every cut told with what the server holds", tc.parallel, *waits, lines)
		}
		if _, ok := f.finished[id]; !ok {
			t.Errorf("parallel %d: upload not finished", tc.parallel)
		}
		f.mu.Unlock()
	}
}

// TestUploadExpiresWhileTwoInFlight: the upload expires on the server
// while two chunks are on their way (answered 404); the client waits for
// both, starts one new upload of the same file and finishes it.
func TestUploadExpiresWhileTwoInFlight(t *testing.T) {
	f := newFake()
	f.expireAfterPuts = 3
	up, _ := setup(t, f)
	up.Server = &slowPuts{Server: up.Server, delay: 5 * time.Millisecond}
	j, data, saved := job(8*testChunk + 5)
	id, _, err := up.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*saved) != 2 || (*saved)[1] != id || f.finished[id] == nil {
		t.Fatalf("upload ids %v, finished %s: want a second upload, finished", *saved, id)
	}
	if f.bodyBytes < len(data) {
		t.Errorf("%d chunk bytes sent for %d", f.bodyBytes, len(data))
	}
}

// slowPuts is a Server whose chunk requests take a while and that counts
// how many are under way at once.
type slowPuts struct {
	Server
	delay    time.Duration
	mu       sync.Mutex
	now, max int
}

func (s *slowPuts) PutChunk(ctx context.Context, id string, index int, offset int64, rest []byte, sum string, sent func(n int)) error {
	s.mu.Lock()
	s.now++
	s.max = max(s.max, s.now)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.now--
		s.mu.Unlock()
	}()
	time.Sleep(s.delay)
	return s.Server.PutChunk(ctx, id, index, offset, rest, sum, sent)
}

// TestUploadTwoChunksSideBySide: on a fast link two chunk requests are on
// the wire at once, never more, and the progress never goes back; with
// Parallel 1, or when a chunk takes longer than FastChunk, one at a time.
func TestUploadTwoChunksSideBySide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		parallel int
		delay    time.Duration
		chunks   int
		want     int
	}{
		{"fast", 0, 20 * time.Millisecond, 9, 2},
		{"one at a time", 1, 20 * time.Millisecond, 9, 1},
		{"slow link", 0, FastChunk + 50*time.Millisecond, 4, 1},
	} {
		f := newFake()
		up, waits := setup(t, f)
		sp := &slowPuts{Server: up.Server, delay: tc.delay}
		up.Server, up.Parallel = sp, tc.parallel
		var last int64
		back := false
		up.Progress = func(done, total int64) {
			back = back || done < last
			last = done
		}
		j, data, _ := job(tc.chunks*testChunk - 10)
		id, _, err := up.Run(context.Background(), j)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sp.max != tc.want || back || last != int64(len(data)) || len(*waits) != 0 {
			t.Errorf("%s: at most %d chunks at once (want %d), progress went back %v, ended at %d of %d, waits %v", tc.name, sp.max, tc.want, back, last, len(data), *waits)
		}
		f.mu.Lock()
		if f.bodyBytes != len(data) || f.finished[id] == nil {
			t.Errorf("%s: %d chunk bytes sent for %d, finished %v", tc.name, f.bodyBytes, len(data), f.finished[id] != nil)
		}
		f.mu.Unlock()
	}
}

// TestUploadGivesUpAfterTimeWithoutProgress: with no bound on attempts, a
// dead link is given up after GiveUpAfter without progress, with waits
// that grow to the policy's cap.
func TestUploadGivesUpAfterTimeWithoutProgress(t *testing.T) {
	f := newFake()
	f.dropNext = 1 << 30
	up, waits := setup(t, f)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	up.Retry = retry.Policy{Initial: time.Second, Max: 5 * time.Minute}
	up.GiveUpAfter = 2 * time.Hour
	up.Now = func() time.Time { return now }
	up.Sleep = func(_ context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		now = now.Add(d)
		return nil
	}
	j, _, _ := job(testChunk)
	_, _, err := up.Run(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "without progress") {
		t.Fatalf("Run = %v, want giving up without progress", err)
	}
	last := (*waits)[len(*waits)-1]
	if len(*waits) < 20 || last < 150*time.Second || last > 5*time.Minute {
		t.Errorf("%d waits, the last %v: want many, capped at 5 minutes", len(*waits), last)
	}
}

// TestUploadDetectsStall: a chunk request on which nothing moves is
// abandoned after StallTimeout, not after the request timeout, and retried.
func TestUploadDetectsStall(t *testing.T) {
	f := newFake()
	f.hangNext = 1
	up, _ := setup(t, f)
	up.StallTimeout = 200 * time.Millisecond
	up.RequestTimeout = time.Hour
	var told []string
	up.Retrying = func(err error, wait time.Duration, held, total int64) { told = append(told, err.Error()) }
	j, _, _ := job(testChunk)
	if _, _, err := up.Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || !strings.Contains(told[0], "connection stalled") {
		t.Errorf("told %v, want one stall", told)
	}
}

// growingFile is a file being written: the test releases its bytes, and a
// read beyond what was released fails the test.
type growingFile struct {
	t        *testing.T
	data     []byte
	mu       sync.Mutex
	cond     *sync.Cond
	released int64
	failed   error // ends waits, as an abandoned outbox entry does
}

func newGrowingFile(t *testing.T, data []byte) *growingFile {
	g := &growingFile{t: t, data: data}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *growingFile) release(n int64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released, g.failed = n, err
	g.cond.Broadcast()
}

func (g *growingFile) ReadAt(p []byte, off int64) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if off+int64(len(p)) > g.released {
		g.t.Errorf("read of bytes [%d, %d) when only %d were written", off, off+int64(len(p)), g.released)
	}
	return bytes.NewReader(g.data).ReadAt(p, off)
}

func (g *growingFile) written(ctx context.Context, n int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.released < n && g.failed == nil {
		g.cond.Wait()
	}
	if g.released >= n {
		return nil
	}
	return g.failed
}

// TestUploadWhileWritten checks an upload that overlaps the writing of its
// file: each chunk is sent once written, before the file is complete, and
// the finish waits for the file's SHA-256.
func TestUploadWhileWritten(t *testing.T) {
	f := newFake()
	up, _ := setup(t, f)
	data := make([]byte, 4*testChunk+17)
	rand.Read(data)
	g := newGrowingFile(t, data)
	sum := sha256.Sum256(data)
	summed := make(chan struct{})
	var saved []string
	j := Job{File: g, Size: int64(len(data)), Written: g.written,
		Sum: func(context.Context) (string, error) {
			<-summed
			return hex.EncodeToString(sum[:]), nil
		},
		SaveUploadID: func(id string) error { saved = append(saved, id); return nil }}
	type result struct {
		id  string
		err error
	}
	done := make(chan result)
	go func() {
		id, _, err := up.Run(context.Background(), j)
		done <- result{id, err}
	}()
	// Release the file a chunk at a time, each only after the previous
	// chunk arrived: the upload must keep pace without the whole file.
	for i := 1; i <= 5; i++ {
		g.release(min(int64(i*testChunk), int64(len(data))), nil)
		for f.totalPuts() < i {
			time.Sleep(time.Millisecond)
		}
	}
	f.mu.Lock()
	finishes := strings.Count(strings.Join(f.requests, "\n"), "/finish")
	f.mu.Unlock()
	if finishes != 0 {
		t.Errorf("finish sent before the file's SHA-256 was known")
	}
	close(summed)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(saved) != 1 || saved[0] != r.id {
		t.Errorf("saved upload ids %v, want [%s]", saved, r.id)
	}
	if f.totalPuts() != 5 {
		t.Errorf("%d chunk PUTs, want 5", f.totalPuts())
	}
}

// TestUploadWhileWrittenAbandoned checks that when the file being written
// is abandoned (an encryption that failed), the upload ends with that
// error and is never finished.
func TestUploadWhileWrittenAbandoned(t *testing.T) {
	f := newFake()
	up, _ := setup(t, f)
	data := make([]byte, 4*testChunk)
	g := newGrowingFile(t, data)
	abandoned := errors.New("encryption failed")
	j := Job{File: g, Size: int64(len(data)), Written: g.written,
		Sum: func(context.Context) (string, error) { return "", abandoned }}
	g.release(testChunk+5, nil)
	go func() {
		for f.totalPuts() < 1 {
			time.Sleep(time.Millisecond)
		}
		g.release(testChunk+5, abandoned)
	}()
	_, _, err := up.Run(context.Background(), j)
	if !errors.Is(err, abandoned) {
		t.Fatalf("Run = %v, want the writer's error", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if reqs := strings.Join(f.requests, "\n"); strings.Contains(reqs, "/finish") {
		t.Errorf("an abandoned file's upload was finished:\n%s", reqs)
	}
}
