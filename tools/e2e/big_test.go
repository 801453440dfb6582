package e2e

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestBigFile is the long mode: it sends one file of TESTIMONY_E2E_BIG bytes
// (for example 2147483648) through submit, collect and open, checks the
// output byte for byte, and logs the wall time and peak resident memory of
// every process. It is opt-in because it takes minutes and gigabytes of disk.
func TestBigFile(t *testing.T) {
	sizeStr := os.Getenv("TESTIMONY_E2E_BIG")
	if sizeStr == "" {
		t.Skip("set TESTIMONY_E2E_BIG=<bytes> to run the big-file measurement")
	}
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if err != nil || size <= 0 {
		t.Fatalf("TESTIMONY_E2E_BIG=%q is not a positive byte count", sizeStr)
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "recording.bin")
	want := writePseudoRandom(t, src, size)

	step := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home, "TESTIMONY_REVIEW_HOME="+filepath.Join(e.dir, "review"))
		if name == "submit" {
			cmd.Env = append(cmd.Env, "TESTIMONY_TOKEN="+e.submitTok)
		} else if name == "collect" {
			cmd.Env = append(cmd.Env, "TESTIMONY_TOKEN="+e.collTok)
		}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		t.Logf("%-8s %8.1fs  peak RSS %6d MiB", name, time.Since(start).Seconds(), maxRSS(cmd)>>20)
	}
	out := filepath.Join(e.dir, "out")
	bundle := filepath.Join(e.dir, "bundle")
	step("submit", bin("testimony"), "submit", "-server", e.url(), "-ca", e.certFile(), src)
	step("collect", bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-o", bundle)
	e.server.Process.Signal(syscall.SIGTERM)
	e.server.Wait()
	t.Logf("server   peak RSS %6d MiB", maxRSS(e.server)>>20)
	e.server = nil
	step("open", bin("testimony-review"), "open", "-log-key", e.logKey, "-i", e.identity, "-o", out, bundle)

	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one opened submission in %s, got %v (%v)", out, entries, err)
	}
	got := hashFile(t, filepath.Join(out, entries[0].Name(), "recording.bin"))
	if got != want {
		t.Fatal("the opened file differs from the submitted one")
	}
}

func writePseudoRandom(t *testing.T, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func hashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
