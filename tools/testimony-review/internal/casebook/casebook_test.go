package casebook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

var (
	koreanText = "2026년 11월 20일 면담 기록\n탈북 경위와 수용소 생활에 대한 증언입니다.\n"
	// A WAV header is enough for the envelope's media type; the browser
	// test plays a real one.
	wav = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 32)...)
	png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
)

func threeSubmissions(t *testing.T) *opened {
	return openBundle(t,
		sub{meta: envelope.Meta{Case: "K-2026-117", InterviewDate: "2026-11-20", Language: "ko", Consent: "검토 및 법률 지원 목적 사용에 동의"}, seed: knownSeed,
			files: map[string][]byte{"면담 녹음.wav": wav, "photo.png": png, "기록.txt": []byte(koreanText)}},
		sub{meta: envelope.Meta{Case: "K-2026-098", InterviewDate: "2026-10-02", Language: "ko"}, seed: strangeSeed,
			files: map[string][]byte{"interview.wav": wav}},
		sub{meta: envelope.Meta{Case: "K-2026-117", InterviewDate: "2026-11-21"},
			files: map[string][]byte{"notes.txt": []byte("follow-up\n")}},
	)
}

func TestWriteOpenedBundle(t *testing.T) {
	o := threeSubmissions(t)
	sum := o.write(t, "en")
	if sum.Submissions != 3 || sum.Cases != 2 || sum.IndexPages != 1 || len(sum.Skipped) != 0 {
		t.Fatalf("summary %+v, want 3 submissions in 2 cases on 1 page", sum)
	}
	index := readPage(t, o.out, IndexName)
	checkInert(t, IndexName, index)
	for _, want := range []string{
		`<html lang="en">`, `<link rel="stylesheet" href="style.css">`,
		"Submissions: 3", "Cases: 2",
		`<bdi>K-2026-117</bdi>`, `<bdi>K-2026-098</bdi>`,
		`href="pages/` + o.ids[0] + `.html"`,
		`<span class="ok">김지원</span>`, `<span class="bad">Unknown key</span>`, `<span class="warn">Unsigned</span>`,
		"Audio: 1", "Pictures: 1", "Documents: 1",
		"This machine has verified the first 3 entries of the intake log.",
		`<span class="ok">Verified on this machine</span>`,
	} {
		if !strings.Contains(index, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	// Grouped by case: K-2026-117's two submissions together, the newest
	// (highest log index, all received the same day) first.
	i117, i098 := strings.Index(index, "K-2026-117"), strings.Index(index, "K-2026-098")
	i3, i1 := strings.Index(index, o.ids[2]), strings.Index(index, o.ids[0])
	if !(i117 < i3 && i3 < i1 && i1 < i098) {
		t.Errorf("index order: case 117 at %d, its submissions 3 at %d and 1 at %d, case 098 at %d; want 117 (3, 1) then 098", i117, i3, i1, i098)
	}

	page := readPage(t, o.out, "pages/"+o.ids[0]+".html")
	checkInert(t, "page", page)
	for _, want := range []string{
		`<link rel="stylesheet" href="../style.css">`,
		`<a href="../index.html#case-1">`,
		`<audio controls preload="metadata" src="../` + o.ids[0] + `/%EB%A9%B4%EB%8B%B4%20%EB%85%B9%EC%9D%8C.wav"></audio>`,
		`<img src="../` + o.ids[0] + `/photo.png" alt="photo.png">`,
		"<pre>2026년 11월 20일 면담 기록\n탈북 경위와",
		"Signed on the device of a caseworker registered on this machine: 김지원",
		"검토 및 법률 지원 목적 사용에 동의",
		`href="../` + o.ids[0] + `/custody.txt"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the submission page lacks %q", want)
		}
	}
	if p := readPage(t, o.out, "pages/"+o.ids[1]+".html"); !strings.Contains(p, "not on this machine&#39;s list of caseworkers") {
		t.Errorf("the page of the unknown key's submission does not say so")
	}

	o.write(t, "ko")
	index = readPage(t, o.out, IndexName)
	for _, want := range []string{`<html lang="ko">`, "증언 사건 열람", "제출물: 3건", "사건: 2건", "등록되지 않은 키", "서명 없음"} {
		if !strings.Contains(index, want) {
			t.Errorf("Korean index.html lacks %q", want)
		}
	}
	for _, english := range []string{"Testimony case view", "Unknown key", "Submissions"} {
		if strings.Contains(index, english) {
			t.Errorf("Korean index.html still has the English %q", english)
		}
	}
}

func TestWriteRechecksManifestAndSignature(t *testing.T) {
	o := threeSubmissions(t)
	dir := filepath.Join(o.out, o.ids[0])

	// manifest.json edited after opening: the page must not vouch for it.
	mpath := filepath.Join(dir, review.ManifestName)
	orig, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mpath, bytes.Replace(orig, []byte("K-2026-117"), []byte("K-2026-118"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	o.write(t, "en")
	page := readPage(t, o.out, "pages/"+o.ids[0]+".html")
	if !strings.Contains(page, "manifest.json in this folder is not the one recorded") || strings.Contains(page, "banner ok") {
		t.Errorf("an edited manifest.json is not flagged:\n%s", page)
	}
	if index := readPage(t, o.out, IndexName); !strings.Contains(index, "Changed after opening") {
		t.Errorf("index.html does not flag the edited manifest.json")
	}

	// A signature in custody.json that does not verify over manifest.json.
	if err := os.WriteFile(mpath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	cpath := filepath.Join(dir, review.CustodyJSONName)
	var c review.Custody
	data, err := os.ReadFile(cpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(c.Caseworker.Signature)
	sig[0] ^= 1
	c.Caseworker.Signature = base64.StdEncoding.EncodeToString(sig)
	data, _ = json.Marshal(&c)
	if err := os.WriteFile(cpath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	o.write(t, "en")
	page = readPage(t, o.out, "pages/"+o.ids[0]+".html")
	if !strings.Contains(page, "Bad signature: manifest.json in this folder does not match") || strings.Contains(page, "banner ok") {
		t.Errorf("a signature that no longer verifies is not flagged")
	}
	if index := readPage(t, o.out, IndexName); !strings.Contains(index, `<span class="bad">Bad signature</span>`) {
		t.Errorf("index.html does not show the bad signature in red")
	}
}

func TestWriteWitnessState(t *testing.T) {
	o := threeSubmissions(t)
	delete(o.opened.Entries, o.ids[0])
	moved := o.opened.Entries[o.ids[1]]
	moved.Index = 7
	o.opened.Entries[o.ids[1]] = moved
	other := o.opened.Entries[o.ids[2]]
	other.LeafHash = base64.StdEncoding.EncodeToString(make([]byte, 32))
	o.opened.Entries[o.ids[2]] = other
	o.write(t, "en")
	if p := readPage(t, o.out, "pages/"+o.ids[0]+".html"); !strings.Contains(p, "not in this machine&#39;s record of opened submissions") {
		t.Errorf("a submission missing from opened.json is not flagged")
	}
	if p := readPage(t, o.out, "pages/"+o.ids[1]+".html"); !strings.Contains(p, "recorded a different intake log position") {
		t.Errorf("a submission whose log index differs from opened.json is not flagged")
	}
	if p := readPage(t, o.out, "pages/"+o.ids[2]+".html"); !strings.Contains(p, "recorded a different intake log position") {
		t.Errorf("a submission whose leaf hash differs from opened.json is not flagged")
	}
	index := readPage(t, o.out, IndexName)
	for _, want := range []string{"Not opened on this machine", "Log index differs from this machine&#39;s record"} {
		if !strings.Contains(index, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}

	// A machine that has no checkpoint (or one of another log) vouches
	// for no bundle.
	o.log = nil
	o.write(t, "en")
	index = readPage(t, o.out, IndexName)
	if !strings.Contains(index, "This machine has no verified checkpoint") || !strings.Contains(index, "Not from the intake log this machine trusts") {
		t.Errorf("index.html vouches for bundles without a checkpoint")
	}
}

func TestWriteRemovesStalePages(t *testing.T) {
	o := threeSubmissions(t)
	o.write(t, "en")
	if err := os.RemoveAll(filepath.Join(o.out, o.ids[1])); err != nil {
		t.Fatal(err)
	}
	// Leftovers of an interrupted write, and a page of the reviewer's own
	// that is not named like a submission's: only the former go.
	for _, name := range []string{"pages/" + tmpPrefix + "x", tmpPrefix + "y", "index-7.html", "pages/mine.html"} {
		if err := os.WriteFile(filepath.Join(o.out, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if sum := o.write(t, "en"); sum.Submissions != 2 {
		t.Fatalf("%d submissions, want 2", sum.Submissions)
	}
	for name, want := range map[string]bool{
		"pages/" + o.ids[0] + ".html": true, "pages/" + o.ids[1] + ".html": false,
		"pages/" + tmpPrefix + "x": false, tmpPrefix + "y": false, "index-7.html": false, "pages/mine.html": true,
	} {
		if _, err := os.Stat(filepath.Join(o.out, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
}

func TestWriteNoOutDir(t *testing.T) {
	_, err := Write(filepath.Join(t.TempDir(), "missing"), Options{Lang: language.English})
	if !errors.Is(err, ErrNoOutDir) {
		t.Fatalf("Write into a missing directory: %v, want ErrNoOutDir", err)
	}
}

func TestWriteEmpty(t *testing.T) {
	out := t.TempDir()
	if _, err := Write(out, Options{Lang: language.English}); err != nil {
		t.Fatal(err)
	}
	index := readPage(t, out, IndexName)
	checkInert(t, IndexName, index)
	if !strings.Contains(index, "No submission has been opened into this folder yet.") {
		t.Errorf("an empty view does not say so")
	}
}

// Links planted in OUTDIR are replaced or refused, never written through.
func TestWriteDoesNotFollowLinks(t *testing.T) {
	o := threeSubmissions(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim.html")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(o.out, IndexName)); err != nil {
		t.Fatal(err)
	}
	o.write(t, "en")
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Errorf("Write wrote through a link at index.html")
	}
	if fi, err := os.Lstat(filepath.Join(o.out, IndexName)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("index.html is not a regular file after Write: %v", err)
	}

	if err := os.RemoveAll(filepath.Join(o.out, pagesDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(o.out, pagesDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(o.out, Options{Lang: language.English, Opened: o.opened, Log: o.log}); err == nil {
		t.Errorf("Write through a pages/ link to another directory succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("Write put %d files in the directory pages/ links to, want none", len(entries)-1)
	}
}

func TestFileHref(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ name, want string }{
		{"photo.png", id + "/photo.png"},
		{"면담 녹음.wav", id + "/%EB%A9%B4%EB%8B%B4%20%EB%85%B9%EC%9D%8C.wav"},
		{"javascript:alert(1).png", id + "/javascript%3Aalert%281%29.png"},
		{"a?b#c.txt", id + "/a%3Fb%23c.txt"},
		{"%2e%2e.txt", id + "/%252e%252e.txt"},
		{"dir/sub/file.txt", id + "/dir/sub/file.txt"},
	} {
		rel, ok := localPath(tc.name)
		if !ok {
			t.Errorf("localPath(%q) refused", tc.name)
			continue
		}
		if got := fileHref(id, rel); got != tc.want {
			t.Errorf("fileHref(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{"", ".", "..", "../x", "a/../../x", "/etc/passwd", `..\x`, "a//b", "x\x00y", "rtl\u202egpj.exe"} {
		if rel, ok := localPath(name); ok {
			t.Errorf("localPath(%q) = %q, want refused", name, rel)
		}
	}
}

func TestFileKind(t *testing.T) {
	for _, tc := range []struct{ name, mediaType, want string }{
		{"a.wav", "audio/wav", kindAudio},
		{"a.WAV", "audio/wav", kindAudio},
		{"a.mp4", "video/mp4", kindVideo},
		{"a.png", "image/png", kindImage},
		{"a.txt", "text/plain", kindText},
		{"a.pdf", "application/pdf", kindOther},
		// The manifest's media type cannot make a page embed what the
		// browser would open as something else, or link active content.
		{"a.html", "text/plain", kindActive},
		{"a.svg", "image/png", kindActive},
		{"noextension", "audio/wav", kindActive},
		{"a.png", "text/html", kindOther},
		{"a.txt", "application/octet-stream", kindOther},
	} {
		if got := fileKind(tc.name, tc.mediaType); got != tc.want {
			t.Errorf("fileKind(%q, %q) = %s, want %s", tc.name, tc.mediaType, got, tc.want)
		}
	}
}

// hostile is metadata an attacker controlling a caseworker device, or the
// disk, could put in custody.json.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`' onmouseover='alert(1)`,
	`javascript:alert(1)`,
	"\u202egpj.exe",
	"\u2066rtl\u2069 isolate",
	"\x1b[31mred\x1b[0m\r\nInjected: line",
	"</title><script>x</script>",
	"{{.ID}} {{T \"Case\"}}",
	"%s %d %!v",
	"a\x00b\xff\xfe",
	strings.Repeat("긴 사건 번호 ", 200),
}

var hostileNames = []string{
	"../../../etc/passwd", "/etc/passwd", `..\..\x.wav`, "javascript:alert(1).png",
	"x.html", "x.svg", "evil", "a/../../b.wav", "%2e%2e/%2e%2e/x.txt", "a?b.wav", "a#b.png",
	"\u202egpj.exe", "x\".png", "x'><script>.txt", "C:\\Windows\\x.wav", "//host/share.wav",
}

func TestWriteHostileMetadata(t *testing.T) {
	out := t.TempDir()
	for i, s := range hostile {
		id := fmt.Sprintf("%032x", i+1)
		name := hostileNames[i%len(hostileNames)]
		m := &envelope.Manifest{Version: 1, Case: s, InterviewDate: s, Language: s, Consent: s, Created: s,
			Files: []envelope.File{{Name: name, Size: 1, SHA256: s, MediaType: s}}}
		var files []envelope.File
		for _, n := range hostileNames {
			files = append(files, envelope.File{Name: n, Size: 1, SHA256: s, MediaType: "audio/wav"})
		}
		writeCustody(t, out, id, m, files, review.CustodySignature{Status: s, Name: s, Key: s, Fingerprint: s, Signature: s})
		// Files that exist where a hostile name points, so links would be
		// made if the names were not refused.
		os.WriteFile(filepath.Join(out, id, "evil"), []byte("<script>alert(1)</script>"), 0o600)
		os.WriteFile(filepath.Join(out, id, "x.html"), []byte("<script>alert(1)</script>"), 0o600)
	}
	sum, err := Write(out, Options{Lang: language.English, Opened: &state.Opened{}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Submissions != len(hostile) {
		t.Fatalf("%d submissions written, want %d (skipped: %v)", sum.Submissions, len(hostile), sum.Skipped)
	}
	index := readPage(t, out, IndexName)
	checkInert(t, IndexName, index)
	if !strings.Contains(index, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the script tag in a case reference is not shown escaped")
	}
	for i := range hostile {
		id := fmt.Sprintf("%032x", i+1)
		page := readPage(t, out, "pages/"+id+".html")
		checkInert(t, id, page)
		if strings.Contains(page, `href="../`+id+`/x.html"`) || strings.Contains(page, `/evil"`) {
			t.Errorf("%s links a file a browser would run", id)
		}
	}
}

func FuzzWrite(f *testing.F) {
	for i, s := range hostile {
		f.Add(s, hostileNames[i%len(hostileNames)], "audio/wav", "known")
	}
	f.Fuzz(func(t *testing.T, text, name, mediaType, status string) {
		out := t.TempDir()
		const id = "00000000000000000000000000000001"
		m := &envelope.Manifest{Version: 1, Case: text, InterviewDate: text, Language: text, Consent: text, Created: text,
			Files: []envelope.File{{Name: name, Size: 1, SHA256: text, MediaType: mediaType}}}
		writeCustody(t, out, id, m, []envelope.File{{Name: name, Size: 1, SHA256: text, MediaType: mediaType}},
			review.CustodySignature{Status: status, Name: text, Key: text, Fingerprint: text, Signature: text})
		if rel, ok := localPath(name); ok {
			p := filepath.Join(out, id, filepath.FromSlash(rel))
			if os.MkdirAll(filepath.Dir(p), 0o700) == nil {
				os.WriteFile(p, []byte(text), 0o600)
			}
		}
		if _, err := Write(out, Options{Lang: language.Korean}); err != nil {
			t.Fatal(err)
		}
		checkInert(t, IndexName, readPage(t, out, IndexName))
		checkInert(t, "page", readPage(t, out, "pages/"+id+".html"))
	})
}

func TestWriteManySubmissions(t *testing.T) {
	const n = 10000
	out := t.TempDir()
	opened := &state.Opened{Entries: map[string]state.OpenedLeaf{}}
	for i := range n {
		id := fmt.Sprintf("%032x", i+1)
		m := &envelope.Manifest{Version: 1, Case: fmt.Sprintf("K-2026-%04d", i%3000), InterviewDate: "2026-11-20", Language: "ko", Created: "2026-11-21",
			Files: []envelope.File{{Name: "interview.wav", Size: 1 << 20, SHA256: strings.Repeat("ab", 32), MediaType: "audio/wav"}}}
		writeCustody(t, out, id, m, m.Files, review.CustodySignature{Status: "unsigned"})
		opened.Entries[id] = state.OpenedLeaf{Index: 3}
	}
	sum, err := Write(out, Options{Lang: language.Korean, Opened: opened})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Submissions != n || sum.Cases != 3000 {
		t.Fatalf("summary %+v, want %d submissions in 3000 cases", sum, n)
	}
	if want := (n + PageSize - 1) / PageSize; sum.IndexPages < want {
		t.Errorf("%d index pages, want at least %d", sum.IndexPages, want)
	}
	total := 0
	for i := 1; i <= sum.IndexPages; i++ {
		name := IndexName
		if i > 1 {
			name = fmt.Sprintf("index-%d.html", i)
		}
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 2<<20 {
			t.Errorf("%s is %d bytes, want at most 2 MiB", name, fi.Size())
		}
		page := readPage(t, out, name)
		rows := strings.Count(page, `class="button" href="pages/`)
		if rows > PageSize {
			t.Errorf("%s lists %d submissions, want at most %d", name, rows, PageSize)
		}
		total += rows
		if i < sum.IndexPages && !strings.Contains(page, fmt.Sprintf(`href="index-%d.html"`, i+1)) {
			t.Errorf("%s has no link to the next page", name)
		}
	}
	if total != n {
		t.Errorf("the index pages list %d submissions, want %d", total, n)
	}
	pages, err := os.ReadDir(filepath.Join(out, pagesDir))
	if err != nil || len(pages) != n {
		t.Errorf("%d submission pages (%v), want %d", len(pages), err, n)
	}
}

// A submission of many large text files does not make a page of all of
// them: the previews stop at maxTextPerPage, the rest are linked.
func TestWriteBoundsTextPreviews(t *testing.T) {
	out := t.TempDir()
	const id = "00000000000000000000000000000001"
	big := bytes.Repeat([]byte("증언 기록 "), maxTextPreview/5)
	var files []envelope.File
	for i := range 40 {
		files = append(files, envelope.File{Name: fmt.Sprintf("part%02d.txt", i), Size: int64(len(big)), SHA256: strings.Repeat("ab", 32), MediaType: "text/plain"})
	}
	m := &envelope.Manifest{Version: 1, Case: "K-1", Created: "2026-11-21", Files: files}
	writeCustody(t, out, id, m, files, review.CustodySignature{Status: "unsigned"})
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(out, id, f.Name), big, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Write(out, Options{Lang: language.English}); err != nil {
		t.Fatal(err)
	}
	page := readPage(t, out, "pages/"+id+".html")
	if len(page) > maxTextPerPage+256<<10 {
		t.Errorf("the page is %d bytes, want at most about %d", len(page), maxTextPerPage)
	}
	if n := strings.Count(page, ">Open the file</a>"); n != len(files) {
		t.Errorf("%d files linked, want all %d", n, len(files))
	}
	if n := strings.Count(page, "<pre>"); n == 0 || n == len(files) {
		t.Errorf("%d of %d text files previewed, want some but not all", n, len(files))
	}
}
