package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseManifest feeds arbitrary bytes to the manifest parser. Whatever
// it accepts must satisfy everything Extract relies on, and must mean the
// same thing after a round trip through encoding/json, so the reviewer and
// any other JSON reader see one manifest.
func FuzzParseManifest(f *testing.F) {
	valid := `{"version":1,"case":"NK-1","interview_date":"2026-11-01","language":"ko","consent":"archive",` +
		`"created":"2026-11-27","files":[{"name":"a.txt","size":5,"sha256":"` + sum("hello") + `","media_type":"text/plain"}]}`
	for _, s := range []string{
		valid,
		`{"version":1,"created":"2026-11-27","files":[]}`,
		`{"version":1,"created":"2026-11-27","files":[],"version":1}`,
		`{"version":1,"created":"2026-11-27","Files":[]}`,
		`{"version":1,"created":"2026-11-27","files":null}`,
		`{"version":2,"created":"2026-11-27","files":[],"signature":"x"}`,
		`{"version":1,"created":"2026-02-30","files":[]}`,
		`{"version":1.0,"created":"2026-11-27","files":[]}`,
		`{"version":1,"created":"2026-11-27","files":[{"name":"caf\u00e9","size":0,"sha256":"` + sum("") + `","media_type":""},` +
			`{"name":"cafe\u0301","size":0,"sha256":"` + sum("") + `","media_type":""}]}`,
		`{"version":1,"created":"2026-11-27","files":[{"name":"../x","size":0,"sha256":"` + sum("") + `","media_type":""}]}`,
		`{"version":1,"created":"2026-11-27","files":[{"name":"a","size":99999999999999999999,"sha256":"` + sum("") + `","media_type":""}]}`,
		`{"version":1,"created":"2026-11-27","files":[{"name":"a","size":-0,"sha256":"` + sum("") + `","media_type":"text/plain; charset=\"utf-8\""}]}`,
		`{"version":1,"created":"2026-11-27","case":"\u001b]0;x\u0007","files":[]}`,
		`{"version":1,"created":"2026-11-27","case":"\ud800","files":[]}`,
		`{"version":1,"created":"2026-11-27","files":[]} {}`,
		`[{"version":1}]`,
		"\xef\xbb\xbf{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if err := m.validate(DefaultLimits); err != nil {
			t.Fatalf("accepted a manifest that does not validate: %v", err)
		}
		seen := map[string]bool{foldKey(ManifestName): true, foldKey(SignatureName): true}
		for _, f := range m.Files {
			if err := checkComponent(f.Name); err != nil {
				t.Fatalf("accepted file name %q: %v", f.Name, err)
			}
			if k := foldKey(f.Name); seen[k] {
				t.Fatalf("accepted %q, which collides with another name", f.Name)
			} else {
				seen[k] = true
			}
		}
		// encoding/json must read the same manifest, and re-encoding it
		// must give a document that parses to it again.
		var loose Manifest
		if err := json.Unmarshal(data, &loose); err != nil || !reflect.DeepEqual(&loose, m) {
			t.Fatalf("encoding/json reads %+v, %v; ParseManifest read %+v", loose, err, m)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v, %v", m2, err)
		}
	})
}

// FuzzManifestSig feeds arbitrary manifest.sig content and device key
// strings to their parsers. An accepted signature verifies over the
// manifest with the key it names, every refusal is an ErrInvalid, and an
// accepted device key string is the one canonical encoding of its key.
func FuzzManifestSig(f *testing.F) {
	manifest := []byte(`{"version":1,"created":"2026-11-27","files":[]}`)
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	sig, err := signManifest(priv, manifest)
	if err != nil {
		f.Fatal(err)
	}
	key := DeviceKeyString(priv.Public().(ed25519.PublicKey))
	f.Add(sig, manifest, key)
	f.Add(bytes.Replace(sig, []byte(`"version":1`), []byte(`"version":2`), 1), manifest, key+"=")
	f.Add(bytes.Replace(sig, []byte(`"key"`), []byte(`"Key"`), 1), append(bytes.Clone(manifest), ' '), "TDK1"+key[4:])
	f.Add([]byte(`{"version":1,"key":"tdk1","signature":""}`), manifest, "tdk1"+strings.Repeat("_", 43))
	f.Fuzz(func(t *testing.T, sigData, manifestJSON []byte, keyString string) {
		if pub, err := ParseDeviceKey(keyString); err == nil && DeviceKeyString(pub) != keyString {
			t.Fatalf("device key %q accepted, canonically %q", keyString, DeviceKeyString(pub))
		}
		s, err := verifyManifest(sigData, manifestJSON)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		pub, err := ParseDeviceKey(s.Key)
		if err != nil {
			t.Fatalf("accepted a signature by unparsable key %q", s.Key)
		}
		raw, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || !ed25519.Verify(pub, signedMessage(manifestJSON), raw) {
			t.Fatalf("accepted a signature that does not verify: %+v", s)
		}
	})
}
