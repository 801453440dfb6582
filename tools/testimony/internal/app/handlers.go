package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/ids"
)

func (a *App) handleHome(w http.ResponseWriter, r *http.Request) {
	if a.state.get().Server == "" {
		http.Redirect(w, r, "/enrol", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/new", http.StatusSeeOther)
}

type newData struct {
	Today    string
	Language string
	MaxNotes int
}

func (a *App) handleNew(w http.ResponseWriter, r *http.Request) {
	if a.state.get().Server == "" {
		http.Redirect(w, r, "/enrol", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "new", view{Nav: "new", Title: "New testimony", Data: newData{
		Today: time.Now().Format(time.DateOnly), Language: a.lang(r), MaxNotes: maxNotes,
	}})
}

// row is one line of the outbox page.
type row struct {
	Key      string // outbox name or submission id (random, safe in a URL)
	Date     string
	Size     int64
	Files    int
	Label    string
	State    string // translated
	Class    string // ok, busy, wait, bad
	Percent  int
	Receipt  bool
	Editable bool
}

type outboxData struct {
	Pending, Sent []row
	Busy          bool // something is being sent: the page refreshes itself
	Checking      bool
	LastCheck     string
}

func (a *App) handleOutbox(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	lang := a.lang(r)
	ob, err := a.outbox()
	v := view{Nav: "outbox", Title: "Outbox and receipts"}
	if err != nil {
		v.Error = tr(p, "The outbox could not be read.") + " " + errorText(err)
	}
	st := a.state.get()
	var d outboxData
	a.mu.Lock()
	sending, done, total, offline := a.sending, a.sendDone, a.sendTotal, a.offline
	for _, j := range a.jobs {
		switch j.phase {
		case jobReceiving, jobQueued, jobEncrypting:
			d.Pending = append(d.Pending, row{Key: j.key, Date: time.Now().Format(time.DateOnly), Files: len(j.files), Label: j.label,
				State: tr(p, "Encrypting"), Class: "busy"})
			d.Busy = true
		case jobWaiting:
			if j.entry == "" {
				d.Pending = append(d.Pending, row{Key: j.key, Date: time.Now().Format(time.DateOnly), Files: len(j.files), Label: j.label,
					State: tr(p, "Waiting for the network (not yet encrypted: keep the app running)"), Class: "wait"})
			}
		}
	}
	if a.checking {
		d.Checking = true
	}
	a.mu.Unlock()
	for _, e := range ob.Pending {
		info := st.Entries[e.Name]
		rw := row{Key: e.Name, Date: e.Created, Size: e.Size, Files: info.Files, Label: info.Label, Editable: true}
		switch {
		case e.Name == sending && !offline:
			rw.Percent = percent(done, total)
			rw.State, rw.Class = tr(p, "Uploading, %d%% done", rw.Percent), "busy"
			d.Busy = true
		case offline:
			rw.State, rw.Class = tr(p, "Waiting for the network; the app tries again by itself"), "wait"
		default:
			rw.State, rw.Class = tr(p, "Waiting to be sent"), "wait"
			d.Busy = true
		}
		d.Pending = append(d.Pending, rw)
	}
	for _, s := range slices.Backward(ob.Sent) {
		info := st.Entries[s.ID]
		rw := row{Key: s.ID, Date: s.Received, Size: s.Size, Files: info.Files, Label: info.Label, Receipt: true, Editable: true}
		if date, ok := st.Reviewed[s.ID]; ok {
			rw.State, rw.Class = tr(p, "Reviewed on %s; the server deleted its copy", formatDate(lang, date)), "ok"
		} else if _, ok := st.Confirmed[s.ID]; ok {
			rw.State, rw.Class = tr(p, "Confirmed in the log"), "ok"
		} else {
			rw.State, rw.Class = tr(p, "Sent, receipt saved"), "ok"
		}
		d.Sent = append(d.Sent, rw)
	}
	v.Data = d
	a.mu.Lock()
	if res := a.checkResult; res != nil {
		switch {
		case res.Err != nil:
			v.Error = tr(p, "The receipts could not all be checked. If a receipt failed, keep this laptop as it is and tell your organisation through another channel than this server.") + " " + errorText(res.Err)
		default:
			if len(res.OK) == 1 {
				v.Flash = tr(p, "The receipt was checked: the server's log still holds the testimony you sent.")
			} else {
				v.Flash = tr(p, "All %d receipts were checked: the server's log still holds every testimony you sent.", len(res.OK))
			}
			if len(res.Unasked) > 0 {
				v.Flash += " " + tr(p, "Whether a reviewer has confirmed them could not be asked this time. Check again later.")
			}
		}
		if len(res.Unproven) > 0 {
			// Shown even after a failed check: it is evidence too.
			msg := tr(p, "Testimonies the server says a reviewer confirmed, but whose proof does not verify: %d. They are not shown as reviewed. Keep this laptop as it is and tell your organisation through another channel than this server.", len(res.Unproven))
			v.Error = strings.TrimSpace(v.Error + " " + msg)
		}
	}
	a.mu.Unlock()
	a.render(w, r, http.StatusOK, "outbox", v)
}

type receiptData struct {
	Sent      Sent
	Confirmed string
	Reviewed  string // date a reviewer's witness acknowledged it, or ""
	Label     string
}

func (a *App) handleReceipt(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if !ids.ValidSubmission(id) {
		a.notFound(w, r)
		return
	}
	ob, err := a.outbox()
	if err != nil {
		a.notFound(w, r)
		return
	}
	for _, s := range ob.Sent {
		if s.ID == id {
			st := a.state.get()
			a.render(w, r, http.StatusOK, "receipt", view{Nav: "outbox", Title: "Receipt", Data: receiptData{
				Sent: s, Confirmed: st.Confirmed[id], Reviewed: st.Reviewed[id], Label: st.Entries[id].Label,
			}})
			return
		}
	}
	a.notFound(w, r)
}

// handleCheck re-checks every receipt against the server's log.
func (a *App) handleCheck(w http.ResponseWriter, r *http.Request) {
	server := a.state.get().Server
	a.mu.Lock()
	busy := a.checking
	a.checking = true
	a.checkResult = nil
	a.mu.Unlock()
	if !busy {
		go func() {
			a.work.Lock()
			defer a.work.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			res := a.verifyReceipts(ctx, server)
			today := time.Now().Format(time.DateOnly)
			a.state.update(func(s *appState) {
				for _, id := range res.OK {
					s.Confirmed[id] = today
					// A review the server could not be asked about
					// keeps what the check before found.
					if date, ok := res.Reviewed[id]; ok {
						s.Reviewed[id] = date
					} else if !slices.Contains(res.Unasked, id) {
						delete(s.Reviewed, id)
					}
				}
				for _, id := range res.Failed {
					delete(s.Confirmed, id)
					delete(s.Reviewed, id)
				}
			})
			a.mu.Lock()
			a.checking = false
			a.checkResult = &res
			a.mu.Unlock()
		}()
	}
	http.Redirect(w, r, "/outbox", http.StatusSeeOther)
}

// handleLabel sets the label of an outbox entry or receipt.
func (a *App) handleLabel(w http.ResponseWriter, r *http.Request) {
	key := r.PostFormValue("key")
	label := strings.TrimSpace(r.PostFormValue("label"))
	if len(label) > 200 {
		label = label[:200]
	}
	if !ids.ValidSubmission(key) && !isOutboxName(key) {
		a.notFound(w, r)
		return
	}
	a.state.update(func(s *appState) {
		e := s.Entries[key]
		e.Label = label
		s.Entries[key] = e
	})
	http.Redirect(w, r, "/outbox", http.StatusSeeOther)
}

func isOutboxName(s string) bool { return ids.LowerHex(s, 16) }

type settingsData struct {
	Setup     Setup
	OrgName   string
	LogName   string
	Lang      string
	Languages []langChoice
	LeftOver  int
}

type langChoice struct {
	Code, Name string
	Current    bool
}

func (a *App) handleSettings(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	st := a.state.get()
	s, err := a.cfg.Client.Setup(st.Server)
	v := view{Nav: "settings", Title: "Settings"}
	if err != nil {
		v.Error = tr(p, "The settings could not be read.") + " " + errorText(err)
	}
	lang := a.lang(r)
	d := settingsData{Setup: s, OrgName: keyName(s.OrgKey), LogName: keyName(s.LogKey), Lang: lang}
	for _, c := range []langChoice{{"ko", "한국어", false}, {"en", "English", false}} {
		c.Current = c.Code == lang
		d.Languages = append(d.Languages, c)
	}
	switch r.URL.Query().Get("done") {
	case "removed":
		v.Flash = tr(p, "Sent ciphertext left on this laptop was removed.")
	case "nothing":
		v.Flash = tr(p, "There was no sent ciphertext left on this laptop.")
	}
	v.Data = d
	a.render(w, r, http.StatusOK, "settings", v)
}

// handleLang persists the language chosen.
func (a *App) handleLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if lang != "ko" && lang != "en" {
		a.notFound(w, r)
		return
	}
	a.state.update(func(s *appState) { s.Lang = lang })
	back := r.PostFormValue("back")
	switch back {
	case "/new", "/outbox", "/settings", "/enrol":
	default:
		back = "/settings"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (a *App) handleRemoveSent(w http.ResponseWriter, r *http.Request) {
	a.work.Lock()
	n, err := a.cfg.Client.RemoveSent()
	a.work.Unlock()
	if err != nil {
		p := a.printer(r)
		a.render(w, r, http.StatusInternalServerError, "message", view{Nav: "settings", Title: "Settings", Data: messageData{
			Heading: tr(p, "Nothing was removed"), Text: tr(p, "The outbox could not be read."), Detail: errorText(err),
			Link: "/settings", LinkKey: tr(p, "Back to Settings"),
		}})
		return
	}
	if n == 0 {
		http.Redirect(w, r, "/settings?done=nothing", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/settings?done=removed", http.StatusSeeOther)
}

// keyName is the short name of a note verifier key: name+hash, what the
// organisation's card shows in large type.
func keyName(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) < 3 {
		return vkey
	}
	return parts[0] + "+" + parts[1]
}
