package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/store"
)

// Token roles. A submit token uploads; a collect token downloads. Neither
// can do the other's job, so a seized caseworker laptop cannot read what
// others submitted.
const (
	RoleSubmit  = "submit"
	RoleCollect = "collect"
)

// A token is tokenPrefix followed by base64url (no padding) of
// tokenRandomBytes random bytes: 192 bits, far beyond guessing. The prefix
// versions the format and makes a leaked token easy to find with grep.
const (
	tokenPrefix      = "tm1_"
	tokenRandomBytes = 24
	tokenLen         = len(tokenPrefix) + (tokenRandomBytes*8+5)/6
	maxTokenName     = 64
)

// Errors of token management.
var (
	ErrTokenNotFound    = errors.New("no token has this id or name")
	ErrTokenNameTaken   = errors.New("a token with this name already exists")
	ErrInvalidRole      = errors.New(`role must be "submit" or "collect"`)
	ErrInvalidTokenName = errors.New("token name must be 1 to 64 letters, digits, '.', '_', '-' or '@', and not 16 hex digits")
)

// Errors of authentication; errorStatus makes them 401.
var (
	errNoToken        = errors.New("missing Authorization header: send Authorization: Bearer <token>")
	errMalformedToken = errors.New("malformed token: expected Authorization: Bearer tm1_…")
	errUnknownToken   = errors.New("unknown token")
	errRevokedToken   = errors.New("token has been revoked")
)

// TokenInfo is what the operator sees of a token: never the token itself,
// which exists only in the output of token create.
type TokenInfo struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Revoked bool      `json:"revoked"`
	// Usage is what a submit token uses now, counted by the running server
	// since it started; nil when no server runs (the counters live in its
	// memory only: see quotas).
	Usage *TokenUsage `json:"usage,omitempty"`
}

func tokenInfo(t store.Token) TokenInfo {
	return TokenInfo{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created.UTC(), Revoked: t.Revoked}
}

func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// validTokenName keeps names easy to type and to tell apart from ids in
// token revoke, which takes either.
func validTokenName(name string) bool {
	if name == "" || len(name) > maxTokenName {
		return false
	}
	if ids.ValidToken(name) {
		return false
	}
	for _, c := range name {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._-@", c)
		if !ok {
			return false
		}
	}
	return true
}

// createToken makes a new token, stores its hash and returns the token; it
// is never stored or shown again.
func createToken(db *store.DB, role, name string, now time.Time) (string, TokenInfo, error) {
	if role != RoleSubmit && role != RoleCollect {
		return "", TokenInfo{}, ErrInvalidRole
	}
	if !validTokenName(name) {
		return "", TokenInfo{}, ErrInvalidTokenName
	}
	secret := make([]byte, tokenRandomBytes)
	rand.Read(secret)
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	idBytes := make([]byte, 8)
	rand.Read(idBytes)
	t := store.Token{
		ID:      hex.EncodeToString(idBytes),
		Name:    name,
		Role:    role,
		Hash:    hashToken(token),
		Created: now.UTC().Truncate(time.Second),
	}
	if err := db.AddToken(t); errors.Is(err, store.ErrExists) {
		// Names and ids share one namespace in the store; a clash of
		// random ids or hashes is not going to happen.
		return "", TokenInfo{}, fmt.Errorf("%w: %q", ErrTokenNameTaken, name)
	} else if err != nil {
		return "", TokenInfo{}, err
	}
	return token, tokenInfo(t), nil
}

func listTokens(db *store.DB) ([]TokenInfo, error) {
	ts, err := db.Tokens()
	if err != nil {
		return nil, err
	}
	infos := make([]TokenInfo, 0, len(ts))
	for _, t := range ts {
		infos = append(infos, tokenInfo(t))
	}
	return infos, nil
}

func revokeToken(db *store.DB, idOrName string) error {
	err := db.RevokeToken(idOrName)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrTokenNotFound, idOrName)
	}
	return err
}

// bearerToken extracts the token from an Authorization header value and
// checks its shape, so that garbage never reaches the store.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", errNoToken
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errMalformedToken
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return "", errMalformedToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[len(tokenPrefix):])
	if err != nil || len(raw) != tokenRandomBytes {
		return "", errMalformedToken
	}
	return token, nil
}

// lookupToken finds a token by the SHA-256 hash of what the client sent.
//
// No secret is compared here, so there is no comparison to make constant
// time: the store's key is the hash itself, and finding the record is the
// whole check. (A comparison of the hash with the record's hash could never
// fail: the store fills the record's hash in from the key it was found by.)
// The lookup's timing can depend on how the hash of a guess compares with
// stored hashes in bbolt's byte-ordered keys. That tells an attacker about
// SHA-256 outputs of tokens they chose, not about any token: getting from a
// stored hash, or a prefix of one, to a token that hashes to it is a
// SHA-256 preimage, and the token itself is 192 random bits.
func lookupToken(db *store.DB, token string) (store.Token, error) {
	t, err := db.TokenByHash(hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, errUnknownToken
	} else if err != nil {
		return store.Token{}, err
	}
	if t.Revoked {
		return store.Token{}, errRevokedToken
	}
	return t, nil
}
