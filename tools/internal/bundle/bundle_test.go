package bundle

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

const (
	testKey  = "testimony-log-0a1b2c3d+5055fc05+AWsok8LKTTjOAzYDPNBLH+v8Co3g3WSKJIAq+/NugsD9"
	testID   = "0123456789abcdef0123456789abcdef"
	testSum  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	testHash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	testNote = "testimony-log-0a1b2c3d\n1\n" + testHash + "\n\n— testimony-log-0a1b2c3d UFX8BWnFb8Cnc6Yhw3d3cWDCf2uDVkK+koIxeLVbTZx7FKRDnC4njbIeX2L6pJuT8EGrYGFTgdJyyvpVjzV+Be9mTw4=\n"
)

func TestParseTestdata(t *testing.T) {
	for name, wantOK := range map[string]bool{
		"valid.json":          true,
		"first.json":          true,
		"empty.json":          true,
		"duplicate-key.json":  false,
		"path-traversal.json": false,
		"nested-proof.json":   false,
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

func TestParseValidFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if b.FromSize != 2 || !strings.Contains(b.FromCheckpoint, "\n2\n") || !strings.Contains(b.Checkpoint, "\n5\n") {
		t.Errorf("checkpoints not read: from %d %q, to %q", b.FromSize, b.FromCheckpoint, b.Checkpoint)
	}
	if len(b.Leaves) != 3 || b.Leaves[1].Index != 3 || len(b.Leaves[1].Proof) != 2 || b.Leaves[1].Date != "2026-11-27" {
		t.Errorf("leaves not read: %+v", b.Leaves)
	}
	if e, ok := b.Lookup("00000000000000000000000000000001"); !ok || e.Index != 4 || e.File != e.ID+".age" {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
	if _, ok := b.Lookup("fedcba9876543210fedcba9876543210"); ok {
		t.Error("Lookup found a leaf that has no submission entry")
	}
}

// doc builds a bundle.json from a minimal valid document in which one field
// is replaced by raw JSON (or removed, if raw is "").
func doc(field, raw string) string {
	fields := []struct{ k, v string }{
		{"version", `2`},
		{"created", `"2026-11-27T10:00:00Z"`},
		{"log_key", `"` + testKey + `"`},
		{"from_size", `1`},
		{"from_checkpoint", jsonString(testNote)},
		{"checkpoint", jsonString(strings.Replace(testNote, "\n1\n", "\n2\n", 1))},
		{"consistency", `["` + testHash + `"]`},
		{"leaves", `[` + leafJSON + `]`},
		{"submissions", `[` + entryJSON + `]`},
	}
	var parts []string
	for _, f := range fields {
		v := f.v
		if f.k == field {
			if raw == "" {
				continue
			}
			v = raw
		}
		parts = append(parts, `"`+f.k+`":`+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func jsonString(s string) string {
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

const (
	leafJSON  = `{"index":1,"id":"` + testID + `","sha256":"` + testSum + `","size":5,"date":"2026-11-27","proof":["` + testHash + `"]}`
	entryJSON = `{"id":"` + testID + `","size":5,"sha256":"` + testSum + `","file":"` + testID + `.age","index":1}`
)

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ok", doc("", ""), ""},
		{"ok first bundle", strings.Replace(doc("from_checkpoint", `""`), `"from_size":1`, `"from_size":0`, 1), ""},
		{"missing submissions", doc("submissions", ""), "missing submissions"},
		{"null submissions", doc("submissions", `null`), "missing submissions"},
		{"missing leaves", doc("leaves", ""), "missing leaves"},
		{"missing consistency", doc("consistency", ""), "missing consistency"},
		{"version 1", doc("version", `1`), "unsupported version"},
		{"unknown field", doc("", "")[:1] + `"server":"x",` + doc("", "")[1:], "unknown field"},
		{"v1 receipt_key", doc("log_key", "")[:1] + `"receipt_key":"x",` + doc("log_key", "")[1:], "unknown field"},
		{"case folded field", strings.Replace(doc("", ""), `"leaves"`, `"Leaves"`, 1), "unknown field"},
		{"unknown entry field", doc("submissions", `[`+strings.Replace(entryJSON, `"size"`, `"bytes"`, 1)+`]`), "unknown field"},
		{"v1 entry receipt", doc("submissions", `[`+strings.Replace(entryJSON, `{`, `{"receipt":"x",`, 1)+`]`), "unknown field"},
		{"duplicate entry field", doc("submissions", `[`+strings.Replace(entryJSON, `{`, `{"size":7,`, 1)+`]`), "duplicate field"},
		{"duplicate leaf field", doc("leaves", `[`+strings.Replace(leafJSON, `{`, `{"index":7,`, 1)+`]`), "duplicate field"},
		{"duplicate id", doc("submissions", `[`+entryJSON+`,`+entryJSON+`]`), "listed twice"},
		{"duplicate leaf id", doc("leaves", `[`+leafJSON+`,`+strings.Replace(leafJSON, `"index":1`, `"index":2`, 1)+`]`), "leaves 1 and 2 both have id " + testID},
		{"uppercase id", doc("submissions", `[`+strings.ReplaceAll(entryJSON, testID, strings.ToUpper(testID))+`]`), "not 32 lowercase hex"},
		{"uppercase leaf id", doc("leaves", `[`+strings.Replace(leafJSON, testID, strings.ToUpper(testID), 1)+`]`), "not 32 lowercase hex"},
		{"short hash", doc("submissions", `[`+strings.Replace(entryJSON, testSum, testSum[:10], 1)+`]`), "sha256"},
		{"short leaf hash", doc("leaves", `[`+strings.Replace(leafJSON, testSum, testSum[:10], 1)+`]`), "sha256"},
		{"zero size", doc("submissions", `[`+strings.Replace(entryJSON, `"size":5`, `"size":0`, 1)+`]`), "not positive"},
		{"zero leaf size", doc("leaves", `[`+strings.Replace(leafJSON, `"size":5`, `"size":0`, 1)+`]`), "not positive"},
		{"negative index", doc("submissions", `[`+strings.Replace(entryJSON, `"index":1`, `"index":-1`, 1)+`]`), "negative"},
		{"negative leaf index", doc("leaves", `[`+strings.Replace(leafJSON, `"index":1`, `"index":-1`, 1)+`]`), "negative"},
		{"leaf time of day", doc("leaves", `[`+strings.Replace(leafJSON, `2026-11-27`, `2026-11-27T10:00:00Z`, 1)+`]`), "date"},
		{"leaf bad date", doc("leaves", `[`+strings.Replace(leafJSON, `2026-11-27`, `2026-02-30`, 1)+`]`), "date"},
		{"leaf missing proof", doc("leaves", `[`+strings.Replace(leafJSON, `,"proof":["`+testHash+`"]`, ``, 1)+`]`), "missing proof"},
		{"leaf short proof hash", doc("leaves", `[`+strings.Replace(leafJSON, testHash, "AAAA", 1)+`]`), "not a base64 SHA-256 hash"},
		{"leaf long proof", doc("leaves", `[`+strings.Replace(leafJSON, `["`+testHash+`"]`, `[`+strings.Repeat(`"`+testHash+`",`, MaxProof)+`"`+testHash+`"]`, 1)+`]`), "more than 64 proof hashes"},
		{"consistency url base64", doc("consistency", `["`+strings.Repeat("_", 43)+`="]`), "not a base64 SHA-256 hash"},
		{"consistency non canonical", doc("consistency", `["`+strings.Repeat("A", 42)+`B="]`), "not a base64 SHA-256 hash"},
		{"wrong file name", doc("submissions", `[`+strings.Replace(entryJSON, `.age"`, `.age.txt"`, 1)+`]`), "file"},
		{"bad key", doc("log_key", `"AAAA"`), "log_key"},
		{"private key as log key", doc("log_key", `"PRIVATE+KEY+testimony-log-0a1b2c3d+5055fc05+AUXFrl7KddTXFVlKoYMR/TsRF7hWMFeIyhG9+lmArx63"`), "log_key"},
		{"from size negative", doc("from_size", `-1`), "negative"},
		{"from checkpoint missing", doc("from_checkpoint", `""`), "from_checkpoint is empty"},
		{"from checkpoint with zero size", doc("from_size", `0`), "from_checkpoint must be empty"},
		{"checkpoint empty", doc("checkpoint", `""`), "checkpoint is empty"},
		{"checkpoint no newline", doc("checkpoint", `"abc"`), "not a signed note"},
		{"checkpoint too large", doc("checkpoint", `"`+strings.Repeat("a", MaxNoteSize)+`\n"`), "larger than"},
		{"local time", doc("created", `"2026-11-27T10:00:00+01:00"`), "created"},
		{"nested", doc("submissions", `[[`+entryJSON+`]]`), "unexpected JSON array"},
		{"object as proof", doc("consistency", `{}`), "unexpected JSON object"},
		{"array as id", doc("submissions", `[`+strings.Replace(entryJSON, `"`+testID+`"`, `[]`, 1)+`]`), "unexpected JSON array"},
		{"trailing", doc("", "") + `{}`, "trailing data"},
		{"object where number", doc("version", `{}`), "unexpected JSON object"},
		{"string where number", doc("from_size", `"1"`), "cannot unmarshal"},
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
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v does not wrap ErrInvalid", tt.name, err)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	data := make([]byte, MaxSize+1)
	if _, err := Parse(data); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse of %d bytes: %v, want ErrInvalid", len(data), err)
	}
}

func TestParseTooManyLeaves(t *testing.T) {
	leaves := "[" + strings.Repeat(leafJSON+",", MaxEntries) + leafJSON + "]"
	if _, err := Parse([]byte(doc("leaves", leaves))); err == nil || !strings.Contains(err.Error(), "more than 100000 leaves") {
		t.Fatalf("Parse of %d leaves: %v", MaxEntries+1, err)
	}
}

func testBundle() *Bundle {
	return &Bundle{
		Version:    Version,
		Created:    CreatedAt(time.Date(2026, 11, 27, 11, 0, 0, 5, time.FixedZone("x", 3600))),
		LogKey:     testKey,
		Checkpoint: testNote,
		Leaves:     []Leaf{{Index: 0, ID: testID, SHA256: testSum, Size: 10, Date: "2026-11-27", Proof: []string{}}},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of empty dir: %v, want fs.ErrNotExist", err)
	}
	b := testBundle()
	if b.Created != "2026-11-27T10:00:00Z" {
		t.Errorf("Created = %q, want UTC seconds", b.Created)
	}
	b.Submissions = append(b.Submissions, NewEntry(testID, 10, testSum, 0))
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Submissions) != 1 || got.Submissions[0].Size != 10 || got.Consistency == nil || len(got.Leaves) != 1 {
		t.Fatalf("read back %+v", got)
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
	// Writing again replaces the file.
	got.Submissions = nil
	if err := got.Write(dir); err != nil {
		t.Fatal(err)
	}
	if again, err := Read(dir); err != nil || len(again.Submissions) != 0 {
		t.Fatalf("after rewrite: %+v, %v", again, err)
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	b := testBundle()
	b.Submissions = []Entry{{ID: testID, Size: 1, SHA256: testSum, File: "../x.age"}}
	if err := b.Write(dir); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Write: %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("invalid bundle was written: %v", err)
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
	f.Add([]byte(doc("", "")))
	f.Add([]byte(doc("consistency", `[]`)))
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
	out, err := exec.Command(testenv.GoTool(t), "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	// A vacuous list (wrong directory, empty output) must not pass.
	for _, want := range []string{"golang.org/x/mod/sumdb/note", "github.com/testimony-ngo/testimony/tools/internal/bundle"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list -deps output lacks %s; is the test running in the package directory?\n%s", want, out)
		}
	}
	for _, pkg := range deps {
		if pkg == "net" || strings.HasPrefix(pkg, "net/") || pkg == "crypto/tls" {
			t.Errorf("bundle depends on %s", pkg)
		}
	}
}

// TestDuplicateLeafID: two leaves under one id are refused with their own
// error type, which the reviewer names as an attack, by Parse and by Write.
func TestDuplicateLeafID(t *testing.T) {
	in := doc("leaves", `[`+leafJSON+`,`+strings.Replace(leafJSON, `"index":1`, `"index":2`, 1)+`]`)
	_, err := Parse([]byte(in))
	var d *DuplicateIDError
	if !errors.As(err, &d) || d.ID != testID || d.First != 1 || d.Second != 2 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse: %v, want a DuplicateIDError", err)
	}
	b, err := Parse([]byte(doc("", "")))
	if err != nil {
		t.Fatal(err)
	}
	b.Leaves = append(b.Leaves, b.Leaves[0])
	b.Leaves[1].Index++
	if err := b.Write(t.TempDir()); !errors.As(err, &d) {
		t.Errorf("Write: %v, want a DuplicateIDError", err)
	}
}
