package receipt

import (
	"encoding/json"
	"testing"
)

func FuzzReceiptParse(f *testing.F) {
	_, r, vkey := signedLog(f)
	good, _ := json.Marshal(r)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":2,"version":2}`))
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
		if !equal(r, r2) {
			t.Fatalf("round trip changed %+v to %+v", r, r2)
		}
		_, _ = r.Verify(vkey)
	})
}
