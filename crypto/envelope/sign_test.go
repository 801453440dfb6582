package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/ids"
)

func deviceKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

// sigEntry returns a manifest.sig entry signing the manifest entry m.
func sigEntry(t testing.TB, priv ed25519.PrivateKey, m entry) entry {
	t.Helper()
	sig, err := signManifest(priv, []byte(m.body))
	if err != nil {
		t.Fatal(err)
	}
	return file(SignatureName, string(sig))
}

// entryNames lists the entries of a tar archive.
func entryNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

func TestBuildSigned(t *testing.T) {
	src := t.TempDir()
	paths := []string{writeFile(t, src, "a.txt", []byte("hello")), writeFile(t, src, "b.bin", []byte{1, 2, 3})}
	priv := deviceKey(1)
	pub := priv.Public().(ed25519.PublicKey)
	for _, signed := range []bool{true, false} {
		var buf bytes.Buffer
		var signer ed25519.PrivateKey
		if signed {
			signer = priv
		}
		if _, err := Build(&buf, Meta{Case: "NK-1"}, paths, signer); err != nil {
			t.Fatalf("Build: %v", err)
		}
		want := []string{ManifestName, "a.txt", "b.bin"}
		if signed {
			want = []string{ManifestName, SignatureName, "a.txt", "b.bin"}
		}
		if got := entryNames(t, buf.Bytes()); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("signed=%v: entries %v, want %v", signed, got, want)
		}
		res, out, err := extractTo(t, buf.Bytes(), Limits{})
		if err != nil {
			t.Fatalf("signed=%v: Extract: %v", signed, err)
		}
		onDisk, err := os.ReadFile(filepath.Join(out, ManifestName))
		if err != nil || !bytes.Equal(onDisk, res.ManifestJSON) {
			t.Errorf("ManifestJSON %q is not manifest.json %q (%v)", res.ManifestJSON, onDisk, err)
		}
		if len(res.Files) != 2 {
			t.Errorf("Files = %+v", res.Files)
		}
		_, statErr := os.Stat(filepath.Join(out, SignatureName))
		if !signed {
			if res.Signature != nil || res.SignatureStatus != SigNone || statErr == nil {
				t.Errorf("unsigned envelope: Signature %+v, status %v, manifest.sig on disk: %v", res.Signature, res.SignatureStatus, statErr == nil)
			}
			continue
		}
		if res.SignatureStatus != SigValid || res.Signature == nil || res.Signature.Key != DeviceKeyString(pub) {
			t.Errorf("signed envelope: Signature %+v, status %v", res.Signature, res.SignatureStatus)
		}
		if statErr != nil {
			t.Errorf("manifest.sig was not written: %v", statErr)
		}
		// The signature is over the prefix and the exact manifest bytes.
		sig, _ := base64.StdEncoding.DecodeString(res.Signature.Signature)
		if !ed25519.Verify(pub, append([]byte("testimony manifest v1\n"), res.ManifestJSON...), sig) {
			t.Error("signature does not cover \"testimony manifest v1\\n\" + manifest.json")
		}
	}
}

func TestBuildSignedRefuses(t *testing.T) {
	src := t.TempDir()
	a := writeFile(t, src, "a.txt", []byte("hello"))
	if _, err := Build(io.Discard, Meta{}, []string{a}, deviceKey(1)[:10]); err == nil {
		t.Error("Build with a short key succeeded")
	}
	for _, name := range []string{SignatureName, "Manifest.SIG"} {
		p := writeFile(t, filepath.Join(src, name), name, []byte("x"))
		if _, err := Build(io.Discard, Meta{}, []string{a, p}, nil); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("Build with a file named %s = %v, want a reserved-name error", name, err)
		}
	}
}

func TestExtractSignature(t *testing.T) {
	a, b := file("a.txt", "hello"), file("b.txt", "world")
	m := manifestEntry(t, nil, a, b)
	good := sigEntry(t, deviceKey(1), m)
	otherManifest := manifestEntry(t, func(m *Manifest) { m.Case = "other" }, a, b)
	var sig Signature
	if err := json.Unmarshal([]byte(good.body), &sig); err != nil {
		t.Fatal(err)
	}
	sigJSON := func(modify func(*Signature)) entry {
		s := sig
		modify(&s)
		data, _ := json.Marshal(s)
		return file(SignatureName, string(data))
	}
	forged := sigEntry(t, deviceKey(2), m)
	var forgedSig Signature
	json.Unmarshal([]byte(forged.body), &forgedSig)

	tests := []struct {
		name    string
		entries []entry
		want    error // ErrBadSignature, ErrInvalid, or nil for success
		text    string
	}{
		{"valid", []entry{m, good, a, b}, nil, ""},
		{"manifest changed after signing", []entry{otherManifest, good, a, b}, ErrBadSignature, "fingerprint"},
		{"signed by another key, claiming this one", []entry{m, sigJSON(func(s *Signature) { s.Signature = forgedSig.Signature }), a, b}, ErrBadSignature, ""},
		{"key swapped", []entry{m, sigJSON(func(s *Signature) { s.Key = forgedSig.Key }), a, b}, ErrBadSignature, ""},
		{"signature over the manifest without prefix", []entry{m, sigJSON(func(s *Signature) {
			s.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(deviceKey(1), []byte(m.body)))
		}), a, b}, ErrBadSignature, ""},
		{"not JSON", []entry{m, file(SignatureName, "hello"), a, b}, ErrInvalid, SignatureName},
		{"unknown field", []entry{m, file(SignatureName, strings.Replace(good.body, "{", `{"x":1,`, 1)), a, b}, ErrInvalid, "unknown field"},
		{"duplicate field", []entry{m, file(SignatureName, strings.Replace(good.body, "{", `{"version":1,`, 1)), a, b}, ErrInvalid, "duplicate"},
		{"version 2", []entry{m, sigJSON(func(s *Signature) { s.Version = 2 }), a, b}, ErrInvalid, "version 2"},
		{"key malformed", []entry{m, sigJSON(func(s *Signature) { s.Key = "tdk1AAAA" }), a, b}, ErrInvalid, "device key"},
		{"signature not base64", []entry{m, sigJSON(func(s *Signature) { s.Signature = "!!" }), a, b}, ErrInvalid, "base64"},
		{"signature unpadded", []entry{m, sigJSON(func(s *Signature) { s.Signature = strings.TrimRight(s.Signature, "=") }), a, b}, ErrInvalid, "base64"},
		{"too large", []entry{m, file(SignatureName, good.body+strings.Repeat(" ", MaxSignatureSize)), a, b}, ErrInvalid, "limit"},
		{"signature first, no manifest", []entry{good, a, b}, ErrInvalid, "right after"},
		{"signature before manifest", []entry{good, m, a, b}, ErrInvalid, "right after"},
		{"signature third", []entry{m, a, good, b}, ErrInvalid, "right after"},
		{"signature last", []entry{m, a, b, good}, ErrInvalid, "right after"},
		{"two signatures", []entry{m, good, good, a, b}, ErrInvalid, "right after"},
		{"signature in another case", []entry{m, file("Manifest.Sig", good.body), a, b}, ErrInvalid, "right after"},
		{"signature in a plain tarball", []entry{a, good}, ErrInvalid, "right after"},
		{"signature in a plain tarball, other case", []entry{file("MANIFEST.SIG", good.body), a}, ErrInvalid, "right after"},
		{"signature as a symbolic link", []entry{m, {name: SignatureName, typ: tar.TypeSymlink, link: "/etc/passwd"}, a, b}, ErrInvalid, "symbolic link"},
		{"manifest lists manifest.sig", []entry{manifestEntry(t, nil, a, file(SignatureName, "x")), a, file(SignatureName, "x")}, ErrInvalid, SignatureName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, err := extractTo(t, makeTar(t, tt.entries...), Limits{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Extract: %v", err)
				}
				if res.SignatureStatus != SigValid {
					t.Errorf("SignatureStatus = %v", res.SignatureStatus)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Extract = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Extract = %v, which is not ErrInvalid", err)
			}
			if tt.want != ErrBadSignature && errors.Is(err, ErrBadSignature) {
				t.Errorf("Extract = %v, which is ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Extract = %q, want it to contain %q", err, tt.text)
			}
			if tt.want == ErrBadSignature {
				// No testimony file is written before the signature is
				// checked.
				for _, name := range []string{"a.txt", "b.txt", SignatureName} {
					if _, err := os.Stat(filepath.Join(out, name)); err == nil {
						t.Errorf("%s was written despite a bad signature", name)
					}
				}
			}
		})
	}
}

func TestDeviceKey(t *testing.T) {
	pub := deviceKey(1).Public().(ed25519.PublicKey)
	s := DeviceKeyString(pub)
	if !strings.HasPrefix(s, "tdk1") || len(s) != 4+43 {
		t.Errorf("DeviceKeyString = %q", s)
	}
	got, err := ParseDeviceKey(s)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParseDeviceKey(DeviceKeyString(pub)) = %x, %v", got, err)
	}
	noncanonical := []byte(s)
	noncanonical[len(s)-1] = 'B' // sets one of the 2 unused bits of the last character
	for _, bad := range []string{"", "tdk1", s[4:], "tdk2" + s[4:], s + "A", s[:len(s)-1], " " + s, s + "\n",
		"tdk1" + base64.StdEncoding.EncodeToString(pub), "tdk1" + base64.RawStdEncoding.EncodeToString(pub) + "=", string(noncanonical)} {
		if _, err := ParseDeviceKey(bad); err == nil {
			t.Errorf("ParseDeviceKey(%q) succeeded", bad)
		}
	}
	fp := Fingerprint(pub)
	if !ids.LowerHex(fp, 16) {
		t.Errorf("Fingerprint = %q", fp)
	}
	if fp == Fingerprint(deviceKey(2).Public().(ed25519.PublicKey)) {
		t.Error("two keys have the same fingerprint")
	}
}

func TestSignatureStatusString(t *testing.T) {
	if SigNone.String() != "unsigned" || SigValid.String() != "signed" {
		t.Errorf("SigNone = %q, SigValid = %q", SigNone, SigValid)
	}
}
