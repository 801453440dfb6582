//go:build unix

package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
)

// Environment of a child process of TestCrashBetweenCommitAndCheckpoint:
// the data directory, a submit token, and the log index after whose commit
// the child kills itself.
const (
	commitCrashDirEnv   = "TESTIMONY_SERVER_TEST_COMMIT_CRASH_DIR"
	commitCrashTokenEnv = "TESTIMONY_SERVER_TEST_COMMIT_CRASH_TOKEN"
	commitCrashIndexEnv = "TESTIMONY_SERVER_TEST_COMMIT_CRASH_INDEX"
)

// init turns the test binary into a crash child when the environment says
// so; it runs before TestMain and needs none of the testing flags.
func init() {
	if dir := os.Getenv(commitCrashDirEnv); dir != "" {
		os.Exit(commitCrashChild(dir))
	}
}

// commitCrashChild submits one-shot submissions to a server on dir, in
// process, and prints "ack <receipt JSON>" for every 201. When the
// submission with log index killAt has been committed, before its
// checkpoint is signed or any answer is sent, it kills itself with SIGKILL.
func commitCrashChild(dir string) int {
	killAt, err := strconv.ParseInt(os.Getenv(commitCrashIndexEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	db, err := openStore(dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv, err := New(Config{DB: db})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv.testHookCommitted = func(index int64) {
		if index == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	rs, err := srv.dep.Load().recipients.AgeRecipients()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	h := srv.Handler()
	for i := range 1000 {
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, rs...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintf(w, "testimony %d", i)
		w.Close()
		r := httptest.NewRequest("POST", "/v1/submissions", &buf)
		r.Header.Set("Authorization", "Bearer "+os.Getenv(commitCrashTokenEnv))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			fmt.Fprintf(os.Stderr, "submission %d: %d %s\n", i, rec.Code, rec.Body.String())
			return 3
		}
		fmt.Printf("ack %s", rec.Body.String())
	}
	fmt.Fprintln(os.Stderr, "never reached the index to crash at")
	return 4
}

// TestCrashBetweenCommitAndCheckpoint kills the server after a submission
// is committed (with its log leaf) but before any checkpoint covering it is
// signed or the client is answered. After a restart the newest checkpoint
// covers every committed leaf, the unanswered submission included, every
// inclusion proof verifies, and every receipt handed out before the crash
// is consistent with it.
func TestCrashBetweenCommitAndCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	dir, _ := initDir(t)
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := createToken(db, RoleSubmit, "laptop", testNow)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	var acked []*receipt.Receipt
	killAt := int64(0)
	for round := range 3 {
		killAt += int64(round + 2) // 2, 5, 9: some acknowledged submissions each round
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), commitCrashDirEnv+"="+dir, commitCrashTokenEnv+"="+token,
			commitCrashIndexEnv+"="+strconv.FormatInt(killAt, 10))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || !exitErr.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("round %d: child was not killed: %v\n%s", round, err, stderr.String())
		}
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, receipt.MaxSize+16)
		for sc.Scan() {
			body, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				t.Fatalf("unexpected line from child: %q", sc.Text())
			}
			rc, err := receipt.Parse([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, rc)
		}
		// Every round's last submission was committed but never answered.
		if wantAcked := killAt - int64(round); int64(len(acked)) != wantAcked {
			t.Fatalf("round %d: %d receipts in all, want %d", round, len(acked), wantAcked)
		}
		checkLogAfterCrash(t, dir, acked, killAt+1)
	}
}

// checkLogAfterCrash opens dir as a restarted server would and checks its
// log: want leaves, a checkpoint covering them, proofs, and consistency
// with every receipt in acked.
func checkLogAfterCrash(t *testing.T, dir string, acked []*receipt.Receipt, want int64) {
	t.Helper()
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: db, srv: srv, h: srv.Handler()}
	for role, tok := range map[string]*string{RoleSubmit: &e.submit, RoleCollect: &e.collect} {
		if *tok, _, err = createToken(db, role, role+"-check-"+strconv.FormatInt(want, 10), testNow); err != nil {
			t.Fatal(err)
		}
	}

	cp, _ := e.checkpoint()
	subs, err := db.Submissions(false)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != want || int64(len(subs)) != want {
		t.Fatalf("after the crash: checkpoint size %d, %d submissions; want %d (the last one committed but never answered)", cp.Size, len(subs), want)
	}
	leaves := e.getLeaves(0, cp.Size)
	for i, l := range leaves {
		sub := subs[i]
		leaf := intakelog.Leaf{ID: l.ID, SHA256: l.SHA256, Size: l.Size, Date: l.Date}
		if sub.Index != int64(i) || leaf != leafOf(sub) {
			t.Fatalf("leaf %d = %+v, but submission %+v", i, leaf, sub)
		}
		proof := e.getProof(fmt.Sprintf("/v1/log/inclusion?index=%d&size=%d", i, cp.Size))
		if err := intakelog.VerifyInclusion(cp, int64(i), leaf, proof); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	for _, rc := range acked {
		old, err := rc.Verify(e.logKey())
		if err != nil {
			t.Fatal(err)
		}
		proof := e.getProof(fmt.Sprintf("/v1/log/consistency?old=%d&new=%d", old.Size, cp.Size))
		if err := intakelog.VerifyConsistency(old, cp, proof); err != nil {
			t.Fatalf("receipt %s (index %d): %v", rc.ID, rc.Index, err)
		}
	}
	// The unanswered submission's receipt is there for the asking.
	last := subs[want-1]
	w := e.do(req{method: "GET", path: "/v1/uploads/" + last.ID, token: e.submit})
	expect(t, w, http.StatusOK, `"state":"complete"`)
}
