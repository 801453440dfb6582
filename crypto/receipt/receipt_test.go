package receipt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
)

const origin = "testimony-log-0a1b2c3d"

// signedLog returns a log of 5 leaves, a receipt for leaf 3 and the log's
// verifier key.
func signedLog(t testing.TB) (*memLog, *Receipt, string) {
	t.Helper()
	skey, vkey := fixedKey(t, origin, 1)
	m := newMemLog(t, skey)
	for i := range 5 {
		m.add(t, testLeaf(i))
	}
	return m, m.receipt(t, 3), vkey
}

func TestNewVerifyRoundTrip(t *testing.T) {
	m, r, vkey := signedLog(t)
	cp, err := r.Verify(vkey)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if cp.Size != 5 || cp.Origin != origin {
		t.Errorf("Verify returned checkpoint %+v, want size 5 of %s", cp, origin)
	}
	if r.Leaf() != m.leaves[3] {
		t.Errorf("Leaf() = %+v, want %+v", r.Leaf(), m.leaves[3])
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	if !equal(r, r2) {
		t.Errorf("Parse(Marshal(r)) = %+v, want %+v", r2, r)
	}
	if _, err := r2.Verify(vkey); err != nil {
		t.Errorf("Verify after round trip: %v", err)
	}
}

func equal(a, b *Receipt) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestSingleLeafLog(t *testing.T) {
	skey, vkey := fixedKey(t, origin, 1)
	m := newMemLog(t, skey)
	m.add(t, testLeaf(0))
	r := m.receipt(t, 0)
	data, _ := json.Marshal(r)
	if !strings.Contains(string(data), `"proof":[]`) {
		t.Errorf("receipt of a one-leaf log has no empty proof: %s", data)
	}
	r2, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Verify(vkey); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVerifyTamper(t *testing.T) {
	otherSkey, _ := fixedKey(t, origin, 2)
	other := newMemLog(t, otherSkey)
	for i := range 5 {
		other.add(t, testLeaf(i))
	}
	byOtherKey := other.receipt(t, 3).Checkpoint
	_, vkey := fixedKey(t, origin, 1)

	tests := []struct {
		name   string
		modify func(r *Receipt)
		want   error
	}{
		{"id", func(r *Receipt) { r.ID = strings.Repeat("f", 32) }, intakelog.ErrInclusion},
		{"size", func(r *Receipt) { r.Size++ }, intakelog.ErrInclusion},
		{"sha256", func(r *Receipt) { r.SHA256 = strings.Repeat("0", 64) }, intakelog.ErrInclusion},
		{"received", func(r *Receipt) { r.Received = "2026-11-28" }, intakelog.ErrInclusion},
		{"index", func(r *Receipt) { r.Index = 2 }, intakelog.ErrInclusion},
		{"index past the checkpoint", func(r *Receipt) { r.Index = 5 }, intakelog.ErrInclusion},
		{"proof hash", func(r *Receipt) { r.Proof[0] = r.Proof[1] }, intakelog.ErrInclusion},
		{"proof truncated", func(r *Receipt) { r.Proof = r.Proof[1:] }, intakelog.ErrInclusion},
		{"checkpoint size", func(r *Receipt) {
			r.Checkpoint = strings.Replace(r.Checkpoint, "\n5\n", "\n6\n", 1)
		}, intakelog.ErrBadSignature},
		{"checkpoint by another key", func(r *Receipt) { r.Checkpoint = byOtherKey }, intakelog.ErrUnknownKey},
		{"checkpoint garbage", func(r *Receipt) { r.Checkpoint = "hello" }, intakelog.ErrMalformed},
		{"version", func(r *Receipt) { r.Version = 1 }, ErrMalformed},
		{"proof not base64", func(r *Receipt) { r.Proof[0] = "!" }, ErrMalformed},
		{"proof missing", func(r *Receipt) { r.Proof = nil }, ErrMalformed},
		{"negative index", func(r *Receipt) { r.Index = -1 }, ErrMalformed},
		{"empty checkpoint", func(r *Receipt) { r.Checkpoint = "" }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, _ := signedLog(t)
			tt.modify(r)
			_, err := r.Verify(vkey)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyWrongTrustedKey(t *testing.T) {
	_, r, _ := signedLog(t)
	_, otherName := fixedKey(t, "other-log", 1)
	if _, err := r.Verify(otherName); !errors.Is(err, intakelog.ErrUnknownKey) {
		t.Errorf("Verify with a key of another name = %v, want ErrUnknownKey", err)
	}
	_, otherKey := fixedKey(t, origin, 9)
	if _, err := r.Verify(otherKey); !errors.Is(err, intakelog.ErrUnknownKey) {
		t.Errorf("Verify with another key of the same name = %v, want ErrUnknownKey", err)
	}
	if _, err := r.Verify("not a key"); err == nil {
		t.Error("Verify with a garbage key succeeded")
	}
}

func TestParse(t *testing.T) {
	_, r, _ := signedLog(t)
	good, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	cpJSON, _ := json.Marshal(r.Checkpoint)
	field := func(name, replacement string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		old := `"` + name + `":` + string(m[name])
		if !strings.Contains(string(good), old) {
			t.Fatalf("field %s not found", name)
		}
		return strings.Replace(string(good), old, replacement, 1)
	}
	proofJSON, _ := json.Marshal(r.Proof)

	tests := []struct {
		name, in string
		wantErr  string // empty for success
	}{
		{"valid", string(good), ""},
		{"valid with spaces", strings.ReplaceAll(string(good), `","`, `" , "`), ""},
		{"empty", "", "unexpected end"},
		{"not an object", "[]", "must be an object"},
		{"null", "null", "null"},
		{"unknown field", strings.Replace(string(good), "{", `{"extra":1,`, 1), `unknown field "extra"`},
		{"v1 key field", strings.Replace(string(good), "{", `{"key":"AAAA",`, 1), `unknown field "key"`},
		{"duplicate field", strings.Replace(string(good), "{", `{"size":1,`, 1), `duplicate field "size"`},
		{"key in other case", field("id", `"ID":"`+r.ID+`"`), `unknown field "ID"`},
		{"null field", field("size", `"size":null`), "null"},
		{"null proof", field("proof", `"proof":null`), "null"},
		{"missing proof", strings.Replace(string(good), `,"proof":`+string(proofJSON), "", 1), "proof"},
		{"missing checkpoint", strings.Replace(string(good), `,"checkpoint":`+string(cpJSON), "", 1), "checkpoint"},
		{"trailing data", string(good) + "{}", "after the JSON document"},
		{"too large", string(good) + strings.Repeat(" ", MaxSize), "larger than"},
		{"version 1", field("version", `"version":1`), "unsupported version 1"},
		{"version string", field("version", `"version":"2"`), "must be a number"},
		{"size fraction", field("size", `"size":1.5`), "size"},
		{"size negative", field("size", `"size":-1`), "size must be"},
		{"index negative", field("index", `"index":-1`), "negative"},
		{"index string", field("index", `"index":"3"`), "must be a number"},
		{"id uppercase", field("id", `"id":"`+strings.Repeat("A", 32)+`"`), "id must be"},
		{"id with newline", field("id", `"id":"`+r.ID[:31]+`\n"`), "log leaf"},
		{"sha256 short", field("sha256", `"sha256":"00"`), "sha256 must be"},
		{"received with time", field("received", `"received":"2026-11-27T10:00:00Z"`), "log leaf"},
		{"received impossible", field("received", `"received":"2026-02-30"`), "date must be"},
		{"checkpoint too large", field("checkpoint", `"checkpoint":"`+strings.Repeat("a", intakelog.MaxCheckpointSize+1)+`"`), "checkpoint must be"},
		{"proof unpadded", field("proof", `"proof":["`+strings.TrimRight(r.Proof[0], "=")+`"]`), "hash 0"},
		{"proof too long", field("proof", `"proof":[`+strings.Repeat(`"`+r.Proof[0]+`",`, intakelog.MaxProofHashes)+`"`+r.Proof[0]+`"]`), "more than"},
		{"proof of numbers", field("proof", `"proof":[1]`), "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !equal(got, r) {
					t.Errorf("Parse = %+v, want %+v", got, r)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.wantErr)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
