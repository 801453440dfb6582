package server

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// Who may call a route.
const (
	roleNone = ""    // no token needed
	roleAny  = "any" // a valid token of either role
)

// pathVars constrains the path variables of the routes below. mux answers
// 404 to anything else, so handlers only see well-formed ids and indexes.
// Routes are written (and logged) without the patterns, to stay readable.
var pathVars = strings.NewReplacer(
	"{id}", "{id:[0-9a-f]{32}}",
	"{index}", "{index:[0-9]+}",
	"{path}", "{path:.*}", // a tile path, which logTile parses strictly
)

// noBody is the body limit of routes that take no body.
const noBody = 0

// Handler returns the public HTTP API. docs/api.md describes every route.
func (s *Server) Handler() http.Handler {
	r := newRouter()
	s.route(r, "GET", "/v1/health", roleNone, noBody, s.health)
	s.route(r, "GET", "/v1/recipients", roleAny, noBody, s.recipients)

	s.route(r, "POST", "/v1/uploads", RoleSubmit, maxJSONBody, s.createUpload)
	s.route(r, "GET", "/v1/uploads/{id}", RoleSubmit, noBody, s.uploadStatus)
	s.route(r, "PUT", "/v1/uploads/{id}/chunks/{index}", RoleSubmit, ChunkSize, s.putChunk)
	s.route(r, "POST", "/v1/uploads/{id}/finish", RoleSubmit, maxJSONBody, s.finishUpload)
	s.route(r, "DELETE", "/v1/uploads/{id}", RoleSubmit, noBody, s.deleteUpload)

	s.route(r, "POST", "/v1/submissions", RoleSubmit, s.maxSize, s.submitOneShot)
	s.route(r, "GET", "/v1/submissions", RoleCollect, noBody, s.listSubmissions)
	s.route(r, "GET", "/v1/submissions/{id}", RoleCollect, noBody, s.downloadSubmission)
	s.route(r, "POST", "/v1/submissions/{id}/collected", RoleCollect, noBody, s.markCollected)
	// A reviewer's signed acknowledgement, carried by the collector:
	// deletes the ciphertext of what it names (server/ack.go).
	s.route(r, "POST", "/v1/ack", RoleCollect, maxAckBody, s.acknowledge)

	// The log holds no personal data, so any valid token may read it:
	// caseworkers check their receipts, collectors build bundles.
	s.route(r, "GET", "/v1/log/checkpoint", roleAny, noBody, s.logCheckpoint)
	s.route(r, "GET", "/v1/log/inclusion", roleAny, noBody, s.logInclusion)
	s.route(r, "GET", "/v1/log/consistency", roleAny, noBody, s.logConsistency)
	s.route(r, "GET", "/v1/log/leaves", roleAny, noBody, s.logLeaves)
	// With the checkpoint above, the log as C2SP tlog-tiles under the
	// prefix /v1/log (server/tiles.go).
	s.route(r, "GET", "/v1/log/ack", roleAny, noBody, s.logAck)
	s.binaryRoute(r, "GET", "/v1/log/tile/{path}", roleAny, s.logTile)

	s.fallbacks(r)
	return s.common(r)
}

// AdminHandler returns the API of the admin socket. It has no
// authentication: only the server's own user can reach the socket (mode
// 0600 in a 0700 directory).
func (s *Server) AdminHandler() http.Handler {
	a := &localAdmin{db: s.db, srv: s}
	r := newRouter()
	s.adminRoute(r, "GET", "/admin/recipients", noBody, a.handleRecipients)
	s.adminRoute(r, "POST", "/admin/recipients", maxAdminNoteBody, a.handleSetRecipients)
	s.adminRoute(r, "GET", "/admin/tokens", noBody, a.handleTokens)
	s.adminRoute(r, "POST", "/admin/tokens", maxJSONBody, a.handleCreateToken)
	s.adminRoute(r, "POST", "/admin/tokens/revoke", maxJSONBody, a.handleRevokeToken)
	s.adminRoute(r, "GET", "/admin/witnesses", noBody, a.handleWitnesses)
	s.adminRoute(r, "POST", "/admin/witnesses", maxJSONBody, a.handleAddWitness)
	s.adminRoute(r, "POST", "/admin/witnesses/remove", maxJSONBody, a.handleRemoveWitness)
	r.HandleFunc("/admin/backup", s.handleBackup).Methods("GET")
	s.fallbacks(r)
	return s.common(r)
}

// newRouter returns a router that matches paths exactly as sent. By default
// mux answers a path holding "..", "." or "//" with a 301 to its cleaned
// form, which would turn an id full of path characters into a redirect to
// some other route instead of a 404.
func newRouter() *mux.Router {
	return mux.NewRouter().SkipClean(true)
}

func (s *Server) route(r *mux.Router, method, path, role string, bodyLimit int64, fn apiFunc) {
	r.Handle(pathVars.Replace(path), s.endpoint(path, role, bodyLimit, fn)).Methods(method)
}

func (s *Server) adminRoute(r *mux.Router, method, path string, bodyLimit int64, fn apiFunc) {
	r.Handle(path, s.endpoint("admin "+path, roleNone, bodyLimit, fn)).Methods(method)
}

// fallbacks answers unknown paths and methods in JSON, through the same
// middleware as every other response.
func (s *Server) fallbacks(r *mux.Router) {
	r.NotFoundHandler = s.endpoint("(no route)", roleNone, noBody, func(*call) (any, int, error) {
		return nil, 0, fail(errNotFound, "no such route; see docs/api.md")
	})
	r.MethodNotAllowedHandler = s.endpoint("(method not allowed)", roleNone, noBody, func(c *call) (any, int, error) {
		return nil, 0, fail(errMethodNotAllowed, "method %s is not allowed on this route; see docs/api.md", c.r.Method)
	})
}
