// Package casebook writes the reviewer's case view: static HTML pages in
// the output directory of "testimony-review open", which a reviewer opens
// in any browser, without a server and without a network. index.html lists
// every opened submission grouped by case, newest first, with the
// verification state of each bundle; pages/<id>.html shows one submission:
// its metadata, who signed it, its place in the intake log, and its files,
// with recordings and pictures playable in place through relative links.
//
// Pages are built only from what "open" verified and wrote: custody.json
// and manifest.json in each OUTDIR/<id>, and the reviewer's state
// (opened.json, and the checkpoint in log.json). manifest.json is checked
// against custody.json, and the caseworker's signature against
// manifest.json, each time the pages are written, so a page never vouches
// for metadata edited after opening.
//
// # Security
//
// Everything from a submission is untrusted. Text goes through
// html/template's contextual escaping after control and bidirectional-text
// characters are replaced; links are relative, built from the submission's
// id and a percent-escaped local file name, so no name can leave its
// folder or become a scheme. Files a browser would run code from (HTML,
// SVG, XML, or no extension at all) are listed without a link. Every page
// carries a Content-Security-Policy that allows no script and loads only
// files (one stylesheet, images and media); pages never reference anything
// outside OUTDIR.
//
// Messages come from one JSON catalogue per language (messages/*.json),
// English source strings as keys; see Catalogue.
//
// # Caveats
//
// File hashes shown are the ones computed while opening; the files are not
// hashed again each time the pages are written (that would read every
// recording after every bundle). custody.txt says how to check one.
package casebook

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/catalogue"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
)

// Names of what Write puts in the output directory.
const (
	IndexName      = "index.html"
	StylesheetName = "style.css"
	// pagesDir holds one page per submission. It cannot clash with a
	// submission's directory, whose name is 32 hexadecimal digits.
	pagesDir = "pages"
)

// PageSize is the number of submissions on one index page; index.html is
// the first, index-2.html the second, and so on. A case is never split.
const PageSize = 1000

//go:embed messages/*.json
var messagesFS embed.FS

//go:embed assets/*.html assets/style.css
var assetsFS embed.FS

// Messages is the catalogue of the case view, English first.
var Messages = mustLoad()

func mustLoad() *catalogue.Catalogue {
	c, err := catalogue.Load(messagesFS, "messages", language.English)
	if err != nil {
		panic(err) // embedded files, checked by the tests
	}
	return c
}

// ErrNoOutDir means the output directory does not exist.
var ErrNoOutDir = errors.New("output directory does not exist")

// Options says what to write the pages with.
type Options struct {
	// Lang is the language of the pages, one of Messages.Tags().
	Lang language.Tag
	// Opened is the content of opened.json: the log and the leaf each
	// submission was opened from. Nil means none.
	Opened *state.Opened
	// Log is the content of log.json; its checkpoint is what this machine
	// witnessed. May be nil.
	Log *state.Log
}

// Summary says what Write wrote.
type Summary struct {
	Submissions, Cases, IndexPages int
	// Skipped are the directories named like submissions that could not be
	// read (no custody.json, or a damaged one), each with the reason.
	Skipped []error
}

// Write (re)writes the case view of outDir: index.html (and further index
// pages), style.css and pages/<id>.html for every opened submission, and
// removes pages of submissions no longer there. Every file is replaced
// atomically and created 0600, since pages name cases; nothing is written
// outside outDir or through a link.
func Write(outDir string, opt Options) (*Summary, error) {
	root, err := os.OpenRoot(outDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoOutDir, outDir)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open the output directory: %w", err)
	}
	defer root.Close()

	ids, err := listSubmissions(outDir)
	if err != nil {
		return nil, err
	}
	opened := opt.Opened
	if opened == nil {
		opened = &state.Opened{}
	}
	sum := &Summary{}
	var subs []*submission
	for _, id := range ids {
		s, err := readOne(root, id, opened)
		if err != nil {
			sum.Skipped = append(sum.Skipped, fmt.Errorf("submission %s: %w", id, err))
			continue
		}
		subs = append(subs, s)
	}
	v := newView(subs, opt)
	sum.Submissions, sum.Cases, sum.IndexPages = len(subs), v.Cases, len(v.pages)

	tmpl, err := parseTemplates(opt.Lang)
	if err != nil {
		return nil, err
	}
	w := &writer{root: root}
	style, err := assetsFS.ReadFile("assets/style.css")
	if err != nil {
		return nil, err
	}
	if err := w.write(StylesheetName, style); err != nil {
		return nil, err
	}
	if err := root.MkdirAll(pagesDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", pagesDir, err)
	}
	keep := map[string]bool{}
	for _, p := range v.pages {
		if err := w.render(tmpl, "index", p.Name, p); err != nil {
			return nil, err
		}
	}
	for _, s := range subs {
		page := submissionPage{view: v, Base: "../", Sub: s, Back: v.pageOf[s.ID]}
		if err := w.render(tmpl, "submission", s.Page, page); err != nil {
			return nil, err
		}
		keep[path.Base(s.Page)] = true
	}
	if err := w.removeStale(len(v.pages), keep); err != nil {
		return nil, err
	}
	return sum, nil
}

// readOne reads one submission's directory through a root confined to it.
func readOne(root *os.Root, id string, opened *state.Opened) (*submission, error) {
	fi, err := root.Lstat(id)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("not a directory")
	}
	sub, err := root.OpenRoot(id)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	return readSubmission(sub, id, opened)
}

// view is what every page shares.
type view struct {
	Lang      string
	Witnessed *intakelog.Checkpoint
	Bundles   []bundleRow
	Total     int
	// Cases counts case references; submissions without one are not a
	// case.
	Cases  int
	pages  []*indexPage
	pageOf map[string]string // submission id -> index page name
}

type bundleRow struct {
	Size, Count int
	Origin      string
	// State is "witnessed" (this machine's checkpoint extends it),
	// "ahead" (newer than what this machine recorded) or "otherlog".
	State string
}

type caseGroup struct {
	Anchor   string
	Case     string // cleaned; "" for submissions without a case reference
	Count    int
	Subs     []*submission
	Newest   *submission
	Problems int
}

type indexPage struct {
	*view
	// Base leads from the page to OUTDIR.
	Base       string
	Name       string
	Number, Of int
	Prev, Next string
	Groups     []*caseGroup
}

type submissionPage struct {
	*view
	Base string
	Sub  *submission
	Back string
}

func newView(subs []*submission, opt Options) *view {
	v := &view{Lang: opt.Lang.String(), Total: len(subs), pageOf: map[string]string{}}
	var witnessKey string
	if opt.Log != nil && opt.Log.Checkpoint != "" {
		if c, err := intakelog.OpenCheckpoint([]byte(opt.Log.Checkpoint), opt.Log.LogKey); err == nil {
			v.Witnessed, witnessKey = &c, opt.Log.LogKey
		}
	}

	// Newest first: by the date the server received it, then by log index.
	slices.SortFunc(subs, func(a, b *submission) int {
		return cmp.Or(strings.Compare(b.Received, a.Received), cmp.Compare(b.Index, a.Index), strings.Compare(a.ID, b.ID))
	})

	type bundleKey struct {
		key, root string
		size      int64
	}
	bundles := map[bundleKey]*bundleRow{}
	groups := map[string]*caseGroup{}
	var order []*caseGroup
	for _, s := range subs {
		bk := bundleKey{s.logKey, s.Root, s.CheckpointSize}
		b := bundles[bk]
		if b == nil {
			b = &bundleRow{Size: int(s.CheckpointSize), Origin: s.Origin}
			switch {
			case v.Witnessed == nil || s.logKey != witnessKey:
				b.State = "otherlog"
			case s.CheckpointSize > v.Witnessed.Size:
				b.State = "ahead"
			default:
				b.State = "witnessed"
			}
			bundles[bk] = b
		}
		b.Count++
		g := groups[s.caseKey]
		if g == nil {
			g = &caseGroup{Case: s.Case, Newest: s}
			groups[s.caseKey] = g
			order = append(order, g)
		}
		g.Subs = append(g.Subs, s)
		g.Count++
		if s.Altered || s.Signer != signerKnown || s.Witness != witnessRecorded || s.MissingFiles > 0 {
			g.Problems++
		}
	}
	for _, g := range order {
		if g.Case != "" {
			v.Cases++
		}
	}
	for _, b := range bundles {
		v.Bundles = append(v.Bundles, *b)
	}
	slices.SortFunc(v.Bundles, func(a, b bundleRow) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Origin, b.Origin))
	})

	// Pages of whole cases, at least one page even when there is nothing.
	page := &indexPage{view: v, Name: IndexName}
	v.pages = []*indexPage{page}
	n := 0
	for i, g := range order {
		if n > 0 && n+g.Count > PageSize {
			page = &indexPage{view: v, Name: fmt.Sprintf("index-%d.html", len(v.pages)+1)}
			v.pages = append(v.pages, page)
			n = 0
		}
		g.Anchor = fmt.Sprintf("case-%d", i+1)
		page.Groups = append(page.Groups, g)
		n += g.Count
		for _, s := range g.Subs {
			v.pageOf[s.ID] = "../" + page.Name + "#" + g.Anchor
		}
	}
	for i, p := range v.pages {
		p.Number, p.Of = i+1, len(v.pages)
		if i > 0 {
			p.Prev = v.pages[i-1].Name
		}
		if i+1 < len(v.pages) {
			p.Next = v.pages[i+1].Name
		}
	}
	return v
}

// templates caches the parsed templates of each language.
var templates struct {
	sync.Mutex
	byLang map[language.Tag]*template.Template
}

func parseTemplates(lang language.Tag) (*template.Template, error) {
	templates.Lock()
	defer templates.Unlock()
	if t := templates.byLang[lang]; t != nil {
		return t, nil
	}
	p := Messages.Printer(lang)
	t, err := template.New("").Funcs(funcs(p)).ParseFS(assetsFS, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("failed to parse page templates: %w", err)
	}
	if templates.byLang == nil {
		templates.byLang = map[language.Tag]*template.Template{}
	}
	templates.byLang[lang] = t
	return t, nil
}

// funcs are the template functions. T is the only way text reaches a
// page: the key test walks the templates for its string arguments.
func funcs(p *message.Printer) template.FuncMap {
	return template.FuncMap{
		"T":    func(key string, args ...any) string { return p.Sprintf(key, args...) },
		"size": humanSize,
	}
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// writer replaces files under a root atomically.
type writer struct {
	root *os.Root
	buf  bytes.Buffer
}

func (w *writer) render(t *template.Template, name, file string, data any) error {
	w.buf.Reset()
	if err := t.ExecuteTemplate(&w.buf, name, data); err != nil {
		return fmt.Errorf("failed to render %s: %w", file, err)
	}
	return w.write(file, w.buf.Bytes())
}

// tmpPrefix marks a page being written; removeStale deletes leftovers.
const tmpPrefix = ".casebook-"

func (w *writer) write(name string, data []byte) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), tmpPrefix+hex.EncodeToString(rnd[:]))
	f, err := w.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The destination may be a link planted in OUTDIR: rename
		// replaces the link itself, never what it points to.
		err = w.root.Rename(tmp, name)
	}
	if err != nil {
		w.root.Remove(tmp)
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	return nil
}

// removeStale deletes pages of submissions that are gone, index pages past
// the last one, and leftovers of an interrupted write.
func (w *writer) removeStale(indexPages int, keep map[string]bool) error {
	entries, err := fs.ReadDir(w.root.FS(), pagesDir)
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", pagesDir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) || strings.HasSuffix(name, ".html") && !keep[name] && isSubmissionPage(name) {
			if err := w.root.Remove(path.Join(pagesDir, name)); err != nil {
				return fmt.Errorf("failed to remove the stale page %s: %w", name, err)
			}
		}
	}
	top, err := fs.ReadDir(w.root.FS(), ".")
	if err != nil {
		return fmt.Errorf("failed to list the output directory: %w", err)
	}
	for _, e := range top {
		name := e.Name()
		var n int
		stale := strings.HasPrefix(name, tmpPrefix)
		if _, err := fmt.Sscanf(name, "index-%d.html", &n); err == nil && name == fmt.Sprintf("index-%d.html", n) && n > indexPages {
			stale = true
		}
		if stale {
			if err := w.root.Remove(name); err != nil {
				return fmt.Errorf("failed to remove the stale page %s: %w", name, err)
			}
		}
	}
	return nil
}

func isSubmissionPage(name string) bool {
	id, ok := strings.CutSuffix(name, ".html")
	return ok && len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
}
