package envelope

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The tests in this file play a compromised caseworker device: every
// envelope is one a hostile sender could encrypt to the reviewers. Each
// case asserts the exact message a reviewer is shown, that it wraps
// ErrInvalid, and that nothing appeared outside the output directory.

// hostileDirs makes the directory layout every hostile test extracts into:
// base/out is the output directory, and base/outside/victim a file a path
// or link would aim at. It returns base and out.
func hostileDirs(t *testing.T) (string, string) {
	t.Helper()
	base := t.TempDir()
	out := filepath.Join(base, "out")
	for _, d := range []string{out, filepath.Join(base, "outside")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside", "victim"), []byte("original"), 0o600); err != nil {
		t.Fatal(err)
	}
	return base, out
}

// checkContained fails if anything besides out and the untouched victim
// file exists under base, or if out holds a link or special file.
func checkContained(t *testing.T, base, out string) {
	t.Helper()
	err := filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		switch {
		case rel == ".", rel == "out", rel == "outside":
		case rel == filepath.Join("outside", "victim"):
			if data, err := os.ReadFile(p); err != nil || string(data) != "original" {
				t.Errorf("the file outside the output directory changed: %q, %v", data, err)
			}
		case strings.HasPrefix(rel, "out"+string(filepath.Separator)):
			if !fi.Mode().IsRegular() && !fi.IsDir() {
				t.Errorf("%s has mode %v: Extract made something other than a file or directory", rel, fi.Mode())
			}
		default:
			t.Errorf("%s appeared outside the output directory", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// outEntries lists what Extract left in out.
func outEntries(t *testing.T, out string) []string {
	t.Helper()
	var names []string
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != out {
			rel, _ := filepath.Rel(out, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	return names
}

// withRealSize sets the GNU "real size" field of the old-GNU header block at
// off, and fixes its checksum.
func withRealSize(data []byte, off int, size int64) []byte {
	data = bytes.Clone(data)
	blk := data[off : off+blockSize]
	copy(blk[483:495], fmt.Sprintf("%011o\x00", size))
	copy(blk[148:156], "        ")
	var chk int
	for _, c := range blk {
		chk += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", chk))
	return data
}

// metaHeader returns the tar blocks that a writer puts before a file's
// own header: a PAX extended header (pax) or a GNU long-name header (gnu).
func metaHeader(t testing.TB, gnu bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
	if gnu {
		hdr.Name = strings.Repeat("n", 200)
		hdr.Format = tar.FormatGNU
	} else {
		hdr.PAXRecords = map[string]string{"comment": "again"}
		hdr.Format = tar.FormatPAX
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	// Everything but the final block, which is the file's own header.
	meta := buf.Bytes()[:buf.Len()-blockSize]
	if len(meta) == 0 || (meta[156] != tar.TypeXHeader && meta[156] != tar.TypeGNULongName) {
		t.Fatalf("unexpected meta header type %q", meta[156])
	}
	return meta
}

// endless is a reader that never ends: prefix, then unit(0), unit(1), …
// It counts what was read, so a test can show that Extract stopped early.
type endless struct {
	prefix []byte
	unit   func(i int) []byte
	buf    []byte
	i      int
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	if len(e.buf) == 0 {
		if e.prefix != nil {
			e.buf, e.prefix = e.prefix, nil
		} else {
			e.buf = e.unit(e.i)
			e.i++
		}
	}
	n := copy(p, e.buf)
	e.buf = e.buf[n:]
	e.n += int64(n)
	return n, nil
}

func repeat(b []byte) func(int) []byte { return func(int) []byte { return b } }

// tinyFiles returns a unit function that makes distinct one-byte files.
func tinyFiles(t testing.TB, typ byte) func(int) []byte {
	return func(i int) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := &tar.Header{Name: fmt.Sprintf("f%06d", i), Typeflag: typ, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
		if typ == tar.TypeDir {
			hdr.Name += "/"
		} else {
			hdr.Size = 1
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte{'x'})
		}
		tw.Flush()
		return buf.Bytes()
	}
}

// header returns the tar blocks of a header claiming size bytes, without
// the data.
func header(t testing.TB, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644, ModTime: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractHostile(t *testing.T) {
	a := file("a.txt", "hello")
	withManifest := func(files ...entry) []entry {
		return append([]entry{manifestEntry(t, nil, files...)}, files...)
	}
	manifestWith := func(modify func(*Manifest), files ...entry) []entry {
		return append([]entry{manifestEntry(t, modify, files...)}, files...)
	}
	// The manifest lists a.txt; the entry after it is whatever the test adds.
	afterManifest := func(e entry) []entry { return append(withManifest(a), e) }
	const tb = int64(1) << 40
	bigManifest := `{"version":1,"created":"2026-11-27","case":"` + strings.Repeat("x", 1<<20) + `","files":[]}`
	oldSparse := withRealSize(setTypeflag(makeTar(t, entry{name: "s", gnu: true}), 0, tar.TypeGNUSparse), 0, tb)
	paxSparse := sparsePAX(makeTar(t, entry{name: "s", body: "x", pax: map[string]string{
		"GNU.sparsX.major": "0", "GNU.sparsX.minor": "1", "GNU.sparsX.numblocks": "1",
		"GNU.sparsX.map": fmt.Sprintf("%d,1", tb-1), "GNU.sparsX.size": fmt.Sprint(tb)}}))

	tests := []struct {
		name    string
		entries []entry
		raw     []byte
		lim     Limits
		want    string
	}{
		// Absolute paths and "..".
		{name: "absolute after manifest", entries: afterManifest(file("/etc/passwd", "x")),
			want: `entry "/etc/passwd": absolute paths are not allowed`},
		{name: "root directory", entries: []entry{{name: "/", typ: tar.TypeDir}},
			want: `entry "/": absolute paths are not allowed`},
		{name: "absolute in manifest", entries: manifestWith(func(m *Manifest) { m.Files[0].Name = "/etc/passwd" }, a),
			want: `manifest.json: file "/etc/passwd": name contains a slash`},
		{name: "dot dot alone", entries: []entry{file("..", "x")},
			want: `entry "..": path escapes the output directory`},
		{name: "dot slash dot dot", entries: []entry{file("./../outside/victim", "x")},
			want: `entry "./../outside/victim": path escapes the output directory`},
		{name: "dot dot to victim", entries: []entry{{name: "d/", typ: tar.TypeDir}, file("d/../../outside/victim", "x")},
			want: `entry "d/../../outside/victim": path escapes the output directory`},

		// Links, also ones aiming outside, and special files.
		{name: "symlink outside", entries: []entry{{name: "l", typ: tar.TypeSymlink, link: "../outside/victim"}},
			want: `entry "l": symbolic links are not allowed`},
		{name: "symlink absolute after manifest", entries: afterManifest(entry{name: "l", typ: tar.TypeSymlink, link: "/etc/shadow"}),
			want: `entry "l": symbolic links are not allowed`},
		{name: "symlink to directory then file through it", entries: []entry{{name: "d", typ: tar.TypeSymlink, link: "../outside"}, file("d/victim", "x")},
			want: `entry "d": symbolic links are not allowed`},
		{name: "hard link outside", entries: []entry{{name: "h", typ: tar.TypeLink, link: "../outside/victim"}},
			want: `entry "h": hard links are not allowed`},
		{name: "hard link absolute", entries: []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}},
			want: `entry "h": hard links are not allowed`},
		{name: "hard link named as a listed file", entries: append(withManifest(a)[:1], entry{name: "a.txt", typ: tar.TypeLink, link: "/etc/passwd"}),
			want: `entry "a.txt": hard links are not allowed`},
		{name: "char device after manifest", entries: afterManifest(entry{name: "tty", typ: tar.TypeChar}),
			want: `entry "tty": device files are not allowed`},
		{name: "block device", entries: []entry{{name: "sda", typ: tar.TypeBlock}},
			want: `entry "sda": device files are not allowed`},
		{name: "fifo after manifest", entries: afterManifest(entry{name: "p", typ: tar.TypeFifo}),
			want: `entry "p": named pipes (FIFOs) are not allowed`},

		// Duplicates, case and Unicode normalisation.
		{name: "manifest twice", entries: append(withManifest(a), manifestEntry(t, nil, a)),
			want: `entry "manifest.json": manifest.json is allowed only as the first entry, named exactly "manifest.json"`},
		{name: "manifest not first in a plain tar", entries: []entry{a, file(ManifestName, "{}")},
			want: `entry "manifest.json": manifest.json is allowed only as the first entry, named exactly "manifest.json"`},
		{name: "manifest as ./manifest.json", entries: []entry{file("./"+ManifestName, "{}")},
			want: `entry "./manifest.json": manifest.json is allowed only as the first entry, named exactly "manifest.json"`},
		{name: "file twice after manifest", entries: append(withManifest(a), a),
			want: `entry "a.txt": duplicate name`},
		{name: "NFD entry for NFC listing", entries: manifestWith(func(m *Manifest) { m.Files[0].Name = "caf\u00e9" }, file("cafe\u0301", "x")),
			want: "entry \"cafe\u0301\": listed in manifest.json as \"caf\u00e9\", which differs in case or Unicode normalisation (names must match exactly)"},
		{name: "NFC and NFD both listed", entries: manifestWith(nil, file("caf\u00e9", "1"), file("cafe\u0301", "2")),
			want: "manifest.json: file \"cafe\u0301\": duplicate of \"caf\u00e9\" (the names differ only in case or Unicode normalisation)"},
		{name: "case variant of a listed file", entries: append(withManifest(a), file("A.TXT", "x")),
			want: `entry "A.TXT": duplicate of "a.txt" (the names differ only in case or Unicode normalisation)`},
		{name: "case variant of the manifest", entries: append(withManifest(a), file("MANIFEST.JSON", "{}")),
			want: `entry "MANIFEST.JSON": manifest.json is allowed only as the first entry, named exactly "manifest.json"`},
		{name: "Kelvin sign folds to k", entries: []entry{file("k", "1"), file("\u212a", "2")},
			want: "entry \"\u212a\": duplicate of \"k\" (the names differ only in case or Unicode normalisation)"},

		// Control characters.
		{name: "tab", entries: []entry{file("a\tb", "x")}, want: `entry "a\tb": name contains the control character U+0009`},
		{name: "carriage return", entries: []entry{file("a\rb", "x")}, want: `entry "a\rb": name contains the control character U+000D`},
		{name: "delete", entries: []entry{file("a\x7fb", "x")}, want: `entry "a\x7fb": name contains the control character U+007F`},
		{name: "escape in a directory name", entries: []entry{file("d\x1b[2J/f", "x")}, want: `entry "d\x1b[2J/f": name contains the control character U+001B`},
		{name: "control character in manifest", entries: manifestWith(nil, file("a\x07.txt", "x")),
			want: `manifest.json: file "a\a.txt": name contains the control character U+0007`},
		{name: "escape in link target is irrelevant", entries: []entry{{name: "l", typ: tar.TypeSymlink, link: "\x1b]0;x\a"}},
			want: `entry "l": symbolic links are not allowed`},

		// A manifest that lies.
		{name: "manifest claims a larger file", entries: manifestWith(func(m *Manifest) { m.Files[0].Size = 6 }, a),
			want: `entry "a.txt": size 5 does not match manifest.json (6)`},
		{name: "manifest claims a terabyte", entries: manifestWith(func(m *Manifest) { m.Files[0].Size = tb }, a),
			want: `manifest.json: file "a.txt": 1099511627776 bytes, more than the limit of 68719476736`},
		{name: "manifest files total too much", entries: manifestWith(func(m *Manifest) {
			m.Files[0].Size = DefaultMaxTotalSize
			m.Files[1].Size = 1
		}, a, file("b", "x")),
			want: `manifest.json: files total more than the limit of 68719476736 bytes`},
		{name: "manifest hash of another file", entries: manifestWith(func(m *Manifest) { m.Files[0].SHA256, m.Files[1].SHA256 = m.Files[1].SHA256, m.Files[0].SHA256 }, a, file("b", "other")),
			want: `entry "a.txt": SHA-256 does not match manifest.json`},
		{name: "manifest lists a file sent as a directory", entries: append(withManifest(a)[:1], entry{name: "a.txt/", typ: tar.TypeDir}),
			want: `entry "a.txt/": directories are not allowed in an envelope with a manifest`},

		// Huge manifests.
		{name: "manifest header claims a terabyte", raw: header(t, ManifestName, tb),
			want: `entry "manifest.json": 1099511627776 bytes, more than the limit of 1048576`},
		{name: "manifest over the default size", entries: []entry{file(ManifestName, bigManifest)},
			want: fmt.Sprintf(`entry "manifest.json": %d bytes, more than the limit of 1048576`, len(bigManifest))},

		// Sparse files claiming terabytes.
		{name: "old GNU sparse terabyte", raw: oldSparse, want: `entry "s": sparse files are not supported`},
		{name: "PAX sparse terabyte", raw: paxSparse, want: `entry "s": sparse files are not supported`},
		{name: "sparse manifest", raw: withRealSize(setTypeflag(makeTar(t, entry{name: ManifestName, gnu: true}), 0, tar.TypeGNUSparse), 0, tb),
			want: `entry "manifest.json": sparse files are not supported`},
		{name: "sparse after manifest", raw: append(bytes.TrimSuffix(makeTar(t, withManifest(a)...), make([]byte, endMarkerSize)), oldSparse...),
			want: `entry "s": sparse files are not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.raw
			if data == nil {
				data = makeTar(t, tt.entries...)
			}
			base, out := hostileDirs(t)
			_, err := Extract(bytes.NewReader(data), out, tt.lim)
			if err == nil {
				t.Fatalf("Extract succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %q\nwant\n  %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			checkContained(t, base, out)
		})
	}
}

// TestExtractManifestListsTooMany parses a 12 MB manifest listing 100 000
// files (with a manifest size limit raised to let it through): the entry
// limit refuses it before a single file is written.
func TestExtractManifestListsTooMany(t *testing.T) {
	m := &Manifest{Version: ManifestVersion, Created: "2026-11-27"}
	for i := range 100000 {
		m.Files = append(m.Files, File{Name: fmt.Sprintf("f%06d", i), SHA256: sum(""), MediaType: "text/plain"})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := mustJSON(t, m)
	tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644})
	tw.Write(data)
	tw.Close()
	base, out := hostileDirs(t)
	_, err := Extract(&buf, out, Limits{MaxManifestSize: 64 << 20})
	const want = "manifest.json lists 100000 files, more than the limit of 9999"
	if err == nil || err.Error() != want {
		t.Fatalf("Extract = %v, want %q", err, want)
	}
	if got := outEntries(t, out); len(got) != 0 {
		t.Errorf("Extract wrote %v", got)
	}
	checkContained(t, base, out)
}

// TestExtractManyTinyEntries sends 100 000 one-byte files, as files and as
// directories, with the default limits: Extract must stop at the entry
// limit, having read no more than the entries it allows, with live memory
// bounded (sampled with a forced collection as the archive is read).
func TestExtractManyTinyEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10 000 files")
	}
	for _, typ := range []byte{tar.TypeReg, tar.TypeDir} {
		t.Run(fmt.Sprintf("type %q", typ), func(t *testing.T) {
			const entries = 100000
			unit := tinyFiles(t, typ)
			per := int64(len(unit(0))) // every entry has the same size
			size := entries*per + endMarkerSize
			src := &endless{unit: func(i int) []byte {
				if i < entries {
					return unit(i)
				}
				return make([]byte, endMarkerSize)
			}}
			mem := &memSampler{r: src, every: 2000}
			base, out := hostileDirs(t)
			_, err := Extract(mem, out, Limits{})
			const want = "the envelope has more than 10000 entries"
			if err == nil || err.Error() != want {
				t.Fatalf("Extract = %v, want %q", err, want)
			}
			if src.n > (DefaultMaxEntries+2)*per {
				t.Errorf("read %d bytes of the %d-byte archive, more than %d entries", src.n, size, DefaultMaxEntries+1)
			}
			// The archive would be 100 MB (50 MB of directories); what
			// Extract keeps alive while reading it must stay small.
			if extra := mem.peak - mem.base; extra > 32<<20 {
				t.Errorf("live heap grew by %d MiB while extracting", extra>>20)
			}
			t.Logf("read %d of %d bytes; live heap grew by at most %d KiB", src.n, size, (mem.peak-mem.base)>>10)
			checkContained(t, base, out)
		})
	}
}

// memSampler measures the live heap every so many reads.
type memSampler struct {
	r           io.Reader
	every, n    int
	base, peak  int64
	initialized bool
}

func (m *memSampler) Read(p []byte) (int, error) {
	if !m.initialized {
		m.base = liveHeap()
		m.peak = m.base
		m.initialized = true
	}
	if m.n++; m.n%m.every == 0 {
		m.peak = max(m.peak, liveHeap())
	}
	return m.r.Read(p)
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestExtractEndless feeds tar streams that never end. Each must stop at a
// limit, not at a timeout, and say which one; the bytes read show that it
// stopped early.
func TestExtractEndless(t *testing.T) {
	a := file("a.txt", "hello")
	valid := makeTar(t, append([]entry{manifestEntry(t, nil, a)}, a)...)
	small := Limits{MaxEntries: 50, MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxManifestSize: 1 << 16}
	tests := []struct {
		name    string
		src     *endless
		lim     Limits
		want    string
		maxRead int64
	}{
		{name: "zero padding forever", src: &endless{prefix: valid, unit: repeat(make([]byte, 4096))},
			want:    fmt.Sprintf("more than %d bytes of padding after the end of the tar archive", int64(len(valid))/8+recordSlack),
			maxRead: int64(len(valid)) + 64<<10},
		{name: "zeros from the start", src: &endless{unit: repeat(make([]byte, 4096))},
			want: "the tar archive has no entries", maxRead: 8192},
		{name: "garbage forever", src: &endless{unit: repeat(bytes.Repeat([]byte("garbage!"), 512))},
			want: "tar entry 1: malformed tar archive: archive/tar: invalid tar header", maxRead: 8192},
		{name: "new files forever", src: &endless{unit: tinyFiles(t, tar.TypeReg)}, lim: small,
			want: "the envelope has more than 50 entries", maxRead: 52 * 1024},
		{name: "new directories forever", src: &endless{unit: tinyFiles(t, tar.TypeDir)}, lim: small,
			want: "the envelope has more than 50 entries", maxRead: 52 * 1024},
		{name: "the same file forever", src: &endless{unit: repeat(makeTar(t, a)[:2*blockSize])},
			want: `entry "a.txt": duplicate name`, maxRead: 4 * blockSize},
		{name: "files after the manifest forever", src: &endless{prefix: valid[:4*blockSize], unit: tinyFiles(t, tar.TypeReg)},
			want: `entry "f000000": not listed in manifest.json`, maxRead: 8 * blockSize},
		{name: "terabyte file of endless data", src: &endless{prefix: header(t, "big", 1<<40), unit: repeat([]byte("data"))},
			want: `entry "big": 1099511627776 bytes, more than the limit of 68719476736`, maxRead: 8 * blockSize},
		{name: "file at the size limit then endless data", src: &endless{prefix: header(t, "big", 1<<20), unit: repeat(bytes.Repeat([]byte("data"), 1024))}, lim: small,
			want: "tar entry 2: malformed tar archive: archive/tar: invalid tar header", maxRead: 1<<20 + 8*blockSize},
		{name: "terabyte manifest of endless data", src: &endless{prefix: header(t, ManifestName, 1<<40), unit: repeat([]byte("{"))},
			want: `entry "manifest.json": 1099511627776 bytes, more than the limit of 1048576`, maxRead: 8 * blockSize},
		{name: "PAX headers forever", src: &endless{unit: repeat(metaHeader(t, false))},
			want:    fmt.Sprintf("tar entry 1: extension headers are larger than %d bytes", MaxEntryHeaderSize),
			maxRead: MaxEntryHeaderSize + 2*blockSize},
		{name: "GNU long names forever", src: &endless{unit: repeat(metaHeader(t, true))},
			want:    fmt.Sprintf("tar entry 1: extension headers are larger than %d bytes", MaxEntryHeaderSize),
			maxRead: MaxEntryHeaderSize + 2*blockSize},
		{name: "PAX headers forever after the manifest", src: &endless{prefix: valid[:4*blockSize], unit: repeat(metaHeader(t, false))},
			want:    fmt.Sprintf("tar entry 3: extension headers are larger than %d bytes", MaxEntryHeaderSize),
			maxRead: MaxEntryHeaderSize + 6*blockSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, out := hostileDirs(t)
			_, err := Extract(tt.src, out, tt.lim)
			if err == nil {
				t.Fatalf("Extract succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %q\nwant\n  %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if tt.src.n > tt.maxRead {
				t.Errorf("read %d bytes before stopping, want at most %d", tt.src.n, tt.maxRead)
			}
			checkContained(t, base, out)
		})
	}
}

// TestExtractHostileLeavesNoLinks puts a link or special file after a
// regular file and before a file meant to be written through it: Extract
// has written the first file when it refuses, and the partial output it
// leaves for the caller to delete holds that file only, never a link.
func TestExtractHostileLeavesNoLinks(t *testing.T) {
	for _, typ := range []byte{tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo} {
		t.Run(fmt.Sprintf("type %q", typ), func(t *testing.T) {
			base, out := hostileDirs(t)
			data := makeTar(t, file("first", "1"), entry{name: "x", typ: typ, link: "../outside/victim"}, file("x/victim", "2"))
			if _, err := Extract(bytes.NewReader(data), out, Limits{}); err == nil {
				t.Fatal("Extract succeeded")
			}
			if got := outEntries(t, out); len(got) != 1 || got[0] != "first" {
				t.Errorf("Extract left %v, want only the file before the refused entry", got)
			}
			checkContained(t, base, out)
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
