package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// entry describes one tar entry for a hand-made (often hostile) archive.
type entry struct {
	name string
	typ  byte // tar.TypeReg if zero
	body string
	link string
	size int64 // overrides len(body) in the header if non-zero
	pax  map[string]string
	gnu  bool // write in GNU format
}

func file(name, body string) entry { return entry{name: name, body: body} }

// makeTar writes entries as a tar archive with its end marker.
func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if typ != tar.TypeReg {
			size = 0
		}
		if e.size != 0 {
			size = e.size
		}
		if typ == tar.TypeXGlobalHeader {
			if err := tw.WriteHeader(&tar.Header{Typeflag: typ, PAXRecords: e.pax}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		hdr := &tar.Header{
			Typeflag:   typ,
			Name:       e.name,
			Linkname:   e.link,
			Size:       size,
			Mode:       0o644,
			ModTime:    time.Unix(1e9, 0),
			PAXRecords: e.pax,
		}
		if e.pax != nil {
			hdr.Format = tar.FormatPAX
		}
		if e.gnu {
			hdr.Format = tar.FormatGNU
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("WriteHeader(%q): %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// manifestEntry returns a manifest.json entry listing files with correct
// sizes and hashes, after modify has had its way with the manifest.
func manifestEntry(t testing.TB, modify func(*Manifest), files ...entry) entry {
	t.Helper()
	m := &Manifest{Version: ManifestVersion, Created: "2026-11-27", Files: []File{}}
	for _, f := range files {
		m.Files = append(m.Files, File{Name: f.name, Size: int64(len(f.body)), SHA256: sum(f.body), MediaType: "text/plain"})
	}
	if modify != nil {
		modify(m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return file(ManifestName, string(data))
}

// envelopeOf makes a valid envelope with a manifest from files.
func envelopeOf(t testing.TB, files ...entry) []byte {
	return makeTar(t, append([]entry{manifestEntry(t, nil, files...)}, files...)...)
}

// extractTo runs Extract into a fresh "out" directory and checks that
// nothing appeared next to it.
func extractTo(t *testing.T, data []byte, lim Limits) (*Result, string, error) {
	t.Helper()
	base := t.TempDir()
	out := filepath.Join(base, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := Extract(bytes.NewReader(data), out, lim)
	names, rerr := os.ReadDir(base)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(names) != 1 {
		t.Fatalf("Extract wrote outside its directory: %v", names)
	}
	return res, out, err
}

// setTypeflag rewrites the type of the header block at off, fixing its
// checksum, to make entries archive/tar refuses to write.
func setTypeflag(data []byte, off int, typ byte) []byte {
	data = bytes.Clone(data)
	blk := data[off : off+512]
	blk[156] = typ
	copy(blk[148:156], "        ")
	var chk int
	for _, c := range blk {
		chk += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", chk))
	return data
}

// sparsePAX turns the "GNU.sparsX." PAX records that archive/tar writes
// into the "GNU.sparse." ones it refuses to write.
func sparsePAX(data []byte) []byte {
	return bytes.ReplaceAll(data, []byte("GNU.sparsX."), []byte("GNU.sparse."))
}
