package app

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/testimony-ngo/testimony/tools/internal/catalogue"
)

//go:embed messages/*.json
var messagesFS embed.FS

//go:embed assets/*.html assets/app.css assets/app.js
var assetsFS embed.FS

// Messages is the app's catalogue, English first.
var Messages = mustLoad()

func mustLoad() *catalogue.Catalogue {
	c, err := catalogue.Load(messagesFS, "messages", language.English)
	if err != nil {
		panic(err) // embedded files, checked by the tests
	}
	return c
}

func staticFS() fs.FS {
	sub, _ := fs.Sub(assetsFS, "assets")
	return onlyStatic{sub}
}

// onlyStatic serves the stylesheet and the script, not the templates.
type onlyStatic struct{ fs.FS }

func (o onlyStatic) Open(name string) (fs.File, error) {
	if name != "app.css" && name != "app.js" {
		return nil, fs.ErrNotExist
	}
	return o.FS.Open(name)
}

// tr translates key with p. Every message the Go code shows goes through
// tr with a literal key, so the catalogue test finds them.
func tr(p *message.Printer, key string, args ...any) string { return p.Sprintf(key, args...) }

// pageNames are the templates of whole pages.
var pageNames = []string{"enrol", "confirm", "enrolled", "new", "outbox", "receipt", "settings", "wipe", "wiped", "message"}

type pages struct {
	mu     sync.Mutex
	byLang map[language.Tag]map[string]*template.Template
}

func loadPages() (*pages, error) {
	p := &pages{byLang: map[language.Tag]map[string]*template.Template{}}
	for _, tag := range Messages.Tags() {
		if _, err := p.get(tag); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func parsePages(tag language.Tag) (map[string]*template.Template, error) {
	pr := Messages.Printer(tag)
	lang := tag.String()
	base, err := template.New("").Funcs(funcs(pr, lang)).ParseFS(assetsFS, "assets/layout.html")
	if err != nil {
		return nil, fmt.Errorf("failed to parse page templates: %w", err)
	}
	m := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(assetsFS, "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("failed to parse page template %s: %w", name, err)
		}
		m[name] = t
	}
	return m, nil
}

// allTemplates returns every page's template set, for the catalogue test.
func allTemplates() ([]*template.Template, error) {
	m, err := parsePages(language.English)
	if err != nil {
		return nil, err
	}
	var l []*template.Template
	for _, name := range pageNames {
		l = append(l, m[name])
	}
	return l, nil
}

func (p *pages) get(tag language.Tag) (map[string]*template.Template, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.byLang[tag]; m != nil {
		return m, nil
	}
	m, err := parsePages(tag)
	if err != nil {
		return nil, err
	}
	p.byLang[tag] = m
	return m, nil
}

// funcs are the template functions; T is the only way text reaches a page.
func funcs(p *message.Printer, lang string) template.FuncMap {
	return template.FuncMap{
		"T":    func(key string, args ...any) string { return p.Sprintf(key, args...) },
		"size": func(n int64) string { return formatSize(lang, n) },
		"date": func(s string) string { return formatDate(lang, s) },
	}
}

// formatSize prints n bytes for people: 1.5 MB, 12 KB (decimal units, as
// the file managers of Windows and macOS show them to most people).
func formatSize(lang string, n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f KB", float64(n)/1e3)
	}
	if lang == "ko" {
		return fmt.Sprintf("%d바이트", n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// formatDate prints a YYYY-MM-DD (or RFC 3339) date in the language's form.
func formatDate(lang, s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return s
		}
	}
	if lang == "ko" {
		return fmt.Sprintf("%d년 %d월 %d일", t.Year(), t.Month(), t.Day())
	}
	return t.Format("2 January 2006")
}

// formatDuration prints a time left, rounded for people.
func formatDuration(p *message.Printer, d time.Duration) string {
	switch {
	case d < time.Minute:
		return tr(p, "%d seconds", int(d.Seconds()+0.5))
	case d < time.Hour:
		return tr(p, "%d minutes", int(d.Minutes()+0.5))
	}
	return tr(p, "%d hours %d minutes", int(d.Hours()), int(d.Minutes())%60)
}

// lang is the page language: the one chosen in Settings, else the best
// match of Accept-Language, else of the system locale.
func (a *App) lang(r *http.Request) string {
	return a.langTag(r).String()
}

func (a *App) langTag(r *http.Request) language.Tag {
	if l := a.state.get().Lang; l != "" {
		return Messages.Match(l)
	}
	var prefs []string
	if r != nil {
		tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
		for _, t := range tags {
			prefs = append(prefs, t.String())
		}
	}
	prefs = append(prefs, a.cfg.Languages...)
	return Messages.Match(prefs...)
}

func (a *App) printer(r *http.Request) *message.Printer {
	return Messages.Printer(a.langTag(r))
}

// view is what every page gets.
type view struct {
	Lang  string
	CSRF  string
	Nav   string // the current section: new, outbox, settings, enrol
	Title string // a catalogue key; never testimony content
	Flash string // already translated
	Error string // already translated
	Data  any
}

func (a *App) render(w http.ResponseWriter, r *http.Request, code int, name string, v view) {
	tag := a.langTag(r)
	m, err := a.pages.get(tag)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v.Lang = tag.String()
	if v.CSRF == "" {
		v.CSRF, _ = a.sessions.csrf(r)
	}
	var buf bytes.Buffer
	if err := m[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// message is a page with one message and a way on.
type messageData struct {
	Heading string // translated
	Text    string // translated
	Detail  string
	Link    string
	LinkKey string // translated
}

func (a *App) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	p := a.printer(r)
	d := messageData{Heading: tr(p, "This request was refused")}
	switch why {
	case "launch-used":
		d.Text = tr(p, "This address works only once, and it was used already. Use the app window that is already open, or close the app and start it again.")
	case "no-session":
		d.Text = tr(p, "Open the app from the address that \"testimony app\" printed when it started. If that window is closed, close the app and start it again.")
	default:
		d.Text = tr(p, "The request did not come from this app's own pages, so it was refused. If you clicked something in the app, reload the page and try again.")
	}
	a.render(w, r, http.StatusForbidden, "message", view{Title: "Refused", Data: d})
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	a.render(w, r, http.StatusNotFound, "message", view{Title: "Not found", Data: messageData{
		Heading: tr(p, "There is no such page"),
		Text:    tr(p, "Use the menu above to go on."),
	}})
}

// errorText turns a backend error into the detail line under a message.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
