package app

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/enrol"
	"golang.org/x/text/message"
)

// Enrolment: the caseworker enters (or imports from an enrolment file,
// enrolimport.go) the server, its certificate pin, the access token and the
// organisation's and log's keys; confirms the organisation key against
// the card they were given in person; then the app pins the keys, checks
// the server and shows each step as a line in plain words, and finally the
// device key for the reviewers.

type enrolData struct {
	E       Enrolment
	OrgName string
	Checks  []checkLine
	Device  string
	Done    bool
	// FileOrg is the organisation key's name from an imported enrolment
	// file, "" for manual entry.
	FileOrg string
}

type checkLine struct {
	OK     bool
	Text   string // translated
	Detail string
}

func (a *App) handleEnrolPage(w http.ResponseWriter, r *http.Request) {
	st := a.state.get()
	s, _ := a.cfg.Client.Setup(st.Server)
	a.render(w, r, http.StatusOK, "enrol", view{Nav: "enrol", Title: "Set up this laptop", Data: enrolData{
		E: Enrolment{Server: st.Server, Pin: s.TLSPin, OrgKey: s.OrgKey, LogKey: s.LogKey},
	}})
}

func formEnrolment(r *http.Request) Enrolment {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return Enrolment{Server: f("server"), Pin: f("pin"), CA: f("ca"), Token: f("token"), OrgKey: f("org_key"), LogKey: f("log_key")}
}

func (a *App) handleEnrol(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	e := formEnrolment(r)
	d := enrolData{E: e, OrgName: keyName(e.OrgKey), FileOrg: strings.TrimSpace(r.PostFormValue("file_org"))}
	if d.FileOrg != "" && e.OrgKey == "" {
		a.render(w, r, http.StatusBadRequest, "enrol", view{Nav: "enrol", Title: "Set up this laptop",
			Error: tr(p, "Type or paste the organisation key from the card your organisation gave you in person."), Data: d})
		return
	}
	if e.Server == "" || e.Token == "" || e.OrgKey == "" {
		a.render(w, r, http.StatusBadRequest, "enrol", view{Nav: "enrol", Title: "Set up this laptop",
			Error: tr(p, "Fill in the server address, the access token and the organisation key. Your organisation gave you all three."), Data: d})
		return
	}
	if d.FileOrg != "" {
		// The organisation key never comes in the file: the one typed
		// from the card must have the name the file names, or the file
		// was made for another organisation (or changed on its way).
		name, err := enrol.KeyName(e.OrgKey)
		if err != nil {
			a.render(w, r, http.StatusBadRequest, "enrol", view{Nav: "enrol", Title: "Set up this laptop",
				Error: tr(p, "The organisation key you typed is not well formed. Type or paste it again from your card, character by character."), Data: d})
			return
		}
		if name != d.FileOrg {
			a.render(w, r, http.StatusBadRequest, "enrol", view{Nav: "enrol", Title: "Set up this laptop",
				Error: tr(p, "The enrolment file names the organisation key %s, but the key you typed is %s. The file was made for another organisation, or changed on its way: do not use it. Compare the key with the card you were given in person, and ask your operator for a new enrolment file.", d.FileOrg, name), Data: d})
			return
		}
	} else if r.PostFormValue("step") != "confirm" {
		// First the organisation key, compared with the card.
		a.render(w, r, http.StatusOK, "confirm", view{Nav: "enrol", Title: "Set up this laptop", Data: d})
		return
	}
	a.work.Lock()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
	checks := a.cfg.Client.Enrol(ctx, e)
	cancel()
	a.work.Unlock()
	ok := len(checks) > 0
	for _, c := range checks {
		d.Checks = append(d.Checks, checkLine{OK: c.OK, Text: checkText(p, c), Detail: c.Detail})
		ok = ok && c.OK
	}
	if ok {
		a.state.update(func(s *appState) { s.Server = e.Server })
		s, _ := a.cfg.Client.Setup(e.Server)
		d.Device, d.Done = s.DeviceKey, true
		d.E.Token, d.E.CA = "", ""
		a.poke()
	}
	a.render(w, r, http.StatusOK, "enrolled", view{Nav: "enrol", Title: "Set up this laptop", Data: d})
}

// checkText says a step's outcome in words, with what to do if it failed.
func checkText(p *message.Printer, c Check) string {
	switch {
	case c.Step == StepInput && c.OK:
		return tr(p, "The values you entered are well formed.")
	case c.Step == StepInput:
		return tr(p, "A value you entered is not well formed. Compare it with what your organisation gave you, character by character.")
	case c.Step == StepOrgKey && c.OK:
		return tr(p, "Your organisation's key is saved on this laptop.")
	case c.Step == StepOrgKey:
		return tr(p, "Your organisation's key could not be saved. If this laptop was set up for another organisation before, ask your organisation what to do.")
	case c.Step == StepLogKey && c.OK:
		return tr(p, "The key of the server's log is saved on this laptop.")
	case c.Step == StepLogKey:
		return tr(p, "The key of the server's log could not be saved. Ask your organisation for the right key.")
	case c.Step == StepDeviceKey && c.OK:
		return tr(p, "This laptop's signing key is ready.")
	case c.Step == StepDeviceKey:
		return tr(p, "This laptop's signing key could not be created.")
	case c.Step == StepServer && c.OK:
		return tr(p, "The server answered, and its keys are the ones your organisation signed.")
	}
	return tr(p, "The server could not be checked. Check the internet connection and the server address and pin, then try again. If it keeps failing, tell your organisation.")
}
