package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
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

// memLog is an in-memory intake log, as the server keeps in bbolt.
type memLog struct {
	hashes []tlog.Hash
	leaves []intakelog.Leaf
	signer note.Signer
}

func newMemLog(t testing.TB, skey string) *memLog {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &memLog{signer: s}
}

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) add(t testing.TB, l intakelog.Leaf) int64 {
	t.Helper()
	n := int64(len(m.leaves))
	hs, err := tlog.StoredHashes(n, l.Bytes(), m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.leaves = append(m.leaves, l)
	return n
}

// receipt returns the receipt for leaf index at the current size.
func (m *memLog) receipt(t testing.TB, index int64) *Receipt {
	t.Helper()
	size := int64(len(m.leaves))
	root, err := tlog.TreeHash(size, m)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: m.signer.Name(), Size: size, Root: root}, m.signer)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := tlog.ProveRecord(size, index, m)
	if err != nil {
		t.Fatal(err)
	}
	return New(m.leaves[index], index, cp, proof)
}

func testLeaf(i int) intakelog.Leaf {
	const hex = "0123456789abcdef"
	return intakelog.Leaf{
		ID:     strings.Repeat(string(hex[i%16]), 32),
		SHA256: strings.Repeat(string(hex[(i+1)%16]), 64),
		Size:   int64(1000 + i),
		Date:   "2026-11-27",
	}
}
