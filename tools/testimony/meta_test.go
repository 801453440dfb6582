package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
)

// TestSubmitMeta: with -meta, nothing identifying is on the command line,
// and the metadata and files arrive in the encrypted manifest; -meta -
// reads them from standard input; an empty file goes only with
// -allow-empty.
func TestSubmitMeta(t *testing.T) {
	d := newDeployment(t)
	cw := newUser(t, d.submitTok)
	col := newUser(t, d.collectTok)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kim-interview.m4a"), []byte("audio"))
	writeFile(t, filepath.Join(dir, "kim-notes.txt"), []byte("notes"))
	writeFile(t, filepath.Join(dir, "empty.m4a"), nil)
	t.Chdir(dir)

	manifest := func(id string) *envelope.Manifest {
		t.Helper()
		bdir := filepath.Join(t.TempDir(), "bundle")
		if _, stderr, code := col.run("collect", "-server", d.ts.URL, "-pin", d.pin(), "-since", "0", "-o", bdir); code != 0 {
			t.Fatalf("collect: %s", stderr)
		}
		f, err := os.Open(filepath.Join(bdir, id+".age"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		plain, err := age.Decrypt(f, d.identity)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		os.Mkdir(out, 0o700)
		res, err := envelope.Extract(plain, out, envelope.DefaultLimits)
		if err != nil || res.Manifest == nil {
			t.Fatalf("extract: %v", err)
		}
		return res.Manifest
	}
	names := func(m *envelope.Manifest) string {
		var l []string
		for _, f := range m.Files {
			l = append(l, f.Name)
		}
		return strings.Join(l, ",")
	}

	writeFile(t, "meta.txt", []byte("case: NK-2026-041\nlang: ko\ndate: 2026-11-27\nconsent: research and publication\nfile: kim-interview.m4a\nfile: kim-notes.txt\n"))
	stdout, stderr, code := cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-meta", "meta.txt")
	if code != 0 || strings.Contains(stderr, "can be seen by other users") {
		t.Fatalf("submit -meta: exit %d\n%s", code, stderr)
	}
	m := manifest(lastLine(stdout))
	if m.Case != "NK-2026-041" || m.Language != "ko" || m.InterviewDate != "2026-11-27" || m.Consent != "research and publication" ||
		names(m) != "kim-interview.m4a,kim-notes.txt" {
		t.Errorf("manifest from -meta: %+v, files %s", m, names(m))
	}

	cw.stdin = strings.NewReader(`{"case": "NK-2026-042", "lang": "en", "files": ["kim-notes.txt"]}`)
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-meta", "-")
	cw.stdin = nil
	if code != 0 || strings.Contains(stderr, "can be seen by other users") {
		t.Fatalf("submit -meta -: exit %d\n%s", code, stderr)
	}
	if m := manifest(lastLine(stdout)); m.Case != "NK-2026-042" || m.Language != "en" || names(m) != "kim-notes.txt" {
		t.Errorf("manifest from -meta -: %+v, files %s", m, names(m))
	}

	// The flags still work, and say once that others can see them.
	_, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-case", "NK-2026-043", "-lang", "ko", "kim-notes.txt")
	if code != 0 || strings.Count(stderr, "can be seen by other users") != 1 || !strings.Contains(stderr, "testimony: warning: -case, -lang on the command line can be seen by other users of this computer") {
		t.Fatalf("submit with metadata flags: exit %d\n%s", code, stderr)
	}

	// An empty file: refused, then sent with -allow-empty and a warning.
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "empty.m4a")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "testimony: error: empty.m4a is empty (0 bytes); a failed recording is the usual cause") {
		t.Fatalf("submit of an empty file: exit %d\n%s", code, stderr)
	}
	outboxEmpty(t, cw)
	stdout, stderr, code = cw.run("submit", "-server", d.ts.URL, "-pin", d.pin(), "-allow-empty", "empty.m4a", "kim-notes.txt")
	if code != 0 || !strings.Contains(stderr, "testimony: warning: empty.m4a is empty (0 bytes); sending it because of -allow-empty") {
		t.Fatalf("submit -allow-empty: exit %d\n%s", code, stderr)
	}
	if m := manifest(lastLine(stdout)); names(m) != "empty.m4a,kim-notes.txt" || m.Files[0].Size != 0 {
		t.Errorf("manifest with an empty file: files %s", names(m))
	}
}

func TestParseMeta(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     testimonyMeta
		err      string
	}{
		{"lines", "# c\n\ncase: K-1\r\nlang: ko\ndate: 2026-11-27\nconsent: a: b\nfile: a b.txt\nfile: c.txt\n", testimonyMeta{Case: "K-1", Lang: "ko", Date: "2026-11-27", Consent: "a: b", Files: []string{"a b.txt", "c.txt"}}, ""},
		{"bom", "\ufeffcase: K-1\n", testimonyMeta{Case: "K-1"}, ""},
		{"json", ` {"case":"K-1","files":["a.txt"]}`, testimonyMeta{Case: "K-1", Files: []string{"a.txt"}}, ""},
		{"unknown key", "Case: K-1\n", testimonyMeta{}, `unknown key "Case"`},
		{"no colon", "case K-1\n", testimonyMeta{}, "line 1 is not key: value"},
		{"empty value", "case:\n", testimonyMeta{}, "case has no value"},
		{"repeated", "case: a\ncase: b\n", testimonyMeta{}, "case appears twice"},
		{"json repeated", `{"files":["a"],"files":["b"]}`, testimonyMeta{}, `key "files" appears twice`},
		{"json null", `{"case":null}`, testimonyMeta{}, `key "case" is null`},
		{"json empty", `{"case":""}`, testimonyMeta{}, `key "case" is empty`},
		{"json empty name", `{"files":[""]}`, testimonyMeta{}, "empty name"},
		{"json trailing", `{"case":"a"} {}`, testimonyMeta{}, "data after the object"},
		{"json wrong type", `{"case":1}`, testimonyMeta{}, "invalid JSON"},
		{"control", "case: a\x1bb\n", testimonyMeta{}, "control characters"},
		{"not utf-8", "case: \xff\n", testimonyMeta{}, "not UTF-8"},
		{"too long", "consent: " + strings.Repeat("x", envelope.MaxMetaLength+1), testimonyMeta{}, "longer than"},
		{"too large", strings.Repeat("#\n", maxMetaFile), testimonyMeta{}, "larger than"},
		{"too many files", strings.Repeat("file: a\n", maxMetaFiles+1), testimonyMeta{}, "more than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMeta([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Case != tt.want.Case || m.Lang != tt.want.Lang || m.Date != tt.want.Date || m.Consent != tt.want.Consent ||
				strings.Join(m.Files, "|") != strings.Join(tt.want.Files, "|") {
				t.Errorf("got %+v, want %+v", m, tt.want)
			}
		})
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte("case: K-1\nfile: a.txt\n"))
	f.Add([]byte(`{"case":"K-1","files":["a.txt"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMeta(data)
		if err != nil {
			return
		}
		for _, v := range append([]string{m.Case, m.Lang, m.Date, m.Consent}, m.Files...) {
			if strings.ContainsAny(v, "\n\r\x00") || len(v) > envelope.MaxMetaLength {
				t.Fatalf("accepted value %q", v)
			}
		}
		if len(m.Files) > maxMetaFiles {
			t.Fatal("too many files accepted")
		}
	})
}
