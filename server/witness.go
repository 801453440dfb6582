package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/store"
)

// Errors of witness management.
var (
	ErrWitnessNotFound    = errors.New("no witness has this name")
	ErrWitnessNameTaken   = errors.New("a witness with this name already exists")
	ErrInvalidWitnessName = errors.New("witness name must be 1 to 64 letters, digits, '.', '_', '-' or '@', and not 16 hex digits")
	ErrInvalidWitnessKey  = errors.New("not a witness key: expected the NAME+HASH+KEY line printed by \"testimony-review log witness-key\"")
)

// WitnessInfo is a registered witness: a reviewer machine whose
// acknowledgements delete ciphertext.
type WitnessInfo struct {
	Name  string    `json:"name"`
	Key   string    `json:"key"`
	Added time.Time `json:"added"`
}

func addWitness(db *store.DB, name, vkey string, now time.Time) (WitnessInfo, error) {
	if !validTokenName(name) {
		return WitnessInfo{}, ErrInvalidWitnessName
	}
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		return WitnessInfo{}, fmt.Errorf("%w (%v)", ErrInvalidWitnessKey, err)
	}
	ws, err := db.Witnesses()
	if err != nil {
		return WitnessInfo{}, err
	}
	for _, w := range ws {
		if w.Key == v.String() {
			return WitnessInfo{}, fmt.Errorf("%w: this key is already registered as %q", ErrWitnessNameTaken, w.Name)
		}
	}
	w := store.Witness{Name: name, Key: v.String(), Added: now}
	if err := db.AddWitness(w); errors.Is(err, store.ErrExists) {
		return WitnessInfo{}, ErrWitnessNameTaken
	} else if err != nil {
		return WitnessInfo{}, err
	}
	ws, err = db.Witnesses()
	if err != nil {
		return WitnessInfo{}, err
	}
	for _, w := range ws {
		if w.Name == name {
			return WitnessInfo{Name: w.Name, Key: w.Key, Added: w.Added}, nil
		}
	}
	return WitnessInfo{}, ErrWitnessNotFound
}

func listWitnesses(db *store.DB) ([]WitnessInfo, error) {
	ws, err := db.Witnesses()
	if err != nil {
		return nil, err
	}
	out := make([]WitnessInfo, 0, len(ws))
	for _, w := range ws {
		out = append(out, WitnessInfo{Name: w.Name, Key: w.Key, Added: w.Added})
	}
	return out, nil
}

func removeWitness(db *store.DB, name string) error {
	if err := db.RemoveWitness(name); errors.Is(err, store.ErrNotFound) {
		return ErrWitnessNotFound
	} else if err != nil {
		return err
	}
	return nil
}

// witnessVerifiers returns the registered witnesses' verifiers, and their
// names by verifier key.
func witnessVerifiers(db *store.DB) ([]*witness.Verifier, map[*witness.Verifier]string, error) {
	ws, err := db.Witnesses()
	if err != nil {
		return nil, nil, err
	}
	vs := make([]*witness.Verifier, 0, len(ws))
	names := make(map[*witness.Verifier]string, len(ws))
	for _, w := range ws {
		v, err := witness.NewVerifier(w.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("registered witness %q: %w", w.Name, err)
		}
		vs = append(vs, v)
		names[v] = w.Name
	}
	return vs, names, nil
}

// The admin protocol of witnesses.

type adminWitnessRequest struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

type adminWitnessesResponse struct {
	Witnesses []WitnessInfo `json:"witnesses"`
}

func (a *localAdmin) AddWitness(name, key string) (WitnessInfo, error) {
	return addWitness(a.db, name, key, time.Now())
}

func (a *localAdmin) Witnesses() ([]WitnessInfo, error) { return listWitnesses(a.db) }

func (a *localAdmin) RemoveWitness(name string) error { return removeWitness(a.db, name) }

func (a *localAdmin) handleWitnesses(*call) (any, int, error) {
	ws, err := a.Witnesses()
	if err != nil {
		return nil, 0, adminError(err)
	}
	return &adminWitnessesResponse{Witnesses: ws}, http.StatusOK, nil
}

func (a *localAdmin) handleAddWitness(c *call) (any, int, error) {
	var req adminWitnessRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return nil, 0, err
	}
	info, err := a.AddWitness(req.Name, req.Key)
	if err != nil {
		return nil, 0, adminError(err)
	}
	return &info, http.StatusCreated, nil
}

func (a *localAdmin) handleRemoveWitness(c *call) (any, int, error) {
	var req adminWitnessRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return nil, 0, err
	}
	if err := a.RemoveWitness(req.Name); err != nil {
		return nil, 0, adminError(err)
	}
	return nil, http.StatusNoContent, nil
}

func (a *socketAdmin) AddWitness(name, key string) (WitnessInfo, error) {
	var info WitnessInfo
	err := a.do("POST", "/admin/witnesses", &adminWitnessRequest{Name: name, Key: key}, &info)
	return info, err
}

func (a *socketAdmin) Witnesses() ([]WitnessInfo, error) {
	var resp adminWitnessesResponse
	if err := a.do("GET", "/admin/witnesses", nil, &resp); err != nil {
		return nil, err
	}
	return resp.Witnesses, nil
}

func (a *socketAdmin) RemoveWitness(name string) error {
	return a.do("POST", "/admin/witnesses/remove", &adminWitnessRequest{Name: name}, nil)
}
