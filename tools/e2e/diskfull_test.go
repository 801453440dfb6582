//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

// inUserNamespaceEnv is set when a test runs again inside a user and mount
// namespace of its own (see sizeLimitedDir).
const inUserNamespaceEnv = "TESTIMONY_E2E_IN_USERNS"

// diskFullMessage is the server's answer when its file system is full
// (server/errors.go, docs/api.md).
const diskFullMessage = "the server is out of storage space, so nothing of this request was stored; " +
	"what it acknowledged before is safe. Try again later: an upload resumes where it stopped"

// TestDiskFull runs the server binary with its data directory on a 64 MiB
// tmpfs and fills the file system during a chunked upload and a one-shot
// submission. Both are refused with 507 and a message that says what to
// do; the server keeps serving, earlier submissions stay intact, and once
// space returns the chunked upload resumes where it stopped and the
// one-shot submission goes through, without a restart. The bbolt file
// passes its consistency check at the end.
func TestDiskFull(t *testing.T) {
	mnt, ok := sizeLimitedDir(t, "TestDiskFull", 64<<20)
	if !ok {
		return
	}
	e := newEnv(t)
	c := newAPIClient(t, e)
	// Move the deployment onto the tmpfs.
	e.kill()
	data := filepath.Join(mnt, "data")
	if err := copyDataDir(e.data, data); err != nil {
		t.Fatal(err)
	}
	e.data = data
	e.start()

	want := map[string]string{}
	for i, size := range []int{10 << 10, 100 << 10, 2*apiChunkSize + 1} {
		file := c.encrypt(t, size, uint64(i))
		r, err := c.chunked(file)
		if err != nil {
			t.Fatal(err)
		}
		want[r.ID] = hexSHA256(file)
	}

	big := c.encrypt(t, 12*apiChunkSize, 100)
	id, err := c.create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the file system, leaving 2 MiB: less than the upload needs.
	ballast := filepath.Join(mnt, "ballast")
	fillFileSystem(t, ballast, 2<<20)

	acked := map[int]bool{}
	refused := -1
	for i := range apiChunks(len(big)) {
		code, body, err := c.putChunk(id, i, chunkAt(big, i))
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusNoContent {
			acked[i] = true
			continue
		}
		expectError(t, fmt.Sprintf("chunk %d on a full disk", i), code, body, http.StatusInsufficientStorage, diskFullMessage)
		refused = i
		break
	}
	if refused < 0 {
		t.Fatal("all 12 chunks were stored on a file system with 2 MiB free")
	}
	small := c.encrypt(t, 3*apiChunkSize, 101)
	code, body, err := c.do("POST", "/v1/submissions", c.submit, small)
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, "one-shot submission on a full disk", code, body, http.StatusInsufficientStorage, diskFullMessage)
	code, body, err = c.do("POST", "/v1/uploads/"+id+"/finish", c.submit, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("finish with chunks refused for lack of space: %d %s", code, body)
	}

	// Reading needs no space: the server still serves what it has.
	if code, body, err := c.do("GET", "/v1/health", "", nil); err != nil || code != 200 {
		t.Fatalf("health on a full disk: %d %s %v", code, body, err)
	}
	c.checkDownloads(t, want)
	code, body, err = c.do("GET", "/v1/uploads/"+id, c.submit, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("upload state on a full disk: %d %s %v", code, body, err)
	}
	var st uploadState
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Missing {
		if acked[m] {
			t.Fatalf("acknowledged chunk %d is missing", m)
		}
	}
	if len(st.Missing) != apiChunks(len(big))-len(acked) {
		t.Fatalf("missing %v after %d chunks were acknowledged", st.Missing, len(acked))
	}

	// Space returns; the same server process carries on.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Missing {
		if code, body, err := c.putChunk(id, m, chunkAt(big, m)); err != nil || code != http.StatusNoContent {
			t.Fatalf("chunk %d after space returned: %d %s %v", m, code, body, err)
		}
	}
	// Finishing commits the submission and its log leaf in one
	// transaction, which a full disk fails whole or not at all: bbolt may
	// still find free pages inside its file.
	fillFileSystem(t, ballast, 0)
	code, body, err = c.do("POST", "/v1/uploads/"+id+"/finish", c.submit, nil)
	if err != nil {
		t.Fatal(err)
	}
	finishRefused := code == http.StatusInsufficientStorage
	if finishRefused {
		expectError(t, "finish on a full disk", code, body, http.StatusInsufficientStorage, diskFullMessage)
		if code, body, err := c.do("GET", "/v1/uploads/"+id, c.submit, nil); err != nil || code != 200 || !strings.Contains(string(body), `"state":"open","missing":[]`) && !strings.Contains(string(body), `"missing":[],"state":"open"`) {
			t.Fatalf("upload state after a refused finish: %d %s %v", code, body, err)
		}
		if subs, err := c.list(); err != nil || len(subs) != len(want) {
			t.Fatalf("%d submissions after a refused finish, want %d (%v)", len(subs), len(want), err)
		}
		if err := os.Remove(ballast); err != nil {
			t.Fatal(err)
		}
		code, body, err = c.do("POST", "/v1/uploads/"+id+"/finish", c.submit, nil)
	} else if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err != nil || code != http.StatusCreated {
		t.Fatalf("finish after space returned: %d %s %v", code, body, err)
	}
	r, err := c.checkReceipt(body, big)
	if err != nil {
		t.Fatal(err)
	}
	want[r.ID] = hexSHA256(big)
	r, err = c.oneShot(small)
	if err != nil {
		t.Fatalf("one-shot submission after space returned: %v", err)
	}
	want[r.ID] = hexSHA256(small)
	c.checkDownloads(t, want)
	subs, err := c.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != len(want) {
		t.Fatalf("%d submissions listed, want %d", len(subs), len(want))
	}
	e.kill()
	checkStoreFile(t, e.data)
	// The operator learns the cause from the log; the client did not.
	if out := e.allOut.String(); !strings.Contains(out, "no space left on device") || !strings.Contains(out, "status=507") {
		t.Errorf("the server's log does not name the full disk:\n%s", out)
	}
	t.Logf("disk full: chunk %d of 12 refused with 507 after %d stored; one-shot refused; finish on a full disk refused: %v; all completed once space returned",
		refused, len(acked), finishRefused)
}

func expectError(t *testing.T, what string, code int, body []byte, wantCode int, wantMsg string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if code != wantCode || json.Unmarshal(body, &e) != nil || e.Error != wantMsg {
		t.Fatalf("%s: %d %s, want %d {\"error\": %q}", what, code, body, wantCode, wantMsg)
	}
}

// sizeLimitedDir returns a directory on a new tmpfs of size bytes, and
// true. Mounting needs privilege: as root the tmpfs is mounted directly;
// otherwise the test named name runs again in a user and mount namespace
// of its own, where mounting a tmpfs needs none, and sizeLimitedDir returns
// false after reporting that run's outcome. Where neither works the test
// is skipped, except in CI (CI set), where it fails.
func sizeLimitedDir(t *testing.T, name string, size int64) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if err == nil {
		t.Cleanup(func() {
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
		return dir, true
	}
	if os.Getenv(inUserNamespaceEnv) != "" {
		t.Fatalf("cannot mount a tmpfs inside a user namespace: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inUserNamespaceEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if startErr := cmd.Start(); startErr != nil {
		msg := fmt.Sprintf("a size-limited file system needs root (mount: %v) or unprivileged user namespaces (%v)", err, startErr)
		testenv.SkipOrFail(t, "%s", msg)
	}
	runErr := cmd.Wait()
	t.Logf("ran in a user namespace:\n%s", out.String())
	if runErr != nil {
		t.Fatalf("%s failed in its user namespace: %v", name, runErr)
	}
	if !strings.Contains(out.String(), "--- PASS: "+name) {
		t.Fatalf("%s did not pass in its user namespace", name)
	}
	return "", false
}

// fillFileSystem writes path until the file system is full, then gives
// back room bytes.
func fillFileSystem(t *testing.T, path string, room int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Write(block)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n < room {
		t.Fatalf("only %d bytes were free", n)
	}
	if err := f.Truncate(n - room); err != nil {
		t.Fatal(err)
	}
}

// copyDataDir copies a stopped server's data directory, keeping modes and
// leaving out the socket.
func copyDataDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, fi.Mode().Perm())
		case !d.Type().IsRegular():
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
