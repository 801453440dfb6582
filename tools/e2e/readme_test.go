//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeSection is the README section whose shell blocks TestReadme runs.
const readmeSection = "## A real deployment, step by step"

// readmePassphrase answers every passphrase prompt. The reviewer's CLI
// reads a passphrase from standard input when that is not a terminal, so
// the README's -passphrase lines run unchanged; each block gets several
// lines, and a block that asks for none reads none.
const readmePassphrase = "correct horse battery staple"

// shellBlocks returns the ```sh blocks of the markdown section that starts
// with the heading line section, up to the next "## " heading.
func shellBlocks(t *testing.T, markdown, section string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(markdown, "\n"+section+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", section)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var blocks []string
	for {
		_, after, ok := strings.Cut(rest, "\n```sh\n")
		if !ok {
			return blocks
		}
		block, next, ok := strings.Cut(after, "\n```\n")
		if !ok {
			t.Fatalf("unterminated ```sh block in %q:\n%s", section, after)
		}
		blocks = append(blocks, block+"\n")
		rest = "\n" + next
	}
}

// TestReadme runs the README's deployment walk-through exactly as written:
// every ```sh block of "A real deployment, step by step", in order, with
// bash, against the real binaries first on PATH. Only the machine-specific
// parts are replaced: the data directory, the listening address and the
// server's host name. Values (keys, the log key, the pin, tokens, the
// device key) move between blocks in the files the README's own commands
// write, as they would be carried between machines.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, string(readme), readmeSection)
	if len(blocks) < 8 {
		t.Fatalf("found %d ```sh blocks in %q, want at least one per step", len(blocks), readmeSection)
	}

	tmp := t.TempDir()
	work := filepath.Join(tmp, "work") // the directory every block runs in
	home := filepath.Join(tmp, "home")
	for _, d := range []string{work, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	subst := []struct{ old, new string }{
		{"/var/lib/testimony", filepath.Join(tmp, "data")},
		{"0.0.0.0:443", addr},
		{"intake.example.org", addr},
	}
	used := make([]bool, len(subst))
	for i, b := range blocks {
		for j, s := range subst {
			if strings.Contains(b, s.old) {
				used[j] = true
				b = strings.ReplaceAll(b, s.old, s.new)
			}
		}
		blocks[i] = b
	}
	for j, s := range subst {
		if !used[j] {
			t.Fatalf("no block mentions %q: update the substitutions to match README.md", s.old)
		}
	}

	// What the caseworker records, before step 6 submits it.
	interview := randomBytes(t, 300<<10)
	notes := []byte("2019년 겨울, 혜산 근처에서 있었던 일입니다.\n")
	writeFile(t, filepath.Join(work, "interview.m4a"), interview)
	writeFile(t, filepath.Join(work, "notes.txt"), notes)

	env := []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"TESTIMONY_HOME=" + filepath.Join(tmp, "testimony-home"),
		"TMPDIR=" + tmp,
	}
	command := func(i int) *exec.Cmd {
		script := writeFile(t, filepath.Join(tmp, fmt.Sprintf("block-%d.sh", i+1)), []byte(blocks[i]))
		// -e and pipefail stop a block at its first failing command, also
		// on the left of a pipe, as a person reading the output would.
		cmd := exec.Command("bash", "-e", "-u", "-o", "pipefail", script)
		cmd.Dir = work
		cmd.Env = env
		cmd.Stdin = strings.NewReader(strings.Repeat(readmePassphrase+"\n", 8))
		return cmd
	}

	served := false
	for i, block := range blocks {
		if strings.Contains(block, "testimony-server serve") {
			startReadmeServer(t, command(i), block)
			served = true
			continue
		}
		out, err := command(i).CombinedOutput()
		t.Logf("block %d:\n%s%s", i+1, block, out)
		if err != nil {
			t.Fatalf("README block %d failed: %v\n%s\n%s", i+1, err, block, out)
		}
	}
	if !served {
		t.Fatal("no README block runs testimony-server serve")
	}

	// The walk-through ends with the testimony opened, byte for byte, under
	// the registered caseworker's name.
	opened, err := filepath.Glob(filepath.Join(work, "testimony", "*", "interview.m4a"))
	if err != nil || len(opened) != 1 {
		t.Fatalf("opened interviews: %v %v; want exactly one", opened, err)
	}
	dir := filepath.Dir(opened[0])
	sameFile(t, opened[0], interview)
	sameFile(t, filepath.Join(dir, "notes.txt"), notes)
	custody, err := os.ReadFile(filepath.Join(dir, "custody.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{filepath.Base(dir), "field-laptop-3", "K-2026-117"} {
		if !bytes.Contains(custody, []byte(want)) {
			t.Errorf("custody.txt does not mention %q:\n%s", want, custody)
		}
	}
	// The token files were written under umask 077.
	for _, name := range []string{"laptop3.token", "collector.token"} {
		fi, err := os.Stat(filepath.Join(work, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	recipients, err := os.ReadFile(filepath.Join(work, "recipients.txt"))
	if err != nil || !strings.HasPrefix(string(recipients), "age1pq1") || strings.Count(string(recipients), "\n") != 1 {
		t.Errorf("recipients.txt = %q, %v; want the one reviewer's age1pq1 recipient", recipients, err)
	}
	if key, err := os.ReadFile(filepath.Join(work, "reviewer.key")); err != nil || bytes.Contains(key, []byte("AGE-SECRET-KEY")) {
		t.Errorf("reviewer.key is not passphrase-protected (%v)", err)
	}
}

// startReadmeServer runs the README's serve block in the background, as
// the operator leaves it running, and returns once the server prints that
// it listens. The block's process group is ended when the test ends.
func startReadmeServer(t *testing.T, cmd *exec.Cmd, block string) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// bash, the server and tee share the group started above.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		t.Logf("server block output:\n%s", out.String())
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "listening on https://") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("README serve block exited: %v\n%s\n%s", err, block, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("README serve block did not start listening:\n%s\n%s", block, out.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test
// reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
