package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// Admin is what the operator's commands do to a deployment. OpenAdmin
// returns one that talks to the running server over its admin socket, or
// one that opens the database itself when no server runs; both behave the
// same, down to the errors.
type Admin interface {
	// CreateToken makes a token and returns it; only its hash is kept.
	CreateToken(role, name string) (token string, info TokenInfo, err error)
	// Tokens lists all tokens, revoked ones included.
	Tokens() ([]TokenInfo, error)
	// RevokeToken revokes the token with this id or name.
	RevokeToken(idOrName string) error
	// Recipients returns the deployment's public keys and the version of
	// its recipients note.
	Recipients() (*DeploymentInfo, error)
	// SetRecipients replaces the recipients with those of a signed
	// recipients note (see setRecipients for the checks).
	SetRecipients(note []byte) (*DeploymentInfo, error)
	// AddWitness registers a reviewer's witness key under a name; its
	// acknowledgements then delete ciphertext (server/ack.go).
	AddWitness(name, key string) (WitnessInfo, error)
	// Witnesses lists the registered witnesses.
	Witnesses() ([]WitnessInfo, error)
	// RemoveWitness forgets a witness.
	RemoveWitness(name string) error
	Close() error
}

// adminTimeout bounds a whole admin request over the socket.
const adminTimeout = 30 * time.Second

// OpenAdmin returns an Admin for the deployment in dataDir. It tries the
// admin socket first, because a running server holds the database's lock;
// if nothing answers there (no socket, or one left by a killed server), it
// opens the database directly.
func OpenAdmin(dataDir string) (Admin, error) {
	path := AdminSocketPath(dataDir)
	conn, dialErr := net.DialTimeout("unix", path, adminTimeout)
	if dialErr == nil {
		conn.Close()
		return newSocketAdmin(path), nil
	}
	db, err := openStore(dataDir, false)
	if errors.Is(err, ErrLocked) {
		return nil, fmt.Errorf("%w, and its admin socket does not answer (%v)", err, dialErr)
	} else if err != nil {
		return nil, err
	}
	if _, err := loadDeployment(db); err != nil {
		db.Close()
		return nil, err
	}
	return &localAdmin{db: db, owned: true}, nil
}

// localAdmin works on an open store: directly for OpenAdmin, and inside the
// server behind the admin socket.
type localAdmin struct {
	db    *store.DB
	owned bool    // Close closes db
	srv   *Server // the server behind the admin socket; nil for OpenAdmin
}

func (a *localAdmin) CreateToken(role, name string) (string, TokenInfo, error) {
	return createToken(a.db, role, name, time.Now())
}

func (a *localAdmin) Tokens() ([]TokenInfo, error) {
	ts, err := listTokens(a.db)
	if err != nil || a.srv == nil {
		return ts, err
	}
	for i := range ts {
		if ts[i].Role == RoleSubmit {
			ts[i].Usage = a.srv.quota.usage(ts[i].ID, a.srv.now())
		}
	}
	return ts, nil
}

func (a *localAdmin) RevokeToken(idOrName string) error { return revokeToken(a.db, idOrName) }

func (a *localAdmin) Recipients() (*DeploymentInfo, error) {
	dep, err := loadDeployment(a.db)
	if err != nil {
		return nil, err
	}
	return dep.adminInfo(), nil
}

func (a *localAdmin) SetRecipients(note []byte) (*DeploymentInfo, error) {
	return setRecipients(a.db, a.srv, note)
}

func (a *localAdmin) Close() error {
	if a.owned {
		return a.db.Close()
	}
	return nil
}

// The admin protocol: JSON over HTTP over the unix socket.

type adminCreateRequest struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

type adminCreateResponse struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}

type adminTokensResponse struct {
	Tokens []TokenInfo `json:"tokens"`
}

type adminRevokeRequest struct {
	Token string `json:"token"` // id or name
}

// adminErrorCodes carry the sentinel errors of token management across the
// socket, so both kinds of Admin fail alike.
var adminErrorCodes = []struct {
	err  error
	kind error
	code string
}{
	{ErrTokenNotFound, errNotFound, "token_not_found"},
	{ErrTokenNameTaken, errConflict, "token_name_taken"},
	{ErrInvalidRole, errBadRequest, "invalid_role"},
	{ErrInvalidTokenName, errBadRequest, "invalid_token_name"},
	{ErrNotInitialized, errConflict, "not_initialized"},
	{ErrRecipientsNote, errBadRequest, "recipients_note"},
	{ErrRecipientsVersion, errConflict, "recipients_version"},
	{ErrRecipientsType, errConflict, "recipients_type"},
	{ErrRecipientsSignature, errForbidden, "recipients_signature"},
	{ErrWitnessNotFound, errNotFound, "witness_not_found"},
	{ErrWitnessNameTaken, errConflict, "witness_name_taken"},
	{ErrInvalidWitnessName, errBadRequest, "invalid_witness_name"},
	{ErrInvalidWitnessKey, errBadRequest, "invalid_witness_key"},
}

func adminError(err error) error {
	for _, e := range adminErrorCodes {
		if errors.Is(err, e.err) {
			return &apiError{kind: e.kind, msg: err.Error(), code: e.code}
		}
	}
	return err
}

func (a *localAdmin) handleRecipients(*call) (any, int, error) {
	info, err := a.Recipients()
	if err != nil {
		return nil, 0, adminError(err)
	}
	return info, http.StatusOK, nil
}

// handleSetRecipients takes the note as the request body, exactly as the
// file holds it: a signed note's bytes matter.
func (a *localAdmin) handleSetRecipients(c *call) (any, int, error) {
	note, err := io.ReadAll(c.r.Body)
	if err != nil {
		return nil, 0, bodyError(err)
	}
	info, err := a.SetRecipients(note)
	if err != nil {
		return nil, 0, adminError(err)
	}
	return info, http.StatusOK, nil
}

func (a *localAdmin) handleTokens(*call) (any, int, error) {
	ts, err := a.Tokens()
	if err != nil {
		return nil, 0, adminError(err)
	}
	return &adminTokensResponse{Tokens: ts}, http.StatusOK, nil
}

func (a *localAdmin) handleCreateToken(c *call) (any, int, error) {
	var req adminCreateRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return nil, 0, err
	}
	token, info, err := a.CreateToken(req.Role, req.Name)
	if err != nil {
		return nil, 0, adminError(err)
	}
	return &adminCreateResponse{Token: token, Info: info}, http.StatusCreated, nil
}

func (a *localAdmin) handleRevokeToken(c *call) (any, int, error) {
	var req adminRevokeRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return nil, 0, err
	}
	if err := a.RevokeToken(req.Token); err != nil {
		return nil, 0, adminError(err)
	}
	return nil, http.StatusNoContent, nil
}

// socketAdmin is the client side of the admin socket.
type socketAdmin struct {
	hc *http.Client
}

func newSocketAdmin(path string) *socketAdmin {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &socketAdmin{hc: &http.Client{Transport: tr, Timeout: adminTimeout}}
}

func (a *socketAdmin) CreateToken(role, name string) (string, TokenInfo, error) {
	var resp adminCreateResponse
	if err := a.do("POST", "/admin/tokens", &adminCreateRequest{Role: role, Name: name}, &resp); err != nil {
		return "", TokenInfo{}, err
	}
	return resp.Token, resp.Info, nil
}

func (a *socketAdmin) Tokens() ([]TokenInfo, error) {
	var resp adminTokensResponse
	if err := a.do("GET", "/admin/tokens", nil, &resp); err != nil {
		return nil, err
	}
	return resp.Tokens, nil
}

func (a *socketAdmin) RevokeToken(idOrName string) error {
	return a.do("POST", "/admin/tokens/revoke", &adminRevokeRequest{Token: idOrName}, nil)
}

func (a *socketAdmin) Recipients() (*DeploymentInfo, error) {
	var info DeploymentInfo
	if err := a.do("GET", "/admin/recipients", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func (a *socketAdmin) SetRecipients(note []byte) (*DeploymentInfo, error) {
	var info DeploymentInfo
	if err := a.do("POST", "/admin/recipients", rawBody(note), &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func (a *socketAdmin) Close() error {
	a.hc.CloseIdleConnections()
	return nil
}

// maxAdminResponse bounds what the client reads from the socket; a token
// list of thousands of tokens fits.
const maxAdminResponse = 16 << 20

func (a *socketAdmin) do(method, path string, in, out any) error {
	var body io.Reader
	contentType := "application/json"
	switch v := in.(type) {
	case nil:
	case rawBody:
		body, contentType = bytes.NewReader(v), "text/plain; charset=utf-8"
	default:
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://admin.sock"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the server over its admin socket: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse))
	if err != nil {
		return fmt.Errorf("failed to read the admin socket's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error == "" {
			return fmt.Errorf("the server answered %s on its admin socket", resp.Status)
		}
		for _, e := range adminErrorCodes {
			if eb.Code == e.code {
				return &remoteError{msg: eb.Error, err: e.err}
			}
		}
		return errors.New(eb.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("failed to decode the admin socket's answer: %w", err)
	}
	return nil
}

// rawBody is a request body sent as it is rather than as JSON.
type rawBody []byte

// remoteError is a sentinel error that happened in the server, with the
// server's message.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }
