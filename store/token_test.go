package store

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAddToken(t *testing.T) {
	db := openTemp(t)
	first := Token{ID: "0123456789abcdef", Name: "field-laptop-1", Role: "submit", Hash: sha256.Sum256([]byte("tm1_a")), Created: t0}
	if err := db.AddToken(first); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		tok     Token
		wantErr error
	}{
		{"unnamed", Token{ID: "1111111111111111", Role: "collect", Hash: sha256.Sum256([]byte("tm1_b"))}, nil},
		{"second unnamed", Token{ID: "2222222222222222", Role: "collect", Hash: sha256.Sum256([]byte("tm1_c"))}, nil},
		{"same hash", Token{ID: "3333333333333333", Role: "submit", Hash: first.Hash}, ErrExists},
		{"same id", Token{ID: first.ID, Role: "submit", Hash: sha256.Sum256([]byte("tm1_d"))}, ErrExists},
		{"same name", Token{ID: "4444444444444444", Name: first.Name, Role: "submit", Hash: sha256.Sum256([]byte("tm1_e"))}, ErrExists},
		{"name is another's id", Token{ID: "5555555555555555", Name: first.ID, Role: "submit", Hash: sha256.Sum256([]byte("tm1_f"))}, ErrExists},
		{"id is another's name", Token{ID: "6666666666666666", Role: "submit", Hash: sha256.Sum256([]byte("tm1_g"))}, nil},
		{"short id", Token{ID: "0123", Role: "submit", Hash: sha256.Sum256([]byte("tm1_h"))}, ErrInvalid},
		{"uppercase id", Token{ID: "0123456789ABCDEF", Role: "submit", Hash: sha256.Sum256([]byte("tm1_i"))}, ErrInvalid},
		{"no role", Token{ID: "7777777777777777", Hash: sha256.Sum256([]byte("tm1_j"))}, ErrInvalid},
		{"zero hash", Token{ID: "8888888888888888", Role: "submit"}, ErrInvalid},
		{"long name", Token{ID: "9999999999999999", Name: string(make([]byte, maxTokenField+1)), Role: "submit", Hash: sha256.Sum256([]byte("tm1_k"))}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.AddToken(tt.tok)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddToken: %v, want %v", err, tt.wantErr)
			}
			_, lookErr := db.TokenByHash(tt.tok.Hash)
			if tt.wantErr == nil && lookErr != nil {
				t.Errorf("added token not found: %v", lookErr)
			}
		})
	}
	ts, err := db.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 4 {
		t.Errorf("Tokens() returned %d tokens, want 4", len(ts))
	}
}

func TestTokenLookupAndRevoke(t *testing.T) {
	db := openTemp(t)
	toks := []Token{
		{ID: "cccccccccccccccc", Name: "collector", Role: "collect", Hash: sha256.Sum256([]byte("tm1_c")), Created: t0.Add(2 * time.Hour)},
		{ID: "bbbbbbbbbbbbbbbb", Name: "laptop", Role: "submit", Hash: sha256.Sum256([]byte("tm1_b")), Created: t0},
		{ID: "aaaaaaaaaaaaaaaa", Role: "submit", Hash: sha256.Sum256([]byte("tm1_a")), Created: t0},
	}
	for _, tok := range toks {
		if err := db.AddToken(tok); err != nil {
			t.Fatal(err)
		}
	}

	got, err := db.TokenByHash(toks[1].Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != toks[1].ID || got.Name != "laptop" || got.Role != "submit" || got.Hash != toks[1].Hash ||
		!got.Created.Equal(t0) || got.Revoked {
		t.Errorf("TokenByHash = %+v, want %+v", got, toks[1])
	}
	if _, err := db.TokenByHash(sha256.Sum256([]byte("tm1_unknown"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("TokenByHash(unknown): %v, want ErrNotFound", err)
	}

	list, err := db.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, tok := range list {
		order = append(order, tok.ID)
	}
	if want := []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"}; !slices.Equal(order, want) {
		t.Errorf("Tokens() order %v, want %v", order, want)
	}

	tests := []struct {
		name     string
		arg      string
		wantErr  error
		revokedH [32]byte
	}{
		{"by name", "laptop", nil, toks[1].Hash},
		{"again", "laptop", nil, toks[1].Hash},
		{"by id", "cccccccccccccccc", nil, toks[0].Hash},
		{"unknown", "nobody", ErrNotFound, [32]byte{}},
		{"empty", "", ErrNotFound, [32]byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.RevokeToken(tt.arg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RevokeToken(%q): %v, want %v", tt.arg, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			tok, err := db.TokenByHash(tt.revokedH)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Revoked {
				t.Errorf("token %s not revoked", tok.ID)
			}
		})
	}
	tok, err := db.TokenByHash(toks[2].Hash)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Revoked {
		t.Error("revoking other tokens revoked the unnamed one")
	}
}
