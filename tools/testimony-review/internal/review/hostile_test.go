package review

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

// hostileEntry is one entry of a hand-made tar stream.
type hostileEntry struct {
	name, body, link string
	typ              byte  // tar.TypeReg if zero
	size             int64 // overrides len(body) in the header if non-zero (no data is written then)
	gnu              bool
}

// hostileTar writes entries as a tar stream. With end, the end-of-archive
// marker follows.
func hostileTar(t *testing.T, end bool, entries ...hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.size != 0 {
			h.Size = e.size
		}
		if e.gnu {
			h.Format = tar.FormatGNU
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && e.size == 0 {
			tw.Write([]byte(e.body))
		}
		tw.Flush()
	}
	if end {
		buf.Write(make([]byte, 1024))
	}
	return buf.Bytes()
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// manifestFor returns a manifest.json entry for files, after modify.
func manifestFor(t *testing.T, modify func(*envelope.Manifest), files ...hostileEntry) hostileEntry {
	t.Helper()
	m := &envelope.Manifest{Version: envelope.ManifestVersion, Created: "2026-11-27", Files: []envelope.File{}}
	for _, f := range files {
		m.Files = append(m.Files, envelope.File{Name: f.name, Size: int64(len(f.body)), SHA256: hexSum(f.body), MediaType: "text/plain"})
	}
	if modify != nil {
		modify(m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return hostileEntry{name: envelope.ManifestName, body: string(data)}
}

// setBlock rewrites a field of the tar header block at off and fixes its
// checksum, for entries archive/tar refuses to write.
func setBlock(data []byte, off, field int, value string) []byte {
	data = bytes.Clone(data)
	blk := data[off : off+512]
	copy(blk[field:], value)
	copy(blk[148:156], "        ")
	var chk int
	for _, c := range blk {
		chk += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", chk))
	return data
}

// paxRun is n PAX extended headers in a row, each applying to the next.
func paxRun(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "again"}})
	tw.Flush()
	meta := buf.Bytes()[:buf.Len()-512] // the extended header, without the file's own
	return bytes.Repeat(meta, n)
}

// hostileOpen logs one submission per plaintext, bundles them, and verifies
// and opens the bundle into base/out, with base/outside/victim as a target
// for escapes. It returns the results and base.
func hostileOpen(t *testing.T, lim envelope.Limits, plaintexts ...[]byte) ([]Result, string) {
	t.Helper()
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "outside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "outside", "victim"), []byte("original"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := fixture.NewLog()
	for i, pt := range plaintexts {
		ct, err := fixture.Encrypt([]age.Recipient{k.Recipient()}, func(w io.Writer) error { _, err := w.Write(pt); return err }, false)
		if err != nil {
			t.Fatal(err)
		}
		log.Append(id(i+1), ct)
	}
	bundleDir := filepath.Join(base, "bundle")
	if err := log.WriteBundle(bundleDir, 0, log.Size(), fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	_, key := fixture.LogKey()
	v, err := Verify(bundleDir, Witness{LogKey: key, Opened: map[string]SeenLeaf{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Open(v, filepath.Join(base, "out"), Options{
		Identities: []age.Identity{k},
		Limits:     lim,
		Now:        time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Tool:       "hostile test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, base
}

// checkNothingEscaped fails unless base holds only the bundle, the untouched
// victim and, in out, exactly the directories of the opened ids.
func checkNothingEscaped(t *testing.T, base string, opened ...string) {
	t.Helper()
	if got := ls(t, base); !slices.Equal(got, []string{"bundle", "out", "outside"}) {
		t.Errorf("base directory holds %v", got)
	}
	if got := ls(t, filepath.Join(base, "outside")); !slices.Equal(got, []string{"victim"}) {
		t.Errorf("outside holds %v", got)
	}
	if data, err := os.ReadFile(filepath.Join(base, "outside", "victim")); err != nil || string(data) != "original" {
		t.Errorf("victim changed: %q, %v", data, err)
	}
	if got := ls(t, filepath.Join(base, "out")); !slices.Equal(got, opened) {
		t.Errorf("OUTDIR holds %v, want %v (no work directories)", got, opened)
	}
}

// TestOpenHostileEnvelopes opens a bundle of envelopes from a compromised
// caseworker device, plus one honest plain tarball. Each hostile one fails
// with its exact message, nothing of it is left in OUTDIR (its work
// directory is removed), nothing is written outside OUTDIR, and the honest
// one still opens.
func TestOpenHostileEnvelopes(t *testing.T) {
	a := hostileEntry{name: "a.txt", body: "hello"}
	withManifest := func(modify func(*envelope.Manifest), files ...hostileEntry) []byte {
		return hostileTar(t, true, append([]hostileEntry{manifestFor(t, modify, files...)}, files...)...)
	}
	big := strings.Repeat("testimony ", 30000) // several age chunks
	tb := int64(1) << 40
	oldSparse := setBlock(setBlock(hostileTar(t, true, hostileEntry{name: "s", gnu: true}), 0, 156, "S"), 0, 483, fmt.Sprintf("%011o\x00", tb))
	cases := []struct {
		name string
		pt   []byte
		want string
	}{
		{"dot dot", hostileTar(t, true, hostileEntry{name: "../outside/victim", body: "x"}),
			`entry "../outside/victim": path escapes the output directory`},
		{"absolute", hostileTar(t, true, hostileEntry{name: "/etc/passwd", body: "x"}),
			`entry "/etc/passwd": absolute paths are not allowed`},
		{"symlink outside", hostileTar(t, true, hostileEntry{name: "l", typ: tar.TypeSymlink, link: "../../outside"}, hostileEntry{name: "l/victim", body: "x"}),
			`entry "l": symbolic links are not allowed`},
		{"hard link outside", hostileTar(t, true, hostileEntry{name: "h", typ: tar.TypeLink, link: "../../outside/victim"}),
			`entry "h": hard links are not allowed`},
		{"device", hostileTar(t, true, hostileEntry{name: "mem", typ: tar.TypeChar}),
			`entry "mem": device files are not allowed`},
		{"fifo", hostileTar(t, true, hostileEntry{name: "p", typ: tar.TypeFifo}),
			`entry "p": named pipes (FIFOs) are not allowed`},
		{"duplicate", hostileTar(t, true, a, a),
			`entry "a.txt": duplicate name`},
		{"unicode normalisation", hostileTar(t, true, hostileEntry{name: "caf\u00e9", body: "1"}, hostileEntry{name: "cafe\u0301", body: "2"}),
			"entry \"cafe\u0301\": duplicate of \"caf\u00e9\" (the names differ only in case or Unicode normalisation)"},
		{"case", hostileTar(t, true, hostileEntry{name: "Report.txt", body: "1"}, hostileEntry{name: "REPORT.TXT", body: "2"}),
			`entry "REPORT.TXT": duplicate of "Report.txt" (the names differ only in case or Unicode normalisation)`},
		{"control character", hostileTar(t, true, hostileEntry{name: "a\x1b]0;owned\a", body: "x"}),
			`entry "a\x1b]0;owned\a": name contains the control character U+001B`},
		{"manifest lies about size", withManifest(func(m *envelope.Manifest) { m.Files[0].Size = 4 }, a),
			`entry "a.txt": size 5 does not match manifest.json (4)`},
		{"manifest lies about hash", withManifest(func(m *envelope.Manifest) { m.Files[0].SHA256 = hexSum("other") }, a),
			`entry "a.txt": SHA-256 does not match manifest.json`},
		{"huge manifest", hostileTar(t, false, hostileEntry{name: envelope.ManifestName, size: tb}),
			`entry "manifest.json": 1099511627776 bytes, more than the limit of 1048576`},
		{"sparse terabyte", oldSparse,
			`entry "s": sparse files are not supported`},
		{"endless extension headers", paxRun(t, 5<<20/1024),
			fmt.Sprintf("tar entry 1: extension headers are larger than %d bytes", envelope.MaxEntryHeaderSize)},
		{"non-zero byte after the archive", append(withManifest(nil, hostileEntry{name: "big.txt", body: big}), 0, 0, 7),
			fmt.Sprintf("non-zero byte at offset %d after the end of the tar archive", len(withManifest(nil, hostileEntry{name: "big.txt", body: big}))+2)},
	}
	var pts [][]byte
	for _, c := range cases {
		pts = append(pts, c.pt)
	}
	honest := hostileTar(t, true, hostileEntry{name: "ok.txt", body: "fine"})
	res, base := hostileOpen(t, envelope.Limits{}, append(pts, honest)...)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := res[i]
			if r.Status != Failed || r.Reason != "envelope refused" {
				t.Fatalf("status %v, reason %q, error %v; want refused", r.Status, r.Reason, r.Err)
			}
			if want := "submission " + id(i+1) + ": " + c.want; r.Err.Error() != want {
				t.Errorf("error\n  %q\nwant\n  %q", r.Err, want)
			}
		})
	}
	if r := res[len(cases)]; r.Status != Opened {
		t.Fatalf("the honest submission did not open: %+v", r)
	}
	checkNothingEscaped(t, base, id(len(cases)+1))
}

// TestOpenHostileManyEntries sends 20 000 tiny files to a reviewer whose
// entry limit is 1000: the submission is refused at entry 1001 and the
// thousand files already written are removed with the work directory.
func TestOpenHostileManyEntries(t *testing.T) {
	var entries []hostileEntry
	for i := range 20000 {
		entries = append(entries, hostileEntry{name: fmt.Sprintf("f%05d", i), body: "x"})
	}
	res, base := hostileOpen(t, envelope.Limits{MaxEntries: 1000}, hostileTar(t, true, entries...))
	if want := "submission " + id(1) + ": the envelope has more than 1000 entries"; res[0].Status != Failed || res[0].Err.Error() != want {
		t.Fatalf("got %v %v, want %q", res[0].Status, res[0].Err, want)
	}
	checkNothingEscaped(t, base)
}

// TestOpenPayloadFailureAfterExtraction corrupts the last age chunk of an
// envelope whose files all come before it: Extract has written every file
// into the work directory when age reports the failure, and none of it may
// survive.
func TestOpenPayloadFailureAfterExtraction(t *testing.T) {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	// The archive is exactly two age chunks long, so the third and final
	// chunk holds only padding.
	files := []hostileEntry{{name: "a.txt", body: strings.Repeat("a", 127488)}, {name: "b.txt", body: "b"}}
	archive := hostileTar(t, true, append([]hostileEntry{manifestFor(t, nil, files...)}, files...)...)
	if len(archive) != 2*64<<10 {
		t.Fatalf("archive is %d bytes", len(archive))
	}
	pt := append(archive, make([]byte, 1000)...)
	ct, err := fixture.Encrypt([]age.Recipient{k.Recipient()}, func(w io.Writer) error { _, err := w.Write(pt); return err }, false)
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)-5] ^= 0x80 // in the tag of the final chunk
	// age hands out the whole archive before it fails, so Extract wrote
	// every file into the work directory.
	r, err := age.Decrypt(bytes.NewReader(ct), k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err == nil || !bytes.Equal(got, archive) {
		t.Fatalf("age returned %d bytes and %v, want the whole archive, then an error", len(got), err)
	}
	base := t.TempDir()
	log := fixture.NewLog()
	log.Append(id(1), ct)
	bundleDir := filepath.Join(base, "bundle")
	if err := log.WriteBundle(bundleDir, 0, 1, fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	_, key := fixture.LogKey()
	v, err := Verify(bundleDir, Witness{LogKey: key, Opened: map[string]SeenLeaf{}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	res, err := Open(v, out, Options{Identities: []age.Identity{k}, Limits: envelope.DefaultLimits, Now: time.Now(), Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const want = "failed to read envelope: failed to decrypt: failed to decrypt and authenticate payload chunk, file may be corrupted or tampered with"
	if r := res[0]; r.Status != Failed || r.Reason != "decryption failed" || r.Err.Error() != "submission "+id(1)+": "+want {
		t.Fatalf("got %v %q %v, want decryption failure %q", r.Status, r.Reason, r.Err, want)
	}
	if got := ls(t, out); len(got) != 0 {
		t.Errorf("OUTDIR holds %v", got)
	}
}
