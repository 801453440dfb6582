package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/testimony-ngo/testimony/internal/ids"
)

// maxTokenField bounds a token's name and role, which come from the
// operator's command line.
const maxTokenField = 128

// Token is an API token. Only the SHA-256 of the secret token string is
// stored, as the bucket key; the secret itself never reaches the store.
type Token struct {
	ID      string // 16 lowercase hex characters, shown to the operator
	Name    string // optional label chosen by the operator; unique when set
	Role    string // what the token may do, as defined by the server
	Hash    [32]byte
	Created time.Time
	Revoked bool
}

// tokenRecord is the stored form; the hash is the key, not part of the value.
type tokenRecord struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Revoked bool      `json:"revoked,omitempty"`
}

func (r *tokenRecord) token(hash []byte) Token {
	t := Token{ID: r.ID, Name: r.Name, Role: r.Role, Created: r.Created, Revoked: r.Revoked}
	copy(t.Hash[:], hash)
	return t
}

// AddToken stores a new token. It returns ErrExists if the hash, the id or
// the name is already used by another token (names and ids share one
// namespace, so RevokeToken can never match two tokens), and ErrInvalid for
// a malformed id, an empty role, an all-zero hash or over-long fields.
func (db *DB) AddToken(t Token) error {
	if !ids.ValidToken(t.ID) {
		return fmt.Errorf("failed to add token: id must be 16 lowercase hex characters: %w", ErrInvalid)
	}
	if t.Role == "" || len(t.Role) > maxTokenField || len(t.Name) > maxTokenField {
		return fmt.Errorf("failed to add token: role must be 1 to %d bytes and name at most %d: %w", maxTokenField, maxTokenField, ErrInvalid)
	}
	if t.Hash == ([32]byte{}) {
		return fmt.Errorf("failed to add token: hash is zero: %w", ErrInvalid)
	}
	rec := tokenRecord{ID: t.ID, Name: t.Name, Role: t.Role, Created: t.Created.UTC(), Revoked: t.Revoked}
	val, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("failed to encode token %s: %w", t.ID, err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if has(b, t.Hash[:]) {
			return fmt.Errorf("token hash: %w", ErrExists)
		}
		err := b.ForEach(func(k, v []byte) error {
			var old tokenRecord
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("failed to decode token record: %w", err)
			}
			switch {
			case old.ID == t.ID || old.Name != "" && old.Name == t.ID:
				return fmt.Errorf("token id %s: %w", t.ID, ErrExists)
			case t.Name != "" && (old.Name == t.Name || old.ID == t.Name):
				return fmt.Errorf("token name %q: %w", t.Name, ErrExists)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.Put(t.Hash[:], val)
	})
	if err != nil {
		return fmt.Errorf("failed to add token: %w", err)
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to h, revoked or not;
// the caller decides what a revoked token may do. It returns ErrNotFound if
// there is none.
func (db *DB) TokenByHash(h [32]byte) (Token, error) {
	var t Token
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v, ok := get(tx.Bucket(bucketTokens), h[:])
		if !ok {
			return ErrNotFound
		}
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("failed to decode token record: %w", err)
		}
		t = rec.token(h[:])
		return nil
	})
	if err != nil {
		return Token{}, fmt.Errorf("failed to look up token: %w", err)
	}
	return t, nil
}

// Tokens returns all tokens, revoked ones included, ordered by creation time
// and then id.
func (db *DB) Tokens() ([]Token, error) {
	var ts []Token
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("failed to decode token record: %w", err)
			}
			ts = append(ts, rec.token(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list tokens: %w", err)
	}
	slices.SortFunc(ts, func(a, b Token) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return ts, nil
}

// RevokeToken marks the token with the given id or name as revoked. Revoking
// an already revoked token succeeds. It returns ErrNotFound if no token has
// that id or name.
func (db *DB) RevokeToken(idOrName string) error {
	if idOrName == "" {
		return fmt.Errorf("failed to revoke token: empty id or name: %w", ErrNotFound)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var key []byte
		var rec tokenRecord
		err := b.ForEach(func(k, v []byte) error {
			if key != nil {
				return nil
			}
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("failed to decode token record: %w", err)
			}
			if r.ID == idOrName || r.Name == idOrName {
				key, rec = slices.Clone(k), r
			}
			return nil
		})
		if err != nil {
			return err
		}
		if key == nil {
			return ErrNotFound
		}
		if rec.Revoked {
			return nil
		}
		rec.Revoked = true
		val, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("failed to encode token record: %w", err)
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("failed to revoke token %q: %w", idOrName, err)
	}
	return nil
}
