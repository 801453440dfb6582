package server

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/testimony-ngo/testimony/store"
)

// Kinds of client error. Handlers wrap them with fail to say precisely what
// was wrong; errorStatus maps them to status codes.
var (
	errBadRequest       = errors.New("bad request")
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errConflict         = errors.New("conflict")
	errTooLarge         = errors.New("request body too large")
	errUnsupportedMedia = errors.New("unsupported media type")
	errUnprocessable    = errors.New("unprocessable content")
	errForbidden        = errors.New("forbidden")
	errTooManyRequests  = errors.New("too many failed authentication attempts")
	errBusy             = errors.New("server busy")
	errGone             = errors.New("gone")
)

// apiError is an error whose message is written for the client. code is
// set only on the admin socket, whose client turns it back into a sentinel.
type apiError struct {
	kind error
	msg  string
	code string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.kind }

// fail returns an error of the given kind whose message the client sees.
func fail(kind error, format string, args ...any) error {
	return &apiError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// genericServerError is all a client learns about a 5xx; the detail is
// logged.
const genericServerError = "internal server error; the operator can find the details in the server log"

// diskFullError answers a request whose write the store could not commit
// because the data directory's file system is full. bbolt rolls the
// transaction back, so nothing of the request was kept, and what was
// acknowledged before is untouched; the client only has to retry later.
const diskFullError = "the server is out of storage space, so nothing of this request was stored; " +
	"what it acknowledged before is safe. Try again later: an upload resumes where it stopped"

// errorStatus maps an error to a status code and the message for the
// client. It is the only place that does: anything it does not recognise is
// a 500 with a generic message.
func errorStatus(err error) (int, string) {
	msg := err.Error()
	switch {
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, msg
	case isAuthError(err):
		return http.StatusUnauthorized, msg
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, msg
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, msg
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed, msg
	case errors.Is(err, errConflict):
		return http.StatusConflict, msg
	case errors.Is(err, errGone):
		return http.StatusGone, msg
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, msg
	case errors.Is(err, errUnsupportedMedia):
		return http.StatusUnsupportedMediaType, msg
	case errors.Is(err, errUnprocessable):
		return http.StatusUnprocessableEntity, msg
	case errors.Is(err, errQuota):
		return http.StatusTooManyRequests, msg
	case errors.Is(err, errStorageQuota):
		return http.StatusInsufficientStorage, msg
	case errors.Is(err, errTooManyRequests):
		return http.StatusTooManyRequests, msg
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, msg
	// Store errors that reach here unwrapped are races the handlers could
	// not see coming, such as an upload that expired between two steps.
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found: the upload or submission no longer exists"
	case errors.Is(err, store.ErrUploadComplete):
		return http.StatusConflict, "the upload has already been finished; GET /v1/uploads/{id} returns its receipt"
	case errors.Is(err, store.ErrChunkConflict):
		return http.StatusConflict, "a different chunk is already stored at this index"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage, diskFullError
	}
	return http.StatusInternalServerError, genericServerError
}
