package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCollectRefusesForeignDir: collect -o at a directory of other files
// (a USB stick's root with plaintext) is refused with a hint, and nothing
// is added to it.
func TestCollectRefusesForeignDir(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	file := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), []byte("testimony"))
	if _, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), file); code != 0 {
		t.Fatal(stderr)
	}
	usb := t.TempDir()
	writeFile(t, filepath.Join(usb, "interview-notes.txt"), []byte("plaintext"))
	col := newUser(t, d.collectTok)
	_, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", usb)
	if code != 1 || !strings.Contains(stderr, "testimony: error: bundle directory holds files that are not part of a bundle: "+usb+" has no bundle.json but holds interview-notes.txt") ||
		!strings.Contains(stderr, "testimony: hint: nothing was written; -o takes an empty or new directory (or one holding an earlier bundle of this log), e.g. -o "+filepath.Join(usb, "bundle-")) {
		t.Fatalf("collect into a directory of other files: exit %d\n%s", code, stderr)
	}
	entries, err := os.ReadDir(usb)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"interview-notes.txt"}) {
		t.Errorf("the directory now holds %v", names)
	}
	// The hint's directory works.
	if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-o", filepath.Join(usb, "bundle-1")); code != 0 {
		t.Fatalf("collect into a new directory: exit %d\n%s", code, stderr)
	}
}
