package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	random := make([]byte, 200_000)
	rand.Read(random)
	contents := map[string][]byte{
		"interview.m4a":          random,
		"notes.txt":              []byte("She crossed the river in March.\n"),
		"empty.txt":              nil,
		"증언 2026-11-27.pdf":      []byte("%PDF-1.7 ..."),
		"caf\u00e9 transcript":   []byte("plain text without an extension\n"),
		"photo.unknownextension": []byte("\x89PNG\r\n\x1a\nrest"),
	}
	var paths []string
	for _, name := range []string{"interview.m4a", "notes.txt", "empty.txt", "증언 2026-11-27.pdf", "caf\u00e9 transcript", "photo.unknownextension"} {
		paths = append(paths, writeFile(t, filepath.Join(src, name[:1]), name, contents[name]))
	}
	meta := Meta{Case: "NK-2026-0042", InterviewDate: "2026-11-20", Language: "ko", Consent: "research and advocacy; no publication of names"}

	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	var ciphertext bytes.Buffer
	w, err := age.Encrypt(&ciphertext, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(w, meta, paths, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if m.Case != meta.Case || m.InterviewDate != meta.InterviewDate || m.Language != meta.Language || m.Consent != meta.Consent {
		t.Errorf("manifest metadata = %+v", m)
	}
	if m.Created != time.Now().UTC().Format(DateFormat) {
		t.Errorf("Created = %q", m.Created)
	}
	wantTypes := map[string]string{
		"interview.m4a":          "audio/mp4",
		"notes.txt":              "text/plain",
		"empty.txt":              "text/plain",
		"증언 2026-11-27.pdf":      "application/pdf",
		"caf\u00e9 transcript":   "text/plain",
		"photo.unknownextension": "image/png",
	}
	for _, f := range m.Files {
		if f.MediaType != wantTypes[f.Name] {
			t.Errorf("%s: media type %q, want %q", f.Name, f.MediaType, wantTypes[f.Name])
		}
	}

	r, err := age.Decrypt(&ciphertext, id)
	if err != nil {
		t.Fatal(err)
	}
	plaintext, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if Padme(int64(len(plaintext))) != int64(len(plaintext)) {
		t.Errorf("plaintext length %d is not a Padmé length", len(plaintext))
	}
	checkStandardTar(t, plaintext, m)

	res, out, err := extractTo(t, plaintext, Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(res.Files) != len(paths) || res.Manifest == nil {
		t.Fatalf("Result = %+v", res)
	}
	for i, f := range res.Files {
		if f != m.Files[i] {
			t.Errorf("Files[%d] = %+v, manifest says %+v", i, f, m.Files[i])
		}
		got, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil || !bytes.Equal(got, contents[f.Name]) {
			t.Errorf("%s: content differs (%v)", f.Name, err)
		}
	}
	if res.Manifest.Case != meta.Case || len(res.Manifest.Files) != len(m.Files) {
		t.Errorf("extracted manifest = %+v", res.Manifest)
	}
}

// checkStandardTar reads the envelope as any tar tool would: manifest
// first, then the files, with no owner or device details.
func checkStandardTar(t *testing.T, plaintext []byte, m *Manifest) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(plaintext))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner recorded: %d/%d %q/%q", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if hdr.ModTime.UTC().Format(DateFormat) != m.Created || hdr.ModTime.UTC().Hour() != 0 || hdr.ModTime.Minute() != 0 {
			t.Errorf("%s: time %v is more precise than the creation date", hdr.Name, hdr.ModTime)
		}
	}
	want := []string{ManifestName}
	for _, f := range m.Files {
		want = append(want, f.Name)
	}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("tar entries %q, want %q", names, want)
	}
}

func TestBuildRefuses(t *testing.T) {
	src := t.TempDir()
	a := writeFile(t, src, "a/x.txt", []byte("1"))
	b := writeFile(t, src, "b/x.txt", []byte("2"))
	upper := writeFile(t, src, "c/X.TXT", []byte("3"))
	nfd := writeFile(t, src, "d/cafe\u0301", []byte("4"))
	nfc := writeFile(t, src, "e/caf\u00e9", []byte("5"))
	manifest := writeFile(t, src, "f/Manifest.json", []byte("{}"))
	control := writeFile(t, src, "g/a\x1bb", []byte("6"))
	tests := []struct {
		name  string
		meta  Meta
		paths []string
		want  string
	}{
		{"no files", Meta{}, nil, "no files"},
		{"directory", Meta{}, []string{src}, "is a directory"},
		{"missing", Meta{}, []string{filepath.Join(src, "nope")}, "no such file"},
		{"same base name", Meta{}, []string{a, b}, "have the same name"},
		{"case", Meta{}, []string{a, upper}, "have the same name"},
		{"normalisation", Meta{}, []string{nfd, nfc}, "have the same name"},
		{"manifest name", Meta{}, []string{manifest}, "reserved"},
		{"control character in name", Meta{}, []string{control}, "control character"},
		{"interview date", Meta{InterviewDate: "20 Nov 2026"}, []string{a}, "interview_date must be a date"},
		{"escape in case", Meta{Case: "\x1b[2J"}, []string{a}, "control character"},
		{"long consent", Meta{Consent: strings.Repeat("x", MaxMetaLength+1)}, []string{a}, "longer than"},
		{"invalid UTF-8", Meta{Language: "\xff"}, []string{a}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Build(&out, tt.meta, tt.paths, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build = %v, want error containing %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("Build wrote %d bytes before failing a check it can make up front", out.Len())
			}
		})
	}
}

// changingWriter changes a file when Build first writes, which is after
// the hashing pass and before the copying pass.
type changingWriter struct {
	bytes.Buffer
	change func() error
}

func (c *changingWriter) Write(p []byte) (int, error) {
	if c.change != nil {
		err := c.change()
		c.change = nil
		if err != nil {
			return 0, err
		}
	}
	return c.Buffer.Write(p)
}

func TestBuildFileChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(p string) error
	}{
		{"grow", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			f.WriteString(" and more")
			return f.Close()
		}},
		{"shrink", func(p string) error { return os.Truncate(p, 3) }},
		{"same size", func(p string) error { return os.WriteFile(p, []byte("ORIGINAL CONTENT"), 0o600) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "a.txt", []byte("original content"))
			w := &changingWriter{change: func() error { return tt.change(p) }}
			_, err := Build(w, Meta{}, []string{p}, nil)
			if err == nil || !strings.Contains(err.Error(), "changed while the envelope was being built") {
				t.Fatalf("Build = %v, want a changed-file error", err)
			}
		})
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestBuildWriteError(t *testing.T) {
	p := writeFile(t, t.TempDir(), "a.txt", bytes.Repeat([]byte("x"), 5000))
	for _, n := range []int{0, 600, 2000, 7000} {
		if _, err := Build(&failingWriter{n: n}, Meta{}, []string{p}, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Build with a writer failing after %d bytes = %v", n, err)
		}
	}
}

func TestMediaType(t *testing.T) {
	tests := []struct {
		name string
		head string
		want string
	}{
		{"a.M4A", "", "audio/mp4"},
		{"a.jpeg", "", "image/jpeg"},
		{"a.hwp", "", "application/x-hwp"},
		{"noext", "%PDF-1.4", "application/pdf"},
		{"noext", "\xff\xd8\xff\xe0", "image/jpeg"},
		{"noext", "RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"},
		{"noext", "XXXX\x00\x00\x00\x00WAVEfmt ", "application/octet-stream"},
		{"noext", "\x00\x00\x00\x18ftypM4A ", "audio/mp4"},
		{"noext", "\x00\x00\x00\x18ftypisom", "video/mp4"},
		{"noext", "OggS", "audio/ogg"},
		{"noext", "hello\nworld", "text/plain"},
		{"noext", "한국어 텍스트", "text/plain"},
		{"noext", "한국어"[:5], "text/plain"}, // cut in the middle of a character
		{"noext", "bin\x00ary", "application/octet-stream"},
		{"noext", "\xff\xfe\xfd", "application/octet-stream"},
		{"noext", "", "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := mediaType(tt.name, []byte(tt.head)); got != tt.want {
			t.Errorf("mediaType(%q, %q) = %q, want %q", tt.name, tt.head, got, tt.want)
		}
	}
}

// sizeRecorder is a writer that wants the envelope's size in advance.
type sizeRecorder struct {
	bytes.Buffer
	announced []int64
}

func (s *sizeRecorder) SetSize(n int64) error {
	if s.Len() > 0 {
		return errors.New("SetSize after the first byte")
	}
	s.announced = append(s.announced, n)
	return nil
}

// TestBuildAnnouncesSize checks that Build tells a SizeSetter, before
// writing, exactly how many bytes it writes: with and without a
// signature, for names that need PAX records (long, non-ASCII), empty
// files and files of the tar block size.
func TestBuildAnnouncesSize(t *testing.T) {
	_, signer, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	meta := Meta{Case: "NK-2026-0042", InterviewDate: "2026-11-20", Language: "ko", Consent: "research"}
	cases := map[string][]Source{
		"one byte": {source1("a.txt", 1)},
		"blocks":   {source1("empty", 0), source1("block", 512), source1("blocks", 3*512+1)},
		"pax names": {source1(strings.Repeat("긴 이름 ", 20)+".m4a", 70_000),
			source1(strings.Repeat("n", 150), 65_536)},
	}
	for name, srcs := range cases {
		for _, sk := range []ed25519.PrivateKey{nil, signer} {
			t.Run(fmt.Sprintf("%s signed=%v", name, sk != nil), func(t *testing.T) {
				var w sizeRecorder
				if _, err := BuildSources(&w, meta, srcs, sk); err != nil {
					t.Fatal(err)
				}
				if len(w.announced) != 1 || w.announced[0] != int64(w.Len()) {
					t.Errorf("SetSize calls %v, wrote %d bytes", w.announced, w.Len())
				}
			})
		}
	}
}

// source1 is a source of size bytes of a repeated letter.
func source1(name string, size int) Source {
	return Source{Name: name, Size: int64(size), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(strings.Repeat("x", size))), nil
	}}
}
