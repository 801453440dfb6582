package intakelog

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func FuzzOpenCheckpoint(f *testing.F) {
	skey, vkey := fixedKey(f, origin, 1)
	m := newMemLog(f, 3)
	good := signedCheckpoint(f, skey, m.checkpoint(f, 3))
	f.Add(good)
	f.Add(signedCheckpoint(f, skey, m.checkpoint(f, 0)))
	f.Add([]byte(origin + "\n3\n\n— " + origin + " AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := OpenCheckpoint(data, vkey)
		if err != nil {
			return
		}
		// What opens is a canonical checkpoint of this log; re-signing its
		// body reproduces the signed text (Ed25519 is deterministic), so
		// nothing else in the note can carry a second meaning beyond
		// cosignatures.
		if c.Origin != origin || c.Size < 0 {
			t.Fatalf("OpenCheckpoint accepted %+v", c)
		}
		again := signedCheckpoint(t, skey, c)
		if !bytes.HasPrefix(data, c.Body()) || !bytes.HasPrefix(again, c.Body()) {
			t.Fatalf("accepted note %q does not start with its body %q", data, c.Body())
		}
	})
}

func FuzzParseLeaf(f *testing.F) {
	f.Add(testLeaf(0).Bytes())
	f.Add(testLeaf(99).Bytes())
	f.Add([]byte(LeafVersion + "\n\n\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLeaf(data)
		if err != nil {
			return
		}
		// Strict means one encoding per leaf.
		if !bytes.Equal(l.Bytes(), data) {
			t.Fatalf("ParseLeaf(%q) = %+v, which encodes as %q", data, l, l.Bytes())
		}
	})
}

func FuzzDecodeProof(f *testing.F) {
	m := newMemLog(f, 5)
	f.Add([]byte(strings.Join(EncodeProof(m.hashes[:3]), "\n")))
	f.Add([]byte("\nAAAA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fuzzer mutates one byte string; lines are the proof's hashes.
		var s []string
		if len(data) > 0 {
			s = strings.Split(string(data), "\n")
		}
		p, err := DecodeProof(s)
		if err != nil {
			return
		}
		if !slices.Equal(EncodeProof(p), s) {
			t.Fatalf("DecodeProof(%q) is not canonical", s)
		}
	})
}
