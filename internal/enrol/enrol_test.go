package enrol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const (
	testLogKey = "testimony-log-1a2b3c4d+ef49098c+ASrJRwtnJfiVJRFWhtUA83+C0Gp2vag/tSzv4a2bVIMX"
	testToken  = "tm1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

func valid() *Enrolment {
	return &Enrolment{
		Server:     "https://intake.example.org:8443",
		Pin:        strings.Repeat("ab", 32),
		LogKey:     testLogKey,
		OrgKeyName: "testimony-org+1e8f20ee",
		Token:      testToken,
		Role:       RoleSubmit,
		Name:       "laptop-3",
	}
}

func testCA(t testing.TB) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestRoundTrip(t *testing.T) {
	for _, e := range []*Enrolment{
		valid(),
		func() *Enrolment { e := valid(); e.Pin, e.CA = "", string(testCA(t)); return e }(),
		func() *Enrolment { e := valid(); e.Pin = ""; e.Role = RoleCollect; return e }(),
	} {
		data, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("Parse(%s): %v", data, err)
		}
		if *got != *e {
			t.Errorf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestKeyName(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		t.Fatal(err)
	}
	name, err := KeyName(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vkey, name+"+") || !validKeyName(name) {
		t.Errorf("KeyName(%s) = %s", vkey, name)
	}
	if _, err := KeyName("PRIVATE+KEY+testimony-org+1e8f20ee+AAAA"); err == nil {
		t.Error("KeyName accepted a private key")
	}
}

func TestParseRefuses(t *testing.T) {
	good, err := valid().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	ca := testCA(t)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	tests := []struct {
		name string
		data string
		want error
	}{
		{"empty", "", ErrNotEnrolment},
		{"not JSON", "tm1_AAAA\n", ErrNotEnrolment},
		{"other JSON", `{"version":1,"org_key":"x"}`, ErrNotEnrolment},
		{"array", `[1]`, ErrNotEnrolment},
		{"version 2", strings.Replace(s, `"version": 1`, `"version": 2`, 1), ErrVersion},
		{"no version", strings.Replace(s, `"version": 1,`, ``, 1), ErrMalformed},
		{"version string", strings.Replace(s, `"version": 1`, `"version": "1"`, 1), ErrVersion},
		{"too large", s + strings.Repeat(" ", MaxSize), ErrTooLarge},
		{"unknown field", strings.Replace(s, `"role"`, `"extra": "x", "role"`, 1), ErrMalformed},
		{"duplicate field", strings.Replace(s, `"role": "submit"`, `"role": "collect", "role": "submit"`, 1), ErrMalformed},
		{"key case", strings.Replace(s, `"token"`, `"Token"`, 1), ErrMalformed},
		{"null", strings.Replace(s, `"name": "laptop-3"`, `"name": null`, 1), ErrMalformed},
		{"trailing data", s + "{}", ErrMalformed},
		{"nested", strings.Replace(s, `"name": "laptop-3"`, `"name": {"a": "b"}`, 1), ErrMalformed},
		{"missing token", strings.Replace(s, `"token": "`+testToken+`"`, `"token": ""`, 1), ErrMalformed},
		{"token with space", strings.Replace(s, testToken, "tm1_AAAA AAAA", 1), ErrMalformed},
		{"http", strings.Replace(s, "https://", "http://", 1), ErrMalformed},
		{"user info", strings.Replace(s, "https://", "https://u:p@", 1), ErrMalformed},
		{"short pin", strings.Replace(s, strings.Repeat("ab", 32), "abcd", 1), ErrMalformed},
		{"upper pin", strings.Replace(s, strings.Repeat("ab", 32), strings.Repeat("AB", 32), 1), ErrMalformed},
		{"pin and ca", strings.Replace(s, `"log_key"`, `"ca": "x", "log_key"`, 1), ErrMalformed},
		{"private ca", strings.Replace(s, `"pin": "`+strings.Repeat("ab", 32)+`"`, `"ca": `+jsonString(string(keyPEM)), 1), ErrMalformed},
		{"ca with comment", strings.Replace(s, `"pin": "`+strings.Repeat("ab", 32)+`"`, `"ca": `+jsonString("# ours\n"+string(ca)), 1), ErrMalformed},
		{"private log key", strings.Replace(s, testLogKey, "PRIVATE+KEY+"+testLogKey, 1), ErrMalformed},
		{"bad log key", strings.Replace(s, testLogKey, "testimony-log+00000000+AAAA", 1), ErrMalformed},
		{"org key instead of name", strings.Replace(s, "testimony-org+1e8f20ee", "testimony-org+1e8f20ee+Aem6fX15amaFyKi8EgB+aQz3Ef4+OSK4FCa6wpEfzdFK", 1), ErrMalformed},
		{"bad role", strings.Replace(s, `"role": "submit"`, `"role": "admin"`, 1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: got %+v, %v; want %v", e, err, tt.want)
			}
		})
	}
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer("\n", `\n`, `"`, `\"`).Replace(s) + `"`
}

func TestCanonicalCA(t *testing.T) {
	ca := testCA(t)
	got, err := CanonicalCA([]byte("# the operator's CA\r\n" + strings.ReplaceAll(string(ca), "\n", "\r\n")))
	if err != nil || string(got) != string(ca) {
		t.Fatalf("CanonicalCA: %q, %v", got, err)
	}
	if _, err := CanonicalCA(append(ca, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})...)); err == nil {
		t.Error("CanonicalCA accepted a private key")
	}
	if _, err := CanonicalCA([]byte("no PEM")); err == nil {
		t.Error("CanonicalCA accepted no certificate")
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "laptop-3.enrol")
	if err := WriteFile(path, valid()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	e, err := Read(path)
	if err != nil || *e != *valid() {
		t.Fatalf("Read: %+v, %v", e, err)
	}
	other := valid()
	other.Token = "tm1_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	if err := WriteFile(path, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteFile: %v, want fs.ErrExist", err)
	}
	if e, _ := Read(path); e == nil || e.Token != testToken {
		t.Fatalf("the existing file was changed: %+v", e)
	}
	bad := valid()
	bad.Token = ""
	badPath := filepath.Join(t.TempDir(), "bad.enrol")
	if err := WriteFile(badPath, bad); err == nil {
		t.Fatal("WriteFile accepted an empty token")
	}
	if _, err := os.Stat(badPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused enrolment left a file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := valid().Marshal()
	f.Add(good)
	withCA := valid()
	withCA.Pin, withCA.CA = "", string(testCA(f))
	data, _ := withCA.Marshal()
	f.Add(data)
	f.Add([]byte(`{"format":"testimony-enrolment","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			return
		}
		// What parses writes back to a file that parses to the same.
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed file: %v", err)
		}
		e2, err := Parse(again)
		if err != nil || *e2 != *e {
			t.Fatalf("round trip: %+v, %v", e2, err)
		}
	})
}
