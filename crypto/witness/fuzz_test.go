package witness

import (
	"bytes"
	"testing"
	"time"
)

// FuzzOpen feeds Open arbitrary acknowledgements, seeded with a valid one:
// it must never panic, and whatever it accepts must be signed by the
// witness, over the log's checkpoint, with indexes in range and in order.
func FuzzOpen(f *testing.F) {
	logKey, cp := testLog(f, 10)
	skey, err := NewKey("fuzz-witness")
	if err != nil {
		f.Fatal(err)
	}
	k, _ := ParseKey(skey)
	v, _ := NewVerifier(k.VerifierKey())
	valid, err := Sign(k, cp, logKey, []int64{0, 4, 9}, time.Unix(1796000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"version":1,"checkpoint":"","statement":""}`))
	f.Add(bytes.Replace(valid, []byte("opened 3"), []byte("opened 4"), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(data, logKey, []*Verifier{v})
		if err != nil {
			return
		}
		if a.Witness != v || a.Checkpoint.Size != 10 {
			t.Fatalf("accepted witness %v, checkpoint size %d", a.Witness, a.Checkpoint.Size)
		}
		for i, x := range a.Indexes {
			if x < 0 || x >= 10 || i > 0 && x <= a.Indexes[i-1] {
				t.Fatalf("accepted indexes %v", a.Indexes)
			}
		}
	})
}

// FuzzNewVerifier: any string either fails or round-trips.
func FuzzNewVerifier(f *testing.F) {
	skey, _ := NewKey("w")
	k, _ := ParseKey(skey)
	f.Add(k.VerifierKey())
	f.Add("w+00000000+BAAA")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := NewVerifier(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("%q parsed as %q", s, v.String())
		}
	})
}
