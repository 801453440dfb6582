package envelope

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func FuzzExtract(f *testing.F) {
	a, b := file("a.txt", "hello"), file("b", "")
	f.Add(envelopeOf(f, a, b))
	f.Add(append(envelopeOf(f, a), make([]byte, 300)...))
	f.Add(makeTar(f, entry{name: "d/", typ: tar.TypeDir}, file("d/x", "1"), file("./y", "2")))
	f.Add(makeTar(f, file("../x", "x")))
	f.Add(makeTar(f, entry{name: "l", typ: tar.TypeSymlink, link: "/"}, file("l/x", "x")))
	f.Add(makeTar(f, file("caf\u00e9", "1"), file("cafe\u0301", "2")))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxEntries: 20, MaxFileSize: 1 << 16, MaxTotalSize: 1 << 17, MaxManifestSize: 1 << 12}
		res, out, err := extractTo(t, data, lim) // fails if anything lands outside out
		if err != nil {
			return
		}
		if res.Manifest != nil && len(res.Files) != len(res.Manifest.Files) {
			t.Fatalf("%d files extracted, manifest lists %d", len(res.Files), len(res.Manifest.Files))
		}
		for i, rf := range res.Files {
			if res.Manifest != nil && rf != res.Manifest.Files[i] {
				// Files come in archive order, which need not be the
				// manifest's; compare by name instead.
				found := false
				for _, mf := range res.Manifest.Files {
					found = found || (mf == rf)
				}
				if !found {
					t.Fatalf("extracted %+v is not in the manifest", rf)
				}
			}
			p := filepath.Join(out, filepath.FromSlash(rf.Name))
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s: %v, %v", rf.Name, fi, err)
			}
			content, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(content)
			if int64(len(content)) != rf.Size || hex.EncodeToString(h[:]) != rf.SHA256 {
				t.Fatalf("%s: on disk differs from the result", rf.Name)
			}
		}
		// No links of any kind were created.
		filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode()&(os.ModeSymlink|os.ModeNamedPipe|os.ModeDevice) != 0 {
				t.Fatalf("%s has mode %v", p, fi.Mode())
			}
			return err
		})
	})
}
