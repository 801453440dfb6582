package app

import (
	"errors"
	"net/http"

	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/enrol"
)

// Importing an enrolment file: the browser posts the one small file
// (multipart, at most maxImport bytes in all, with the CSRF header like
// every other POST); it is read from the request, parsed strictly and
// never written to disk. The answer fills the enrolment form; the
// organisation key itself never comes from the file, the caseworker types
// it from their card and handleEnrol compares its name with the file's.

// maxImport bounds the whole import request.
const maxImport = 64 << 10

// enrolImport is the answer to an import: the form's values, or an error.
type enrolImport struct {
	Server     string `json:"server"`
	Pin        string `json:"pin"`
	CA         string `json:"ca"`
	LogKey     string `json:"log_key"`
	Token      string `json:"token"`
	OrgKeyName string `json:"org_key_name"`
}

func (a *App) handleEnrolImport(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	fail := func(code int, msg string) { writeJSON(w, code, map[string]string{"error": msg}) }
	r.Body = http.MaxBytesReader(w, r.Body, maxImport)
	mr, err := r.MultipartReader()
	if err != nil {
		fail(http.StatusBadRequest, tr(p, "The enrolment file could not be read. Choose the file again."))
		return
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "file" {
		fail(http.StatusBadRequest, tr(p, "The enrolment file could not be read. Choose the file again."))
		return
	}
	data, err := bounded.ReadAll(part, enrol.MaxSize)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || errors.Is(err, bounded.ErrTooLarge):
		fail(http.StatusRequestEntityTooLarge, tr(p, "This file is too large to be an enrolment file. Choose the file your operator gave you (its name ends in .enrol)."))
		return
	case err != nil:
		fail(http.StatusBadRequest, tr(p, "The enrolment file could not be read. Choose the file again."))
		return
	}
	e, err := enrol.Parse(data)
	switch {
	case errors.Is(err, enrol.ErrVersion):
		fail(http.StatusBadRequest, tr(p, "This enrolment file was made by a newer version of testimony. Ask your operator for the newer app, or for a file this version reads."))
		return
	case errors.Is(err, enrol.ErrTooLarge), errors.Is(err, enrol.ErrNotEnrolment):
		fail(http.StatusBadRequest, tr(p, "This is not an enrolment file. Choose the file your operator gave you (its name ends in .enrol)."))
		return
	case err != nil:
		fail(http.StatusBadRequest, tr(p, "This enrolment file is damaged or was changed on its way. Do not edit it; ask your operator for a new one."))
		return
	}
	writeJSON(w, http.StatusOK, enrolImport{Server: e.Server, Pin: e.Pin, CA: e.CA, LogKey: e.LogKey, Token: e.Token, OrgKeyName: e.OrgKeyName})
}
