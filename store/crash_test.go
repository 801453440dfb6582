//go:build unix

package store

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashEnv names the database file a child process of TestKillDurability
// writes to; its presence is what makes TestKillDurabilityChild run.
const crashEnv = "TESTIMONY_STORE_CRASH_DB"

// TestKillDurabilityChild is not a test on its own: TestKillDurability runs
// the test binary again with only this test selected and crashEnv set. It
// writes submissions until it is killed, and prints a line to stdout after
// each write returns, so the parent knows what was acknowledged:
//
//	chunk <id> <index> <sha256>       PutChunk returned nil
//	committed <id> <size> <sha256> <index>    FinishUpload returned nil
func TestKillDurabilityChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestKillDurability")
	}
	db, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// Remove whatever an earlier killed child left half done, including
	// chunks of a delete that was cut short.
	if _, err := db.ExpireUploads(time.Now().Add(time.Hour)); err != nil {
		fail(err)
	}
	// Stop eventually even if the parent never kills us; the parent treats
	// a normal exit as a failure.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		id := newID(t)
		size := mrand.IntN(4*ChunkSize) + 1
		declared := int64(size)
		if mrand.IntN(2) == 0 {
			declared = -1
		}
		if err := db.CreateUpload(Upload{ID: id, Size: declared, Created: time.Now(), Expires: time.Now().Add(time.Minute)}); err != nil {
			fail(err)
		}
		data := make([]byte, size)
		rand.Read(data)
		n := int(chunkCount(int64(size)))
		abandon := mrand.IntN(5) == 0
		for _, i := range mrand.Perm(n) {
			chunk := data[i*ChunkSize : min(size, (i+1)*ChunkSize)]
			if err := db.PutChunk(id, i, chunk); err != nil {
				fail(err)
			}
			sum := sha256.Sum256(chunk)
			fmt.Printf("chunk %s %d %x\n", id, i, sum)
		}
		if abandon {
			if err := db.DeleteUpload(id); err != nil {
				fail(err)
			}
			continue
		}
		sum := sha256.Sum256(data)
		s := Submission{ID: id, Size: int64(size), SHA256: hex.EncodeToString(sum[:]), Chunks: n, Received: time.Now()}
		index, err := db.FinishUpload(id, s, crashLeaf(id))
		if err != nil {
			fail(err)
		}
		fmt.Printf("committed %s %d %x %d\n", id, size, sum, index)
	}
	db.Close()
}

// crashLeaf is the log leaf the child writes for a submission.
func crashLeaf(id string) []byte { return []byte("leaf " + id) }

type ackedSubmission struct {
	size  int64
	sum   string
	index int64
}

// TestKillDurability checks invariant 8 of the design: whatever the store
// acknowledged survives kill -9. A child process writes submissions; the
// parent kills it with SIGKILL at a random moment, reopens the file and
// checks every acknowledged submission and chunk, then lets a new child
// continue on the same file.
func TestKillDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	committed := map[string]ackedSubmission{}
	chunks := map[string]map[int]string{} // id -> index -> sha256 of acknowledged chunks
	const rounds = 6
	for round := range rounds {
		lines := runAndKill(t, path)
		n := 0
		for _, line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) == 5 && f[0] == "committed":
				size, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					t.Fatalf("bad line from child: %q", line)
				}
				index, err := strconv.ParseInt(f[4], 10, 64)
				if err != nil {
					t.Fatalf("bad line from child: %q", line)
				}
				committed[f[1]] = ackedSubmission{size, f[3], index}
				n++
			case len(f) == 4 && f[0] == "chunk":
				i, err := strconv.Atoi(f[2])
				if err != nil {
					t.Fatalf("bad line from child: %q", line)
				}
				if chunks[f[1]] == nil {
					chunks[f[1]] = map[int]string{}
				}
				chunks[f[1]][i] = f[3]
			default:
				t.Fatalf("unexpected line from child: %q", line)
			}
		}
		t.Logf("round %d: %d submissions acknowledged before the kill, %d in total", round, n, len(committed))
		verifyAfterCrash(t, path, committed, chunks)
	}
}

// runAndKill starts a child writer on path, kills it with SIGKILL at a
// random moment after its first acknowledged submission, and returns every
// line it printed.
func runAndKill(t *testing.T, path string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDurabilityChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lineCh := make(chan string)
	go func() {
		defer close(lineCh)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lineCh <- sc.Text()
		}
	}()

	var lines []string
	var kill <-chan time.Time
	timeout := time.After(2 * time.Minute)
	for lineCh != nil {
		select {
		case line, ok := <-lineCh:
			if !ok {
				lineCh = nil
				break
			}
			lines = append(lines, line)
			if kill == nil && strings.HasPrefix(line, "committed ") {
				kill = time.After(time.Duration(mrand.Int64N(int64(400 * time.Millisecond))))
			}
		case <-kill:
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			kill = nil
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("child acknowledged no submission within 2 minutes; stderr:\n%s", stderr.String())
		}
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child was not killed: %v; stderr:\n%s", err, stderr.String())
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child exited by itself (%v) instead of being killed; stderr:\n%s", err, stderr.String())
	}
	return lines
}

// verifyAfterCrash reopens path and checks the file's consistency, every
// acknowledged submission's size, hash and log index, every acknowledged
// chunk of an upload whose record is still there, and that the intake log
// holds exactly one leaf per submission, with stored hashes that match a
// tree rebuilt from the leaves alone.
func verifyAfterCrash(t *testing.T, path string, committed map[string]ackedSubmission, chunks map[string]map[int]string) {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	for id, want := range committed {
		s, err := db.Submission(id)
		if err != nil {
			t.Fatalf("acknowledged submission %s lost: %v", id, err)
		}
		if s.Size != want.size || s.SHA256 != want.sum || s.Index != want.index {
			t.Fatalf("submission %s record = %d bytes %s index %d, want %d bytes %s index %d", id, s.Size, s.SHA256, s.Index, want.size, want.sum, want.index)
		}
		r, err := db.NewReader(id)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		r.Close()
		if err != nil {
			t.Fatalf("reading submission %s: %v", id, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != want.size || got != want.sum {
			t.Fatalf("submission %s reads back %d bytes %s, want %d bytes %s", id, n, got, want.size, want.sum)
		}
	}
	for id, acked := range chunks {
		if _, err := db.Upload(id); err != nil {
			continue // finished, deleted or expired since: checked above or gone on purpose
		}
		for i, want := range acked {
			data, err := db.ReadChunk(id, i)
			if err != nil {
				t.Fatalf("acknowledged chunk %d of open upload %s lost: %v", i, id, err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != want {
				t.Fatalf("chunk %d of open upload %s changed", i, id)
			}
		}
	}
	list, err := db.Submissions(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < len(committed) {
		t.Fatalf("Submissions lists %d, fewer than the %d acknowledged", len(list), len(committed))
	}

	// The log and the submissions were committed together: one leaf per
	// submission, in index order, and nothing else.
	n := checkLog(t, db)
	if n != int64(len(list)) {
		t.Fatalf("LogSize = %d after the crash, but %d submissions are stored", n, len(list))
	}
	_, leaves, _ := recomputeLog(t, db)
	for i, s := range list {
		if s.Index != int64(i) {
			t.Fatalf("submission %s has log index %d, want %d (indexes must be 0..n-1 without gaps)", s.ID, s.Index, i)
		}
		if !bytes.Equal(leaves[i], crashLeaf(s.ID)) {
			t.Fatalf("log leaf %d is %q, want the leaf of submission %s", i, leaves[i], s.ID)
		}
	}
}
