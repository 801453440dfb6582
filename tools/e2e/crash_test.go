package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/store"
)

// Crash harness defaults: short enough for every CI run. Set
// TESTIMONY_CRASH_ROUNDS for a longer run and TESTIMONY_CRASH_SEED to
// replay a schedule of kills and file sizes.
const (
	defaultCrashRounds  = 20
	crashUploadsPerKill = 4
	// crashMaxFile bounds the files: up to four chunks, the last partial.
	crashMaxFile = 3*apiChunkSize + apiChunkSize/2
	// crashStall fails an upload that makes no progress for this long, so
	// that a broken server fails the test instead of hanging it.
	crashStall = 5 * time.Minute
)

// TestCrashResume runs concurrent chunked uploads against the real server
// binary and kills it with SIGKILL at a random moment, many times. The
// moment is a random number of acknowledged requests into the round, so
// kills land in creates, chunks and finishes alike whatever the machine's
// speed. Between kill and restart the bbolt file must pass its consistency
// check; after each restart every submission acknowledged so far must still
// be listed with its hash; the clients resume by asking which chunks are
// missing, and no chunk that was acknowledged may be among them. At the
// end every upload has completed exactly once and downloads intact.
func TestCrashResume(t *testing.T) {
	rounds := defaultCrashRounds
	if s := os.Getenv("TESTIMONY_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TESTIMONY_CRASH_ROUNDS=%q is not a positive number", s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TESTIMONY_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TESTIMONY_CRASH_SEED=%q is not a number", s)
		}
		seed = n
	}
	t.Logf("TESTIMONY_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x7e57))

	e := newEnv(t)
	c := newAPIClient(t, e)
	h := &crashHarness{acked: map[string]string{}, progress: make(chan struct{}, 1<<16)}
	var all []*crashUpload
	var wg sync.WaitGroup
	start := time.Now()
	var bytesSent int64

	for round := range rounds {
		var uploads []*crashUpload
		events := 0
		for k := range crashUploadsPerKill {
			file := c.encrypt(t, 1+rng.IntN(crashMaxFile), seed+uint64(round*crashUploadsPerKill+k))
			uploads = append(uploads, &crashUpload{h: h, c: c, file: file, size: len(file), sha: hexSHA256(file)})
			bytesSent += int64(len(file))
			events += apiChunks(len(file)) + 2
		}
		all = append(all, uploads...)
		// Events from earlier rounds' uploads still count towards the
		// kill, but not those from before this round began.
		h.drain()
		var roundWG sync.WaitGroup
		for _, u := range uploads {
			roundWG.Add(1)
			wg.Go(func() {
				defer roundWG.Done()
				u.run()
			})
		}
		roundDone := make(chan struct{})
		go func() {
			roundWG.Wait()
			close(roundDone)
		}()
		h.waitProgress(rng.IntN(events+1), roundDone)
		e.kill()
		checkStoreFile(t, e.data)
		e.start()
		h.checkAcknowledged(t, c)
	}
	wg.Wait()

	var interrupted, interruptions, lostFinishes int
	bySHA := map[string]int{}
	want := map[string]string{}
	for _, u := range all {
		if u.err != nil {
			t.Errorf("upload of %d bytes: %v", u.size, u.err)
			continue
		}
		want[u.receipt.ID] = u.sha
		if u.interruptions > 0 {
			interrupted++
		}
		interruptions += u.interruptions
		if u.lostFinish {
			lostFinishes++
		}
	}
	subs, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		bySHA[s.SHA256]++
	}
	for _, u := range all {
		if n := bySHA[u.sha]; u.err == nil && n != 1 {
			t.Errorf("upload %s is stored as %d submissions, want 1", u.receipt.ID, n)
		}
	}
	if len(subs) != len(all) {
		t.Errorf("%d submissions stored for %d uploads", len(subs), len(all))
	}
	c.checkDownloads(t, want)
	checkpoints := checkLogAfterCrashes(t, c, all)
	e.kill()
	checkStoreFile(t, e.data)

	t.Logf("crash harness: %d rounds, %d SIGKILLs survived, %d uploads (%.1f MiB) in %s",
		rounds, rounds, len(all), float64(bytesSent)/(1<<20), time.Since(start).Round(time.Millisecond))
	t.Logf("  %d uploads interrupted (%d requests unanswered, retries while the server was down included), %d finishes whose answer was lost and was recovered by GET",
		interrupted, interruptions, lostFinishes)
	t.Logf("  after every kill: bbolt Check passed, every acknowledged submission listed; at the end: %d submissions, no duplicates, all hashes match", len(subs))
	t.Logf("  intake log: %d leaves; the %d checkpoints in the receipts are all consistent with the final one", len(all), checkpoints)
}

// crashHarness is what the uploads share with the test.
type crashHarness struct {
	mu sync.Mutex
	// acked maps every submission a client holds a receipt for to its
	// SHA-256.
	acked    map[string]string
	progress chan struct{}
}

// event records one acknowledged request; it never blocks an upload.
func (h *crashHarness) event() {
	select {
	case h.progress <- struct{}{}:
	default:
	}
}

// drain forgets the events recorded so far.
func (h *crashHarness) drain() {
	for {
		select {
		case <-h.progress:
		default:
			return
		}
	}
}

// waitProgress waits for n acknowledged requests, or until done is closed.
func (h *crashHarness) waitProgress(n int, done <-chan struct{}) {
	for range n {
		select {
		case <-h.progress:
		case <-done:
			return
		}
	}
}

func (h *crashHarness) acknowledge(id, sha string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acked[id] = sha
}

// checkAcknowledged fails the test unless every submission acknowledged so
// far is listed with its hash.
func (h *crashHarness) checkAcknowledged(t *testing.T, c *apiClient) {
	t.Helper()
	h.mu.Lock()
	acked := make(map[string]string, len(h.acked))
	for id, sha := range h.acked {
		acked[id] = sha
	}
	h.mu.Unlock()
	subs, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, s := range subs {
		listed[s.ID] = s.SHA256
	}
	for id, sha := range acked {
		if got, ok := listed[id]; !ok {
			t.Fatalf("acknowledged submission %s is gone after the restart", id)
		} else if got != sha {
			t.Fatalf("acknowledged submission %s is listed with sha256 %s, want %s", id, got, sha)
		}
	}
}

// crashUpload is one client's chunked upload that resumes through any
// number of server deaths.
type crashUpload struct {
	h    *crashHarness
	c    *apiClient
	file []byte // dropped once the upload is done, for long runs
	size int
	sha  string

	receipt       receiptFields
	rawReceipt    []byte
	interruptions int
	lostFinish    bool
	err           error
}

// errInterrupted marks a request the server did not answer: it was killed,
// or is still starting.
var errInterrupted = errors.New("interrupted")

func (u *crashUpload) run() {
	var id string
	acked := map[int]bool{}
	resuming := false
	lastProgress := time.Now()
	for {
		if time.Since(lastProgress) > crashStall {
			u.err = fmt.Errorf("no progress for %s (upload %q)", crashStall, id)
			return
		}
		done, err := u.step(&id, acked, resuming)
		switch {
		case errors.Is(err, errInterrupted):
			u.interruptions++
			resuming = true
			time.Sleep(20 * time.Millisecond)
			continue
		case err != nil:
			u.err = err
			return
		}
		lastProgress = time.Now()
		if done {
			u.file = nil
			return
		}
	}
}

// step runs the protocol from wherever the upload stands until it is done
// or a request goes unanswered.
func (u *crashUpload) step(id *string, acked map[int]bool, resuming bool) (bool, error) {
	c := u.c
	n := apiChunks(len(u.file))
	if *id == "" {
		newID, err := c.create(u.file)
		if err != nil {
			return false, transportOr(err)
		}
		*id = newID
		u.h.event()
	}
	missing := make([]int, n)
	for i := range missing {
		missing[i] = i
	}
	if resuming {
		code, body, err := c.do("GET", "/v1/uploads/"+*id, c.submit, nil)
		if err != nil {
			return false, errInterrupted
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("the acknowledged upload %s is gone after a restart: %d %s", *id, code, body)
		}
		var st uploadState
		if err := json.Unmarshal(body, &st); err != nil {
			return false, fmt.Errorf("upload state %s: %v", body, err)
		}
		if st.State == "complete" {
			// The finish committed but its answer was lost.
			return true, u.complete(st.Receipt, true)
		}
		for _, m := range st.Missing {
			if acked[m] {
				return false, fmt.Errorf("chunk %d of upload %s was acknowledged but is missing after a restart", m, *id)
			}
		}
		missing = st.Missing
	}
	for _, i := range missing {
		code, body, err := c.putChunk(*id, i, chunkAt(u.file, i))
		if err != nil {
			return false, errInterrupted
		}
		if code != http.StatusNoContent {
			return false, fmt.Errorf("chunk %d of upload %s: %d %s", i, *id, code, body)
		}
		acked[i] = true
		u.h.event()
	}
	code, body, err := c.do("POST", "/v1/uploads/"+*id+"/finish", c.submit, nil)
	switch {
	case err != nil:
		return false, errInterrupted
	case code == http.StatusConflict:
		// An earlier finish committed; GET returns its receipt.
		return false, errInterrupted
	case code != http.StatusCreated:
		return false, fmt.Errorf("finish of upload %s: %d %s", *id, code, body)
	}
	return true, u.complete(body, false)
}

func (u *crashUpload) complete(raw []byte, lost bool) error {
	r, err := u.c.checkReceipt(raw, u.file)
	if err != nil {
		return err
	}
	u.receipt, u.rawReceipt, u.lostFinish = r, bytes.TrimSpace(raw), lost
	u.h.acknowledge(r.ID, u.sha)
	u.h.event()
	return nil
}

// transportOr turns the error of a helper into errInterrupted if no answer
// came, and keeps it otherwise.
func transportOr(err error) error {
	var se *statusErr
	if errors.As(err, &se) {
		return err
	}
	return errInterrupted
}

// checkLogAfterCrashes checks that the crashes left the intake log one
// history: it holds exactly one leaf per upload, and the checkpoint of
// every receipt, signed by whichever server process was running then, is
// consistent with the final checkpoint. It returns how many distinct
// checkpoints were checked.
func checkLogAfterCrashes(t *testing.T, c *apiClient, all []*crashUpload) int {
	t.Helper()
	code, body, err := c.do("GET", "/v1/log/checkpoint", c.collect, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("checkpoint: %d %s %v", code, body, err)
	}
	final, err := intakelog.OpenCheckpoint(body, c.logKey)
	if err != nil {
		t.Fatal(err)
	}
	if final.Size != int64(len(all)) {
		t.Fatalf("the log has %d leaves for %d uploads", final.Size, len(all))
	}
	seen := map[int64]bool{}
	for _, u := range all {
		if u.err != nil {
			continue
		}
		r, err := receipt.Parse(u.rawReceipt)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := r.Verify(c.logKey)
		if err != nil {
			t.Fatal(err)
		}
		if seen[cp.Size] {
			continue
		}
		seen[cp.Size] = true
		code, body, err := c.do("GET", fmt.Sprintf("/v1/log/consistency?old=%d&new=%d", cp.Size, final.Size), c.collect, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("consistency %d..%d: %d %s %v", cp.Size, final.Size, code, body, err)
		}
		var p struct {
			Proof []string `json:"proof"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		proof, err := intakelog.DecodeProof(p.Proof)
		if err != nil {
			t.Fatal(err)
		}
		if err := intakelog.VerifyConsistency(cp, final, proof); err != nil {
			t.Fatalf("the checkpoint of size %d in receipt %s: %v", cp.Size, r.ID, err)
		}
	}
	return len(seen)
}

// checkStoreFile opens the stopped server's bbolt file and runs its
// consistency check ((*bbolt.Tx).Check over every page).
func checkStoreFile(t *testing.T, dataDir string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dataDir, "testimony.db"), store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open the store after SIGKILL: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("the store after SIGKILL: %v", err)
	}
}
