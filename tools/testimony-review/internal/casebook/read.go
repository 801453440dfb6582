package casebook

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/strictjson"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// Limits of what the page writer reads from an opened submission.
const (
	// maxCustodySize bounds custody.json: a manifest (at most
	// envelope.DefaultLimits.MaxManifestSize) plus the log proof.
	maxCustodySize = 8 << 20
	// maxTextPreview is how much of a text file a page shows inline, and
	// maxTextPerPage how much of all its text files together; the rest
	// are linked only.
	maxTextPreview = 64 << 10
	maxTextPerPage = 1 << 20
	// maxDisplayRunes bounds one metadata string on a page.
	maxDisplayRunes = 500
)

// signedPrefix is what a caseworker's device signs before manifest.json's
// bytes (crypto/envelope's format, described in custody.go).
const signedPrefix = "testimony manifest v1\n"

// Signer states, as the templates test them.
const (
	signerKnown    = "known"
	signerUnknown  = "unknown"
	signerUnsigned = "unsigned"
	// signerBad means the signature recorded in custody.json no longer
	// verifies over manifest.json as it is on disk now.
	signerBad = "bad"
)

// File kinds decide how a page shows a file.
const (
	kindAudio = "audio"
	kindVideo = "video"
	kindImage = "image"
	kindText  = "text"
	kindOther = "other"
	// kindActive is a file a browser would run code from if opened
	// directly (HTML, SVG, XML): listed without a link.
	kindActive = "active"
)

// Witness states of one submission against this machine's opened.json.
const (
	witnessRecorded   = "recorded"
	witnessUnrecorded = "unrecorded"
	witnessMismatch   = "mismatch"
)

// submission is everything a page shows about one opened submission. Text
// from the sender is cleaned (see clean) but not escaped: html/template
// escapes it for the context it lands in.
type submission struct {
	ID      string
	Page    string // the page's path relative to OUTDIR
	Case    string // "" when there is none
	caseKey string // the raw case reference, for grouping

	HasManifest                                   bool
	InterviewDate, Language, Consent, Created     string
	Received, Opened                              string
	Index, CheckpointSize                         int64
	Origin, Root                                  string
	logKey                                        string
	Signer, SignerName, Fingerprint, DeviceKey    string
	Altered                                       bool // manifest.json differs from custody.json
	Witness                                       string
	Files                                         []file
	TotalSize                                     int64
	Audio, Video, Images, Documents, MissingFiles int
}

type file struct {
	Name      string
	Href      string // relative to OUTDIR; "" when the file gets no link
	Kind      string
	MediaType string
	Size      int64
	SHA256    string
	Missing   bool
	Text      string
	Truncated bool
}

// readSubmission builds the page model of OUTDIR/<id> from its custody.json
// and manifest.json, both read through root, which confines every path to
// that directory and refuses links out of it.
func readSubmission(root *os.Root, id string, opened *state.Opened) (*submission, error) {
	data, err := readRegular(root, review.CustodyJSONName, maxCustodySize)
	if err != nil {
		return nil, err
	}
	var c review.Custody
	if err := strictjson.Decode(data, &c); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", review.CustodyJSONName, err)
	}
	if c.Version != review.CustodyVersion || c.ID != id {
		return nil, fmt.Errorf("failed to parse %s: version %d for submission %q, want version %d for %s", review.CustodyJSONName, c.Version, c.ID, review.CustodyVersion, id)
	}
	s := &submission{
		ID:             id,
		Page:           pagesDir + "/" + id + ".html",
		Received:       clean(c.Received),
		Opened:         clean(openedTime(c.Opened)),
		Index:          c.Log.Index,
		CheckpointSize: c.Log.Size,
		Origin:         clean(c.Log.Origin),
		Root:           clean(c.Log.Root),
		logKey:         c.Log.Key,
		Signer:         c.Caseworker.Status,
		SignerName:     clean(c.Caseworker.Name),
		Fingerprint:    clean(c.Caseworker.Fingerprint),
		DeviceKey:      clean(c.Caseworker.Key),
	}
	switch s.Signer {
	case signerKnown, signerUnknown, signerUnsigned:
	default:
		s.Signer = signerBad
	}
	if m := c.Manifest; m != nil {
		s.HasManifest = true
		s.caseKey = m.Case
		s.Case = clean(m.Case)
		s.InterviewDate, s.Language = clean(m.InterviewDate), clean(m.Language)
		s.Consent, s.Created = clean(m.Consent), clean(m.Created)
		s.Altered = !manifestMatches(root, &c)
		if !s.Altered && c.Caseworker.Key != "" && !signatureVerifies(root, &c) {
			s.Signer = signerBad
		}
	}
	switch e, ok := opened.Entries[id]; {
	case !ok:
		s.Witness = witnessUnrecorded
	case e.Index != c.Log.Index, e.LeafHash != "" && e.LeafHash != c.Log.LeafHash,
		opened.LogKey != "" && opened.LogKey != c.Log.Key:
		s.Witness = witnessMismatch
	default:
		s.Witness = witnessRecorded
	}
	textBudget := maxTextPerPage
	for _, f := range c.Files {
		v := newFile(root, id, f, &textBudget)
		s.TotalSize += f.Size
		switch {
		case v.Missing:
			s.MissingFiles++
		case v.Kind == kindAudio:
			s.Audio++
		case v.Kind == kindVideo:
			s.Video++
		case v.Kind == kindImage:
			s.Images++
		default:
			s.Documents++
		}
		s.Files = append(s.Files, v)
	}
	return s, nil
}

// openedTime shows custody.json's RFC 3339 opening time as people read
// it; anything else as it is.
func openedTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// manifestMatches reports whether manifest.json on disk is the one
// custody.json recorded when the submission was opened.
func manifestMatches(root *os.Root, c *review.Custody) bool {
	data, err := readRegular(root, review.ManifestName, envelope.DefaultLimits.MaxManifestSize)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != c.ManifestSHA256 {
		return false
	}
	m, err := envelope.ParseManifest(data)
	return err == nil && reflect.DeepEqual(m, c.Manifest)
}

// signatureVerifies checks the caseworker's signature recorded in
// custody.json over manifest.json as it is on disk: what the page says
// about who signed must still hold for the bytes in the folder.
func signatureVerifies(root *os.Root, c *review.Custody) bool {
	data, err := readRegular(root, review.ManifestName, envelope.DefaultLimits.MaxManifestSize)
	if err != nil {
		return false
	}
	pub, err := envelope.ParseDeviceKey(c.Caseworker.Key)
	if err != nil {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(c.Caseworker.Signature)
	if err != nil {
		return false
	}
	return ed25519.Verify(pub, append([]byte(signedPrefix), data...), sig)
}

func newFile(root *os.Root, id string, f envelope.File, textBudget *int) file {
	v := file{
		Name:      clean(f.Name),
		MediaType: clean(f.MediaType),
		Size:      f.Size,
		SHA256:    clean(f.SHA256),
		Kind:      fileKind(f.Name, f.MediaType),
	}
	rel, ok := localPath(f.Name)
	if !ok {
		// Open never writes such a name; whatever custody.json says, there
		// is no plain file by that name in the folder to link.
		v.Missing = true
		return v
	}
	fi, err := root.Lstat(rel)
	if err != nil || !fi.Mode().IsRegular() {
		v.Missing = true
		return v
	}
	if v.Kind == kindActive {
		return v
	}
	v.Href = fileHref(id, rel)
	if v.Kind == kindText {
		if *textBudget < maxTextPreview {
			v.Kind = kindOther
			return v
		}
		v.Text, v.Truncated = readText(root, rel)
		*textBudget -= len(v.Text)
	}
	return v
}

// localPath turns a file name from custody.json into a path inside the
// submission's directory, refusing anything that is not plainly there.
func localPath(name string) (string, bool) {
	if name == "" || name == "." || !fs.ValidPath(name) || strings.Contains(name, `\`) {
		return "", false
	}
	for _, r := range name {
		if unicode.IsControl(r) || isBidiControl(r) {
			return "", false
		}
	}
	return name, true
}

// fileHref is the link from OUTDIR to a file of submission id: every
// component percent-escaped except unreserved characters, so no name can
// become a scheme, a query, a fragment or a parent directory.
func fileHref(id, rel string) string {
	var b strings.Builder
	b.WriteString(id)
	for _, seg := range strings.Split(rel, "/") {
		b.WriteByte('/')
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	return b.String()
}

// passiveExtensions are the file name extensions a browser shows or plays
// without running anything from the file, by kind. A browser picks how to
// open a file:// link from its extension, whatever the manifest claims, so
// both must agree before a file is embedded or linked.
var passiveExtensions = map[string]string{
	".aac": kindAudio, ".amr": kindAudio, ".flac": kindAudio, ".m4a": kindAudio, ".mp3": kindAudio,
	".oga": kindAudio, ".ogg": kindAudio, ".opus": kindAudio, ".wav": kindAudio,
	".3gp": kindVideo, ".m4v": kindVideo, ".mov": kindVideo, ".mp4": kindVideo, ".webm": kindVideo,
	".gif": kindImage, ".jpeg": kindImage, ".jpg": kindImage, ".png": kindImage, ".webp": kindImage,
	".csv": kindText, ".md": kindText, ".txt": kindText,
}

// activeExtensions are opened by browsers as documents that may run
// script or load other files.
var activeExtensions = map[string]bool{
	".htm": true, ".html": true, ".xhtml": true, ".xht": true, ".svg": true, ".svgz": true,
	".xml": true, ".xsl": true, ".xslt": true, ".mht": true, ".mhtml": true, ".shtml": true,
}

func fileKind(name, mediaType string) string {
	ext := strings.ToLower(path.Ext(name))
	if activeExtensions[ext] || ext == "" {
		// No extension: the browser sniffs, and may find HTML.
		return kindActive
	}
	kind, ok := passiveExtensions[ext]
	if !ok {
		return kindOther
	}
	major, _, _ := strings.Cut(mediaType, "/")
	if kind == kindImage && major == "image" || kind == kindAudio && major == "audio" ||
		kind == kindVideo && major == "video" || kind == kindText && major == "text" {
		return kind
	}
	return kindOther
}

// readText returns the start of a text file for showing inline.
func readText(root *os.Root, rel string) (string, bool) {
	f, err := root.Open(rel)
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTextPreview+1))
	if err != nil {
		return "", false
	}
	truncated := len(data) > maxTextPreview
	if truncated {
		data = data[:maxTextPreview]
		// Do not cut a character in half.
		for i := 0; i < utf8.UTFMax-1 && len(data) > 0; i++ {
			if r, size := utf8.DecodeLastRune(data); r != utf8.RuneError || size != 1 {
				break
			}
			data = data[:len(data)-1]
		}
	}
	return cleanText(string(data)), truncated
}

// readRegular reads a regular file of at most max bytes through root.
func readRegular(root *os.Root, name string, max int64) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("failed to read %s: not a regular file", name)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, max)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	return data, nil
}

// clean makes sender text safe to show: invalid UTF-8, control characters
// and invisible bidirectional-text controls become U+FFFD, so a name cannot
// reorder or hide what is around it, and the length is bounded. Escaping
// is html/template's job.
func clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if n == maxDisplayRunes {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) && r != ' ' || isBidiControl(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// cleanText is clean for the content of a text file: line breaks and tabs
// stay, and the length is bounded by the caller.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r == '\r' {
			return -1
		}
		if !unicode.IsPrint(r) && r != ' ' && r != '\u3000' || isBidiControl(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func isBidiControl(r rune) bool {
	return r == '\u061C' || r == '\u200E' || r == '\u200F' ||
		'\u202A' <= r && r <= '\u202E' || '\u2066' <= r && r <= '\u2069'
}

// listSubmissions returns the ids of the directories in outDir named like
// submissions, skipping links and everything else.
func listSubmissions(outDir string) ([]string, error) {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", outDir, err)
	}
	var list []string
	for _, e := range entries {
		if e.Type().IsDir() && ids.ValidSubmission(e.Name()) {
			list = append(list, e.Name())
		}
	}
	return list, nil
}
