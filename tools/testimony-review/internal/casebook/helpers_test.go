package casebook

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/text/language"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// sub is one submission for openBundle: an envelope of the named files
// (written into a scratch directory first), signed by the device key of
// seed unless it is zero.
type sub struct {
	meta  envelope.Meta
	seed  byte
	files map[string][]byte
}

// opened is an output directory with real submissions opened into it by
// review.Open, and the state "open" would have recorded.
type opened struct {
	out    string
	ids    []string
	opened *state.Opened
	log    *state.Log
}

// openBundle encrypts the submissions, logs them, cuts a bundle, verifies
// and opens it exactly as "testimony-review open" does.
func openBundle(t testing.TB, subs ...sub) *opened {
	t.Helper()
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	l := fixture.NewLog()
	var ids []string
	for i, s := range subs {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i))
		if err := os.MkdirAll(src, 0o700); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for name, data := range s.files {
			p := filepath.Join(src, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		var signer []byte
		if s.seed != 0 {
			signer = fixture.DeviceKey(s.seed)
		}
		ct, err := fixture.Encrypt([]age.Recipient{id.Recipient()}, fixture.Envelope(s.meta, signer, paths...), false)
		if err != nil {
			t.Fatal(err)
		}
		sid := fmt.Sprintf("%032x", i+1)
		l.Append(sid, ct)
		ids = append(ids, sid)
	}
	bdir := filepath.Join(dir, "bundle")
	if err := l.WriteBundle(bdir, 0, l.Size(), fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	_, key := fixture.LogKey()
	v, err := review.Verify(bdir, review.Witness{LogKey: key})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	known := map[string]string{envelope.DeviceKeyString(fixture.DeviceKey(knownSeed).Public().(ed25519.PublicKey)): "김지원"}
	results, err := review.Open(v, out, review.Options{Identities: []age.Identity{id}, Limits: envelope.DefaultLimits, Caseworkers: known, Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	o := &opened{out: out, ids: ids, opened: &state.Opened{LogKey: key, Entries: map[string]state.OpenedLeaf{}}, log: &state.Log{LogKey: key, Checkpoint: string(v.CheckpointNote)}}
	for _, r := range results {
		if r.Status != review.Opened {
			t.Fatalf("submission %s did not open: %v", r.ID, r.Err)
		}
		var leaf review.Submission
		for _, s := range v.Submissions {
			if s.ID == r.ID {
				leaf = s
			}
		}
		h := leaf.Leaf.Hash()
		o.opened.Entries[r.ID] = state.OpenedLeaf{Index: r.Index, LeafHash: base64.StdEncoding.EncodeToString(h[:])}
	}
	return o
}

// Seeds of the fixture caseworker device keys.
const (
	knownSeed   = 0x31
	strangeSeed = 0x32
)

func (o *opened) write(t testing.TB, lang string) *Summary {
	t.Helper()
	sum, err := Write(o.out, Options{Lang: language.Make(lang), Opened: o.opened, Log: o.log})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func readPage(t testing.TB, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// writeCustody writes OUTDIR/<id> by hand, as a damaged or hostile disk
// could hold it: custody.json with the manifest m and the files, and
// manifest.json matching it.
func writeCustody(t testing.TB, out, id string, m *envelope.Manifest, files []envelope.File, signer review.CustodySignature) {
	t.Helper()
	dir := filepath.Join(out, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := review.Custody{
		Version: review.CustodyVersion, ID: id, Received: "2026-11-27", Opened: "2026-11-28T09:00:00Z",
		Caseworker: signer, Manifest: m, Files: files,
		Log: review.CustodyLog{Origin: "testimony-log-fixture", Index: 3, Size: 10, Root: "AAAA"},
	}
	if c.Files == nil {
		c.Files = []envelope.File{}
	}
	if m != nil {
		mj, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(mj)
		c.ManifestSHA256 = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, review.ManifestName), mj, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cj, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, review.CustodyJSONName), cj, 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	attrRE  = regexp.MustCompile(`(?i)\s(href|src|action|formaction|poster|srcset|style|on[a-z]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
	pageRE  = regexp.MustCompile(`^(\.\./)?(index(-[0-9]+)?\.html(#case-[0-9]+)?|style\.css|pages/[0-9a-f]{32}\.html)$`)
	fileRE  = regexp.MustCompile(`^(\.\./)?([0-9a-f]{32})/(.+)$`)
	tagRE   = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	cspMeta = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'">`
)

// checkInert fails unless a page is inert whatever went into it: the
// strict CSP, no script or inline style, no event handler, no link that is
// not a page of the view or a file inside a submission's folder, and no
// control or bidirectional-text character.
func checkInert(t testing.TB, name, page string) {
	t.Helper()
	if strings.Count(page, cspMeta) != 1 {
		t.Errorf("%s: the CSP meta tag is missing", name)
	}
	// html/template escapes every "<" of text, so each match is a tag the
	// template wrote, with the attributes it wrote.
	tags := strings.Join(tagRE.FindAllString(page, -1), "\n")
	lower := strings.ToLower(tags)
	for _, bad := range []string{"<script", "<style", "<iframe", "<object", "<embed", "<form", "<base", "<svg", "<math", "refresh", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("%s has a tag with %q", name, bad)
		}
	}
	for _, m := range attrRE.FindAllStringSubmatch(tags, -1) {
		attr, val := strings.ToLower(m[1]), strings.Trim(m[2], `"'`)
		if attr != "href" && attr != "src" {
			t.Errorf("%s has the attribute %s", name, m[0])
			continue
		}
		if pageRE.MatchString(val) {
			continue
		}
		fm := fileRE.FindStringSubmatch(val)
		if fm == nil {
			t.Errorf("%s links outside the view: %s=%q", name, attr, val)
			continue
		}
		if strings.ContainsAny(fm[3], "?#:\\") {
			t.Errorf("%s: link %q has an unescaped query, fragment, colon or backslash", name, val)
		}
		p, err := url.PathUnescape(fm[3])
		if err != nil {
			t.Errorf("%s: link %q does not unescape: %v", name, val, err)
			continue
		}
		if c := path.Clean(fm[2] + "/" + p); !strings.HasPrefix(c, fm[2]+"/") {
			t.Errorf("%s: link %q leaves its submission's folder (%s)", name, val, c)
		}
	}
	for _, r := range page {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || isBidiControl(r) {
			t.Errorf("%s contains the character %U", name, r)
			break
		}
	}
}
