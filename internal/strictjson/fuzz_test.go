package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzUnmarshal checks Unmarshal against encoding/json: a document it
// accepts has exactly one reading, so encoding/json, even lenient, must
// read the same value from it, and the value must survive a round trip.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"ok":true,"items":[{"name":"a","size":1}],"Plain":"p"}`,
		`{"version":1,"version":2}`,
		`{"Version":1}`,
		`{"version":null}`,
		`{"items":[{"name":"a","NAME":"b"}]}`,
		`{"items":[[{"name":"a"}]]}`,
		`{"version":1e2}`,
		`{"version":1.5}`,
		`{"version":99999999999999999999}`,
		`{"note":"\ud800"}`,
		`{"note":"a"} x`,
		`{"-":"x","Skipped":"y"}`,
		`{"\u0076ersion":1}`,
		`{"ſkipped":"x","oK":true}`,
		`[` + `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict doc
		if err := Unmarshal(data, &strict); err != nil {
			return
		}
		var loose doc
		if err := json.Unmarshal(data, &loose); err != nil {
			t.Fatalf("Unmarshal accepted what encoding/json refuses: %v", err)
		}
		if !reflect.DeepEqual(strict, loose) {
			t.Fatalf("two readings: strict %+v, encoding/json %+v", strict, loose)
		}
		if strict.Items == nil {
			return // encoding/json writes a missing array as null, which is refused
		}
		again, err := json.Marshal(strict)
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := Unmarshal(again, &back); err != nil || !reflect.DeepEqual(back, strict) {
			t.Fatalf("round trip of %s: %+v, %v", again, back, err)
		}
	})
}
