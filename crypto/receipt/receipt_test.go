package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const testID = "0123456789abcdef0123456789abcdef"

func key(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

func signed(t testing.TB) (*Receipt, ed25519.PrivateKey) {
	t.Helper()
	priv := key(t, 1)
	r, err := Sign(priv, testID, 12345, sha256.Sum256([]byte("ciphertext")), time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return r, priv
}

func TestSignVerifyRoundTrip(t *testing.T) {
	r, priv := signed(t)
	pub := priv.Public().(ed25519.PublicKey)
	if err := r.Verify(pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	if *r2 != *r {
		t.Errorf("Parse(Marshal(r)) = %+v, want %+v", r2, r)
	}
	if err := r2.Verify(pub); err != nil {
		t.Errorf("Verify after round trip: %v", err)
	}
}

func TestMessage(t *testing.T) {
	r, _ := signed(t)
	sum := sha256.Sum256([]byte("ciphertext"))
	want := "testimony receipt v1\n" + testID + "\n12345\n" + hexString(sum[:]) + "\n2026-11-27\n"
	if got := string(r.Message()); got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestReceivedIsUTCDate(t *testing.T) {
	seoul := time.FixedZone("KST", 9*60*60)
	// 2026-11-28 08:30 in Seoul is still 2026-11-27 in UTC.
	r, err := Sign(key(t, 1), testID, 1, [32]byte{}, time.Date(2026, 11, 28, 8, 30, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != "2026-11-27" {
		t.Errorf("Received = %q, want 2026-11-27", r.Received)
	}
}

func TestSignRefuses(t *testing.T) {
	tests := []struct {
		name string
		priv ed25519.PrivateKey
		id   string
		size int64
	}{
		{"short key", key(t, 1)[:31], testID, 1},
		{"uppercase id", key(t, 1), strings.ToUpper(testID), 1},
		{"short id", key(t, 1), testID[:31], 1},
		{"non-hex id", key(t, 1), "g" + testID[1:], 1},
		{"negative size", key(t, 1), testID, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Sign(tt.priv, tt.id, tt.size, [32]byte{}, time.Now()); err == nil {
				t.Error("Sign succeeded, want error")
			}
		})
	}
}

func TestVerifyTamper(t *testing.T) {
	other := key(t, 2)
	tests := []struct {
		name   string
		modify func(r *Receipt)
		want   error
	}{
		{"id", func(r *Receipt) { r.ID = strings.Repeat("f", 32) }, ErrBadSignature},
		{"size", func(r *Receipt) { r.Size++ }, ErrBadSignature},
		{"sha256", func(r *Receipt) { r.SHA256 = strings.Repeat("0", 64) }, ErrBadSignature},
		{"received", func(r *Receipt) { r.Received = "2026-11-28" }, ErrBadSignature},
		{"signature", func(r *Receipt) {
			sig, _ := base64.StdEncoding.DecodeString(r.Signature)
			sig[0] ^= 1
			r.Signature = base64.StdEncoding.EncodeToString(sig)
		}, ErrBadSignature},
		{"signature by other key", func(r *Receipt) {
			r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(other, r.Message()))
		}, ErrBadSignature},
		{"key swapped", func(r *Receipt) { r.Key = KeyString(other.Public().(ed25519.PublicKey)) }, ErrWrongKey},
		{"version", func(r *Receipt) { r.Version = 2 }, ErrMalformed},
		{"garbage signature", func(r *Receipt) { r.Signature = "not base64" }, ErrMalformed},
		{"missing key", func(r *Receipt) { r.Key = "" }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, priv := signed(t)
			tt.modify(r)
			err := r.Verify(priv.Public().(ed25519.PublicKey))
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyWrongTrustedKey(t *testing.T) {
	r, _ := signed(t)
	err := r.Verify(key(t, 2).Public().(ed25519.PublicKey))
	if !errors.Is(err, ErrWrongKey) {
		t.Errorf("Verify with another key = %v, want ErrWrongKey", err)
	}
	if err := r.Verify(ed25519.PublicKey{1, 2, 3}); err == nil {
		t.Error("Verify with a 3-byte key succeeded")
	}
}

func TestParse(t *testing.T) {
	r, _ := signed(t)
	good, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// field replaces one "key":value pair of the good receipt.
	field := func(key, value string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		old := `"` + key + `":` + string(m[key])
		if !strings.Contains(string(good), old) {
			t.Fatalf("no %s in %s", old, good)
		}
		return strings.Replace(string(good), old, value, 1)
	}
	nonCanonicalKey := []byte(r.Key)
	nonCanonicalKey[42] = base64Alphabet[strings.IndexByte(base64Alphabet, nonCanonicalKey[42])|1]

	tests := []struct {
		name, in string
		wantErr  string // empty for success
	}{
		{"valid", string(good), ""},
		{"valid with spaces", strings.ReplaceAll(string(good), ",", " ,\n "), ""},
		{"empty", "", "unexpected end"},
		{"not an object", "[]", "must be an object"},
		{"null", "null", "null"},
		{"unknown field", strings.Replace(string(good), "{", `{"extra":1,`, 1), `unknown field "extra"`},
		{"duplicate field", strings.Replace(string(good), "{", `{"size":1,`, 1), `duplicate field "size"`},
		{"key in other case", field("id", `"ID":"`+testID+`"`), `unknown field "ID"`},
		{"null field", field("size", `"size":null`), "null"},
		{"missing field", strings.Replace(string(good), `,"signature":"`+r.Signature+`"`, "", 1), "signature"},
		{"trailing data", string(good) + "{}", "after the JSON document"},
		{"trailing garbage", string(good) + "x", "after the JSON document"},
		{"too large", string(good) + strings.Repeat(" ", MaxSize), "larger than"},
		{"version 2", field("version", `"version":2`), "unsupported version 2"},
		{"version string", field("version", `"version":"1"`), "must be a number"},
		{"size string", field("size", `"size":"12345"`), "must be a number"},
		{"size fraction", field("size", `"size":1.5`), "size"},
		{"size negative", field("size", `"size":-1`), "negative"},
		{"size nested", field("size", `"size":{"a":1}`), "must be a number"},
		{"id uppercase", field("id", `"id":"`+strings.ToUpper(testID)+`"`), "id must be"},
		{"id short", field("id", `"id":"abc"`), "id must be"},
		{"sha256 short", field("sha256", `"sha256":"00"`), "sha256 must be"},
		{"received with time", field("received", `"received":"2026-11-27T10:00:00Z"`), "received must be"},
		{"received impossible", field("received", `"received":"2026-02-30"`), "received must be"},
		{"received unpadded", field("received", `"received":"2026-1-2"`), "received must be"},
		{"key short", field("key", `"key":"AAAA"`), "key"},
		{"key not canonical", field("key", `"key":"`+string(nonCanonicalKey)+`"`), "key"},
		{"key unpadded", field("key", `"key":"`+strings.TrimRight(r.Key, "=")+`"`), "key"},
		{"signature short", field("signature", `"signature":"AAAA"`), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if *got != *r {
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

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func TestKeyRoundTrip(t *testing.T) {
	pub := key(t, 3).Public().(ed25519.PublicKey)
	got, err := ParseKey(KeyString(pub))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Error("ParseKey(KeyString(pub)) != pub")
	}
	for _, bad := range []string{"", "AAAA", KeyString(pub) + "\n", " " + KeyString(pub), base64.RawStdEncoding.EncodeToString(pub)} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}
