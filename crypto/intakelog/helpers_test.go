package intakelog

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// fixedKey returns a note signer and verifier key named name derived from a
// one-byte seed, so signatures (and examples) are reproducible.
func fixedKey(t testing.TB, name string, seed byte) (skey, vkey string) {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Split(vkey, "+")[1]
	skey = "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, s...))
	return skey, vkey
}

func signer(t testing.TB, skey string) note.Signer {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memLog is an in-memory log, as the server keeps it in bbolt.
type memLog struct {
	origin string
	hashes []tlog.Hash
	leaves []Leaf
}

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) add(t testing.TB, l Leaf) {
	t.Helper()
	hs, err := tlog.StoredHashes(int64(len(m.leaves)), l.Bytes(), m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.leaves = append(m.leaves, l)
}

// checkpoint returns the checkpoint of the first size leaves.
func (m *memLog) checkpoint(t testing.TB, size int64) Checkpoint {
	t.Helper()
	root, err := tlog.TreeHash(size, m)
	if err != nil {
		t.Fatal(err)
	}
	return Checkpoint{Origin: m.origin, Size: size, Root: root}
}

func testLeaf(i int) Leaf {
	return Leaf{
		ID:     fmt.Sprintf("%032x", i),
		SHA256: fmt.Sprintf("%064x", i*7919+1),
		Size:   int64(i),
		Date:   "2026-11-27",
	}
}

func newMemLog(t testing.TB, n int) *memLog {
	m := &memLog{origin: "testimony-log-0a1b2c3d"}
	for i := range n {
		m.add(t, testLeaf(i))
	}
	return m
}
