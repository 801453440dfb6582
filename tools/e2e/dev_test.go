package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevCommands runs the README's first set-up command, testimony-dev,
// and then, in a shell, exactly the commands it tells a newcomer to copy
// (with "go run ./tools/…" pointing at the binaries built for these tests):
// submit a file, collect, open. The opened file must equal the submitted
// one.
func TestDevCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, setUp, _ := strings.Cut(string(readme), "\n## Set up\n")
	_, block, _ := strings.Cut(setUp, "```sh\n")
	if first, _, _ := strings.Cut(block, "\n"); first != "go run ./server/cmd/testimony-dev" {
		t.Fatalf("the README's first set-up command is %q, not go run ./server/cmd/testimony-dev, which this test runs", first)
	}
	addr := freeAddr(t)
	dev := exec.Command(bin("testimony-dev"), "-addr", addr)
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	dev.Stderr = &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	t.Cleanup(func() {
		dev.Process.Signal(syscall.SIGTERM)
		dev.Wait()
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	})

	// Read what dev prints until the last command, then keep draining.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed []string
	var commands []string
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited early:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, line)
			done = strings.HasPrefix(line, "Stop with Ctrl-C")
			if rest, ok := strings.CutPrefix(line, "data directory: "); ok {
				dirs = append(dirs, rest)
			}
			if rest, ok := strings.CutPrefix(line, "demo keys and tokens (outside the data directory): "); ok {
				dirs = append(dirs, rest)
			}
			if strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != "" {
				commands = append(commands, strings.TrimSpace(line))
			}
		case <-timeout:
			t.Fatalf("dev printed no commands in time:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	if len(commands) < 5 {
		t.Fatalf("dev printed %d commands, want the export, init, submit, collect and open lines:\n%s", len(commands), strings.Join(printed, "\n"))
	}

	work := t.TempDir()
	content := []byte("증언 — testimony typed by a newcomer\n")
	writeFile(t, filepath.Join(work, "FILE"), content)
	replacer := strings.NewReplacer(
		"go run ./tools/testimony-review ", bin("testimony-review")+" ",
		"go run ./tools/testimony ", bin("testimony")+" ",
	)
	script := "set -e\n" + replacer.Replace(strings.Join(commands, "\n")) + "\n"
	sh := exec.Command("bash", "-c", script)
	sh.Dir = work
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		t.Fatalf("the commands dev printed failed: %v\n%s\n%s", err, script, out.String())
	}
	opened, err := filepath.Glob(filepath.Join(work, "out", "*", "FILE"))
	if err != nil || len(opened) != 1 {
		t.Fatalf("want one opened FILE under out/, got %v (%v)\n%s", opened, err, out.String())
	}
	got, err := os.ReadFile(opened[0])
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("opened FILE differs from the submitted one (%v)", err)
	}
	for _, env := range []string{"TESTIMONY_HOME", "TESTIMONY_REVIEW_HOME"} {
		if !strings.Contains(commands[0], env+"=") {
			t.Errorf("dev should keep the demo's state apart with %s:\n%s", env, commands[0])
		}
	}
}
