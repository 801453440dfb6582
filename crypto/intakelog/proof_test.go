package intakelog

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// sizes returns the tree sizes the property tests cover: every size up to
// 70 (all shapes of small trees, around powers of two), then random sizes up
// to a few thousand.
func sizes(t *testing.T, r *rand.Rand) []int64 {
	var out []int64
	for n := int64(1); n <= 70; n++ {
		out = append(out, n)
	}
	random := 20
	if testing.Short() {
		random = 3
	}
	for range random {
		out = append(out, 71+r.Int64N(4000))
	}
	out = append(out, 1024, 1025, 2047, 2048)
	t.Logf("sizes: %v", out[70:])
	return out
}

// indexes returns every index below n if n is small, else a random sample
// that includes both ends.
func indexes(r *rand.Rand, n int64) []int64 {
	if n <= 70 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	out := []int64{0, n - 1, n / 2}
	for range 30 {
		out = append(out, r.Int64N(n))
	}
	return out
}

func flip(h tlog.Hash) tlog.Hash {
	h[r0(len(h))] ^= 1
	return h
}

var flipper = rand.New(rand.NewPCG(1, 2))

func r0(n int) int { return flipper.IntN(n) }

func TestInclusionProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all := sizes(t, r)
	m := newMemLog(t, int(slices.Max(all)))
	for _, n := range all {
		cp := m.checkpoint(t, n)
		for _, i := range indexes(r, n) {
			proof, err := tlog.ProveRecord(n, i, m)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(cp, i, m.leaves[i], proof); err != nil {
				t.Fatalf("size %d, index %d: %v", n, i, err)
			}
			fail := func(what string, cp Checkpoint, i int64, leaf Leaf, proof []tlog.Hash) {
				t.Helper()
				if err := VerifyInclusion(cp, i, leaf, proof); !errors.Is(err, ErrInclusion) {
					t.Fatalf("size %d, index %d, %s: VerifyInclusion = %v, want ErrInclusion", n, i, what, err)
				}
			}
			fail("tampered root", Checkpoint{cp.Origin, cp.Size, flip(cp.Root)}, i, m.leaves[i], proof)
			other := m.leaves[i]
			other.Size++
			fail("tampered leaf", cp, i, other, proof)
			if n > 1 {
				fail("leaf of index+1", cp, i, m.leaves[(i+1)%n], proof)
				fail("other index", cp, (i+1)%n, m.leaves[i], proof)
			}
			for j := range proof {
				bad := slices.Clone(proof)
				bad[j] = flip(bad[j])
				fail("tampered proof hash", cp, i, m.leaves[i], bad)
			}
			if len(proof) > 0 {
				fail("short proof", cp, i, m.leaves[i], proof[:len(proof)-1])
			}
			fail("long proof", cp, i, m.leaves[i], append(slices.Clone(proof), cp.Root))
			fail("index past the end", cp, n, m.leaves[i], proof)
			fail("negative index", cp, -1, m.leaves[i], proof)
		}
	}
}

func TestConsistencyProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	all := sizes(t, r)
	m := newMemLog(t, int(slices.Max(all)))
	for _, n := range all {
		newCP := m.checkpoint(t, n)
		olds := indexes(r, n+1)
		for _, o := range olds {
			oldCP := m.checkpoint(t, o)
			var proof []tlog.Hash
			if o > 0 {
				var err error
				if proof, err = tlog.ProveTree(n, o, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := VerifyConsistency(oldCP, newCP, proof); err != nil {
				t.Fatalf("%d -> %d: %v", o, n, err)
			}
			if o < n {
				if err := VerifyConsistency(newCP, oldCP, proof); !errors.Is(err, ErrRollback) {
					t.Fatalf("%d -> %d: VerifyConsistency = %v, want ErrRollback", n, o, err)
				}
			}
			if o == n || o == 0 {
				continue
			}
			fail := func(what string, old, new Checkpoint, proof []tlog.Hash) {
				t.Helper()
				if err := VerifyConsistency(old, new, proof); !errors.Is(err, ErrInconsistent) {
					t.Fatalf("%d -> %d, %s: VerifyConsistency = %v, want ErrInconsistent", o, n, what, err)
				}
			}
			fail("tampered old root", Checkpoint{oldCP.Origin, o, flip(oldCP.Root)}, newCP, proof)
			fail("tampered new root", oldCP, Checkpoint{newCP.Origin, n, flip(newCP.Root)}, proof)
			for j := range proof {
				bad := slices.Clone(proof)
				bad[j] = flip(bad[j])
				fail("tampered proof hash", oldCP, newCP, bad)
			}
			fail("short proof", oldCP, newCP, proof[:len(proof)-1])
			fail("long proof", oldCP, newCP, append(slices.Clone(proof), newCP.Root))
			if o > 1 {
				fail("other old size", m.checkpoint(t, o-1), newCP, proof)
			}
			fail("other log", oldCP, Checkpoint{"elsewhere", n, newCP.Root}, proof)
		}
	}
}

// TestFork builds two logs that share a prefix and then differ, as a server
// showing two histories would, and checks every way of comparing them.
func TestFork(t *testing.T) {
	a := newMemLog(t, 10)
	b := newMemLog(t, 6)
	for i := 6; i < 10; i++ {
		l := testLeaf(i)
		l.SHA256 = l.SHA256[:63] + "f" // a swapped ciphertext
		b.add(t, l)
	}
	for size := int64(7); size <= 10; size++ {
		ca, cb := a.checkpoint(t, size), b.checkpoint(t, size)
		if err := VerifyConsistency(ca, cb, nil); !errors.Is(err, ErrFork) {
			t.Errorf("same size %d, different roots: VerifyConsistency = %v, want ErrFork", size, err)
		}
	}
	// The shared prefix is consistent with both; a checkpoint of one is not
	// consistent with the other's later checkpoint, whatever proof is used.
	shared := a.checkpoint(t, 6)
	for _, m := range []*memLog{a, b} {
		proof, _ := tlog.ProveTree(10, 6, m)
		if err := VerifyConsistency(shared, m.checkpoint(t, 10), proof); err != nil {
			t.Errorf("shared prefix: %v", err)
		}
	}
	for _, proofLog := range []*memLog{a, b} {
		proof, _ := tlog.ProveTree(10, 8, proofLog)
		if err := VerifyConsistency(a.checkpoint(t, 8), b.checkpoint(t, 10), proof); !errors.Is(err, ErrInconsistent) {
			t.Errorf("forked 8 -> 10: VerifyConsistency = %v, want ErrInconsistent", err)
		}
	}
}

func TestConsistencyEdgeCases(t *testing.T) {
	m := newMemLog(t, 5)
	empty, five := m.checkpoint(t, 0), m.checkpoint(t, 5)
	tests := []struct {
		name     string
		old, new Checkpoint
		proof    []tlog.Hash
		want     error // nil for success
	}{
		{"empty to five", empty, five, nil, nil},
		{"empty to empty", empty, empty, nil, nil},
		{"same checkpoint", five, five, nil, nil},
		{"same checkpoint with a proof", five, five, []tlog.Hash{five.Root}, ErrInconsistent},
		{"empty with a proof", empty, five, []tlog.Hash{five.Root}, ErrInconsistent},
		{"empty with a root", Checkpoint{empty.Origin, 0, five.Root}, five, nil, ErrInconsistent},
		{"five to empty", five, empty, nil, ErrRollback},
		{"negative size", Checkpoint{five.Origin, -1, five.Root}, five, nil, ErrInconsistent},
		{"too long proof", m.checkpoint(t, 3), five, make([]tlog.Hash, MaxProofHashes+1), ErrInconsistent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyConsistency(tt.old, tt.new, tt.proof)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("VerifyConsistency = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProofEncoding(t *testing.T) {
	m := newMemLog(t, 100)
	proof, err := tlog.ProveRecord(100, 42, m)
	if err != nil {
		t.Fatal(err)
	}
	enc := EncodeProof(proof)
	got, err := DecodeProof(enc)
	if err != nil || !slices.Equal(got, []tlog.Hash(proof)) {
		t.Fatalf("DecodeProof(EncodeProof(p)) = %v, %v", got, err)
	}
	if got, err := DecodeProof(EncodeProof(nil)); err != nil || len(got) != 0 {
		t.Errorf("empty proof: %v, %v", got, err)
	}
	noncanonical := []byte(enc[0])
	noncanonical[42] = 'B' // the last character before "=" carries 2 unused bits
	for _, bad := range [][]string{
		{""},
		{enc[0][:43]},
		{enc[0] + "="},
		{" " + enc[0][1:]},
		{string(noncanonical)},
		{enc[0][:40] + "\n" + enc[0][41:]},
		{"!" + enc[0][1:]},
		make([]string, MaxProofHashes+1),
	} {
		if _, err := DecodeProof(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeProof(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}
