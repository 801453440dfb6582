package envelope

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestExtractManifest(t *testing.T) {
	files := []entry{file("a.txt", "hello"), file("증언.m4a", "audio"), file("empty", "")}
	data := append(envelopeOf(t, files...), make([]byte, 100)...)
	res, out, err := extractTo(t, data, Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if res.Manifest == nil || len(res.Manifest.Files) != 3 {
		t.Fatalf("Manifest = %+v", res.Manifest)
	}
	if len(res.Files) != 3 {
		t.Fatalf("Files = %+v", res.Files)
	}
	for i, f := range files {
		if res.Files[i].Name != f.name || res.Files[i].SHA256 != sum(f.body) || res.Files[i].Size != int64(len(f.body)) {
			t.Errorf("Files[%d] = %+v", i, res.Files[i])
		}
		if res.Files[i].MediaType != "text/plain" {
			t.Errorf("Files[%d].MediaType = %q, want the manifest's", i, res.Files[i].MediaType)
		}
		got, err := os.ReadFile(filepath.Join(out, f.name))
		if err != nil || string(got) != f.body {
			t.Errorf("%s = %q, %v", f.name, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, ManifestName)); err != nil {
		t.Errorf("manifest.json not written: %v", err)
	}
	checkModes(t, out)
}

func checkModes(t *testing.T, dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = os.ModeDir | 0o700
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
}

func TestExtractPlain(t *testing.T) {
	data := makeTar(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./dir/", typ: tar.TypeDir},
		file("./dir/a.txt", "A"),
		file("b.txt", "B"),
		file("c/d/e.txt", "E"), // parents without entries of their own
		entry{name: "c/", typ: tar.TypeDir},
	)
	data = append(data, make([]byte, 9*512)...) // tar's record padding
	res, out, err := extractTo(t, data, Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if res.Manifest != nil {
		t.Errorf("Manifest = %+v, want nil", res.Manifest)
	}
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "dir/a.txt b.txt c/d/e.txt"; got != want {
		t.Errorf("files %q, want %q", got, want)
	}
	if res.Files[0].MediaType != "text/plain" || res.Files[0].SHA256 != sum("A") {
		t.Errorf("Files[0] = %+v", res.Files[0])
	}
	if got, _ := os.ReadFile(filepath.Join(out, "c", "d", "e.txt")); string(got) != "E" {
		t.Errorf("c/d/e.txt = %q", got)
	}
	checkModes(t, out)
}

func TestExtractRefuses(t *testing.T) {
	a := file("a.txt", "hello")
	b := file("b.txt", "world")
	withManifest := func(files ...entry) []entry {
		return append([]entry{manifestEntry(t, nil, files...)}, files...)
	}
	manifestWith := func(modify func(*Manifest), files ...entry) []entry {
		return append([]entry{manifestEntry(t, modify, files...)}, files...)
	}
	many := []entry{}
	for i := range 6 {
		many = append(many, file(fmt.Sprintf("f%d", i), "x"))
	}
	tests := []struct {
		name    string
		entries []entry
		raw     []byte // used instead of entries if set
		lim     Limits
		want    string
	}{
		{name: "dot dot", entries: []entry{file("../x", "x")}, want: `entry "../x": path escapes the output directory`},
		{name: "dot dot in manifest", entries: withManifest(file("../x", "x")), want: `manifest.json: file "../x": path escapes the output directory`},
		{name: "dot dot inside", entries: []entry{file("a/../../x", "x")}, want: "path escapes"},
		{name: "dot dot directory", entries: []entry{{name: "../", typ: tar.TypeDir}}, want: "path escapes"},
		{name: "absolute", entries: []entry{file("/etc/passwd", "x")}, want: `entry "/etc/passwd": absolute paths are not allowed`},
		{name: "dot component", entries: []entry{file("a/./b", "x")}, want: "path escapes"},
		{name: "empty component", entries: []entry{file("a//b", "x")}, want: "empty name"},
		{name: "symlink", entries: []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"}}, want: `entry "l": symbolic links are not allowed`},
		{name: "symlink then write through it", entries: []entry{{name: "l", typ: tar.TypeSymlink, link: ".."}, file("l/x", "x")}, want: "symbolic links"},
		{name: "hard link", entries: []entry{a, {name: "h", typ: tar.TypeLink, link: "a.txt"}}, want: "hard links are not allowed"},
		{name: "char device", entries: []entry{{name: "d", typ: tar.TypeChar}}, want: "device files"},
		{name: "block device", entries: []entry{{name: "d", typ: tar.TypeBlock}}, want: "device files"},
		{name: "fifo", entries: []entry{{name: "p", typ: tar.TypeFifo}}, want: "named pipes"},
		{name: "global header", entries: []entry{{name: "g", typ: tar.TypeXGlobalHeader, pax: map[string]string{"comment": "x"}}, a}, want: "global headers"},
		{name: "contiguous file", entries: []entry{{name: "c", typ: tar.TypeCont}}, want: "unsupported tar entry type"},
		{name: "pax sparse", raw: sparsePAX(makeTar(t, entry{name: "s", body: "xx", pax: map[string]string{
			"GNU.sparsX.major": "0", "GNU.sparsX.minor": "1", "GNU.sparsX.numblocks": "1", "GNU.sparsX.map": "0,2", "GNU.sparsX.size": "2"}})), want: "sparse"},
		{name: "old GNU sparse", raw: setTypeflag(makeTar(t, entry{name: "s", body: "xx", gnu: true}), 0, tar.TypeGNUSparse), want: "sparse"},
		{name: "old GNU sparse in USTAR", raw: setTypeflag(makeTar(t, a), 0, tar.TypeGNUSparse), want: "malformed tar archive"},
		{name: "dot dot after manifest", entries: append(withManifest(a), file("../x", "x")), want: `entry "../x": path escapes the output directory`},
		{name: "duplicate", entries: []entry{a, a}, want: `entry "a.txt": duplicate name`},
		{name: "duplicate with manifest", entries: append(withManifest(a), a), want: "duplicate name"},
		{name: "case duplicate", entries: []entry{file("Report.txt", "1"), file("report.TXT", "2")}, want: `entry "report.TXT": duplicate of "Report.txt" (the names differ only in case`},
		{name: "NFC NFD duplicate", entries: []entry{file("caf\u00e9", "1"), file("cafe\u0301", "2")}, want: "differ only in case or Unicode normalisation"},
		{name: "case duplicate directories", entries: []entry{file("Dir/a", "1"), file("dir/b", "2")}, want: `duplicate of "Dir"`},
		{name: "duplicate directory", entries: []entry{{name: "d/", typ: tar.TypeDir}, {name: "d/", typ: tar.TypeDir}}, want: "duplicate name"},
		{name: "file as parent", entries: []entry{file("f", "1"), file("f/g", "2")}, want: `"f" is a file, not a directory`},
		{name: "escape character", entries: []entry{file("a\x1b[31m.txt", "x")}, want: "control character U+001B"},
		{name: "newline", entries: []entry{file("a\nb", "x")}, want: "control character U+000A"},
		{name: "C1 control", entries: []entry{file("a\u009bb", "x")}, want: "control character U+009B"},
		{name: "bidi override", entries: []entry{file("\u202egpj.exe", "x")}, want: "bidirectional-text control U+202E"},
		{name: "backslash", entries: []entry{file(`..\x`, "x")}, want: "backslash"},
		{name: "invalid UTF-8", entries: []entry{file("a\xffb", "x")}, want: "not valid UTF-8"},
		{name: "long name", entries: []entry{file(strings.Repeat("n", MaxNameLength+1), "x")}, want: "longer than 255 bytes"},
		{name: "long path", entries: []entry{file(strings.Repeat("d/", MaxPathLength/2)+"f", "x")}, want: "longer than 1024 bytes"},
		{name: "directory with manifest", entries: append(withManifest(a), entry{name: "d/", typ: tar.TypeDir}), want: "directories are not allowed"},
		{name: "nested file with manifest", entries: manifestWith(nil, file("d/a.txt", "x")), want: "name contains a slash"},
		{name: "nested file not listed", entries: append(withManifest(a), file("d/a.txt", "x")), want: "only top-level files"},
		{name: "dot slash with manifest", entries: append(withManifest(a), file("./b.txt", "x")), want: "path escapes"},
		{name: "manifest lies about size", entries: manifestWith(func(m *Manifest) { m.Files[0].Size = 4 }, a), want: `entry "a.txt": size 5 does not match manifest.json (4)`},
		{name: "manifest lies about hash", entries: manifestWith(func(m *Manifest) { m.Files[0].SHA256 = sum("other") }, a), want: `entry "a.txt": SHA-256 does not match manifest.json`},
		{name: "missing file", entries: withManifest(a, b)[:2], want: `file "b.txt": listed in manifest.json but missing from the envelope`},
		{name: "extra file", entries: append(withManifest(a), b), want: `entry "b.txt": not listed in manifest.json`},
		{name: "file listed with other case", entries: manifestWith(func(m *Manifest) { m.Files[0].Name = "A.txt" }, a), want: `listed in manifest.json as "A.txt"`},
		{name: "manifest duplicate names", entries: manifestWith(func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) }, a), want: "duplicate name"},
		{name: "manifest lists itself", entries: manifestWith(func(m *Manifest) { m.Files[0].Name = "Manifest.json" }, a), want: `duplicate of "manifest.json"`},
		{name: "manifest negative size", entries: manifestWith(func(m *Manifest) { m.Files[0].Size = -1 }, a), want: "negative size"},
		{name: "manifest bad hash", entries: manifestWith(func(m *Manifest) { m.Files[0].SHA256 = strings.ToUpper(sum("hello")) }, a), want: "sha256 must be"},
		{name: "manifest bad version", entries: manifestWith(func(m *Manifest) { m.Version = 2 }, a), want: "version 2"},
		{name: "manifest bad date", entries: manifestWith(func(m *Manifest) { m.Created = "yesterday" }, a), want: "created must be a date"},
		{name: "manifest escape in case", entries: manifestWith(func(m *Manifest) { m.Case = "\x1b]0;pwned\a" }, a), want: "control character"},
		{name: "manifest bad media type", entries: manifestWith(func(m *Manifest) { m.Files[0].MediaType = "not a type" }, a), want: "media_type"},
		{name: "manifest not JSON", entries: []entry{file(ManifestName, "{"), a}, want: "manifest.json"},
		{name: "manifest unknown field", entries: []entry{file(ManifestName, `{"version":1,"created":"2026-11-27","files":[],"extra":1}`)}, want: `unknown field "extra"`},
		{name: "manifest null files", entries: []entry{file(ManifestName, `{"version":1,"created":"2026-11-27","files":null}`)}, want: "null"},
		{name: "manifest missing files", entries: []entry{file(ManifestName, `{"version":1,"created":"2026-11-27"}`)}, want: "files is missing"},
		{name: "manifest too large", entries: withManifest(a), lim: Limits{MaxManifestSize: 50}, want: "more than the limit of 50"},
		{name: "too many entries", entries: many, lim: Limits{MaxEntries: 5}, want: "more than 5 entries"},
		{name: "manifest lists too many", entries: withManifest(many...), lim: Limits{MaxEntries: 6}, want: "lists 6 files, more than the limit of 5"},
		{name: "file too large", entries: []entry{a}, lim: Limits{MaxFileSize: 4}, want: `entry "a.txt": 5 bytes, more than the limit of 4`},
		{name: "total too large", entries: []entry{a, b}, lim: Limits{MaxTotalSize: 9}, want: "files total more than the limit of 9 bytes"},
		{name: "non-zero padding", raw: append(append(makeTar(t, withManifest(a)...), make([]byte, 100)...), 1), want: "non-zero byte at offset"},
		{name: "too much padding", raw: append(makeTar(t, a), make([]byte, 30000)...), want: "bytes of padding"},
		{name: "no end marker", raw: makeTar(t, a)[:1024], want: "truncated"},
		{name: "half an end marker", raw: makeTar(t, a)[:1536], want: "truncated"},
		{name: "truncated in a file", raw: makeTar(t, file("big", strings.Repeat("x", 2000)))[:1000], want: "truncated"},
		{name: "truncated in a header", raw: makeTar(t, a, b)[:1200], want: "truncated"},
		{name: "no entries", raw: make([]byte, 1024), want: "no entries"},
		{name: "empty input", raw: []byte{}, want: "no entries"},
		{name: "garbage", raw: bytes.Repeat([]byte("garbage!"), 200), want: "malformed tar archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.raw
			if data == nil {
				data = makeTar(t, tt.entries...)
			}
			_, _, err := extractTo(t, data, tt.lim)
			if err == nil {
				t.Fatalf("Extract succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestExtractErrorMessage(t *testing.T) {
	_, _, err := extractTo(t, makeTar(t, file("../x", "x")), Limits{})
	if err == nil || err.Error() != `entry "../x": path escapes the output directory` {
		t.Errorf("error = %v", err)
	}
}

func TestExtractNeedsEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Extract(bytes.NewReader(envelopeOf(t, file("a", "b"))), dir, Limits{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Extract into a non-empty directory = %v", err)
	}
	if _, err := Extract(bytes.NewReader(nil), filepath.Join(dir, "missing"), Limits{}); err == nil {
		t.Error("Extract into a missing directory succeeded")
	}
}

// errAfter returns data and then err, like an age reader whose next chunk
// fails to authenticate.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestExtractReadError(t *testing.T) {
	data := append(envelopeOf(t, file("a", strings.Repeat("x", 3000)), file("b", "y")), make([]byte, 5000)...)
	boom := errors.New("chacha20poly1305: message authentication failed")
	for _, n := range []int{0, 100, 512, 1500, len(data) - 2000, len(data)} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := &errAfter{r: bytes.NewReader(data[:n]), err: boom}
			_, err := Extract(r, t.TempDir(), Limits{})
			if !errors.Is(err, boom) {
				t.Fatalf("Extract = %v, want the read error", err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("a read error is reported as invalid content: %v", err)
			}
		})
	}
}
