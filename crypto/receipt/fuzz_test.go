package receipt

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
)

func FuzzReceiptParse(f *testing.F) {
	r, _ := signed(f)
	good, _ := json.Marshal(r)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		// Anything Parse accepts re-encodes to something Parse reads the
		// same way, and can be verified without panicking.
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))): %v", data, err)
		}
		if *r2 != *r {
			t.Fatalf("round trip changed %+v to %+v", r, r2)
		}
		key, err := ParseKey(r.Key)
		if err != nil {
			t.Fatalf("accepted receipt has a bad key: %v", err)
		}
		_ = r.Verify(key)
		_ = r.Verify(make(ed25519.PublicKey, ed25519.PublicKeySize))
	})
}
