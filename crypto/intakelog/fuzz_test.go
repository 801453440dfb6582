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
		// again is the body, a blank line and the log key's one signature
		// line; data must be the same body and blank line, and carry that
		// very line among its signatures.
		again := signedCheckpoint(t, skey, c)
		head := append(c.Body(), '\n')
		if !bytes.HasPrefix(again, head) {
			t.Fatalf("re-signed note %q does not start with its body %q and a blank line", again, c.Body())
		}
		if !bytes.HasPrefix(data, head) {
			t.Fatalf("accepted note %q does not start with its body %q and a blank line", data, c.Body())
		}
		sig := again[len(head):]
		if !slices.ContainsFunc(bytes.SplitAfter(data[len(head):], []byte("\n")), func(line []byte) bool { return bytes.Equal(line, sig) }) {
			t.Fatalf("accepted note %q does not carry the signature line %q that re-signing its body makes", data, sig)
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
