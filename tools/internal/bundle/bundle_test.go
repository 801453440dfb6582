package bundle

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	testID  = "0123456789abcdef0123456789abcdef"
	testSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestParseTestdata(t *testing.T) {
	for name, wantOK := range map[string]bool{
		"valid.json":          true,
		"empty.json":          true,
		"duplicate-key.json":  false,
		"path-traversal.json": false,
	} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(data)
		if (err == nil) != wantOK {
			t.Errorf("%s: Parse error = %v, want ok=%v", name, err, wantOK)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v does not wrap ErrInvalid", name, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	entry := `{"id":"` + testID + `","size":5,"sha256":"` + testSum + `","file":"` + testID + `.age","receipt":"` + testID + `.receipt.json"}`
	doc := func(fields string) string {
		return `{"version":1,"created":"2026-11-27T10:00:00Z","receipt_key":"` + testKey + `",` + fields + `}`
	}
	tests := []struct {
		name, in, want string
	}{
		{"ok", doc(`"submissions":[` + entry + `]`), ""},
		{"missing submissions", `{"version":1,"created":"2026-11-27T10:00:00Z","receipt_key":"` + testKey + `"}`, "missing submissions"},
		{"null submissions", doc(`"submissions":null`), "missing submissions"},
		{"version 2", strings.Replace(doc(`"submissions":[]`), `"version":1`, `"version":2`, 1), "unsupported version"},
		{"unknown field", doc(`"submissions":[],"server":"x"`), "unknown field"},
		{"case folded field", doc(`"Submissions":[]`), "unknown field"},
		{"unknown entry field", doc(`"submissions":[` + strings.Replace(entry, `"size"`, `"bytes"`, 1) + `]`), "unknown field"},
		{"duplicate entry field", doc(`"submissions":[` + strings.Replace(entry, `{`, `{"size":7,`, 1) + `]`), "duplicate field"},
		{"duplicate id", doc(`"submissions":[` + entry + `,` + entry + `]`), "listed twice"},
		{"uppercase id", doc(`"submissions":[` + strings.ReplaceAll(entry, testID, strings.ToUpper(testID)) + `]`), "not 32 lowercase hex"},
		{"short hash", doc(`"submissions":[` + strings.Replace(entry, testSum, testSum[:10], 1) + `]`), "sha256"},
		{"zero size", doc(`"submissions":[` + strings.Replace(entry, `"size":5`, `"size":0`, 1) + `]`), "not positive"},
		{"wrong receipt name", doc(`"submissions":[` + strings.Replace(entry, `.receipt.json`, `.json`, 1) + `]`), "receipt"},
		{"bad key", strings.Replace(doc(`"submissions":[]`), testKey, "AAAA", 1), "receipt_key"},
		{"local time", strings.Replace(doc(`"submissions":[]`), "10:00:00Z", "10:00:00+01:00", 1), "created"},
		{"nested", doc(`"submissions":[[` + entry + `]]`), "nested too deeply"},
		{"trailing", doc(`"submissions":[]`) + `{}`, "trailing data"},
		{"object where number", doc(`"submissions":[]`)[:1] + `"version":{},` + doc(`"submissions":[]`)[1:], "unexpected JSON object"},
		{"not json", `{"version":`, "malformed JSON"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	data := make([]byte, MaxSize+1)
	if _, err := Parse(data); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse of %d bytes: %v, want ErrInvalid", len(data), err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of empty dir: %v, want fs.ErrNotExist", err)
	}
	b := New(testKey, time.Date(2026, 11, 27, 11, 0, 0, 5, time.FixedZone("x", 3600)))
	if b.Created != "2026-11-27T10:00:00Z" {
		t.Errorf("Created = %q, want UTC seconds", b.Created)
	}
	b.Add(NewEntry(testID, 10, testSum))
	b.Add(NewEntry(testID, 11, testSum)) // replaces, never duplicates
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Submissions) != 1 || got.Submissions[0].Size != 11 {
		t.Fatalf("read back %+v", got.Submissions)
	}
	if e, ok := got.Lookup(testID); !ok || e.File != testID+".age" {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Errorf("directory holds %v, want only %s (no temp files left)", entries, FileName)
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	b := New(testKey, time.Now())
	b.Add(Entry{ID: testID, Size: 1, SHA256: testSum, File: "../x.age", Receipt: testID + ".receipt.json"})
	if err := b.Write(dir); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Write: %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("invalid bundle was written: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		testID:                             true,
		strings.ToUpper(testID):            false,
		testID[:31]:                        false,
		testID + "0":                       false,
		"../" + testID[3:]:                 false,
		"0123456789abcdef0123456789abcdeg": false,
	} {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever Parse accepts must survive a round trip unchanged.
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed bundle: %v", err)
		}
		b2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of re-encoded bundle: %v", err)
		}
		out2, err := b2.Marshal()
		if err != nil || string(out) != string(out2) {
			t.Fatalf("round trip changed the bundle")
		}
	})
}

// TestNoNetworking guards the reviewer's promise: the air-gapped binary
// links this package, so it must not pull in any networking package.
func TestNoNetworking(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not available")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net" || strings.HasPrefix(pkg, "net/") || pkg == "crypto/tls" {
			t.Errorf("bundle depends on %s", pkg)
		}
	}
}
