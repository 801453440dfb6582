package recipients

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
)

var secretError = regexp.MustCompile(`^failed to parse recipients file: line [0-9]+: ` + regexp.QuoteMeta(ErrPrivateKey.Error()) + `$`)

func FuzzRecipientsParse(f *testing.F) {
	x := x25519ID(f)
	h := hybridID(f)
	f.Add(x.Recipient().String() + "\n")
	f.Add("# c\r\n" + h.Recipient().String() + "\r\n")
	f.Add(x.String())
	f.Add("ssh-ed25519 AAAA")
	f.Add("age1yubikey1qqqq")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(strings.NewReader(in))
		if err != nil {
			// A private key error has a fixed form, so it cannot carry
			// any part of the secret line, and no error names a key.
			if errors.Is(err, ErrPrivateKey) && !secretError.MatchString(err.Error()) {
				t.Fatalf("private key error %q is not of the fixed form", err)
			}
			if strings.Contains(strings.ToUpper(err.Error()), "AGE-SECRET-KEY") {
				t.Fatalf("error %q mentions a secret key", err)
			}
			return
		}
		if s.Type != TypeHybrid && s.Type != TypeX25519 {
			t.Fatalf("Type = %q", s.Type)
		}
		if len(s.Strings) == 0 || len(s.Strings) > MaxRecipients {
			t.Fatalf("%d recipients", len(s.Strings))
		}
		s2, err := Parse(strings.NewReader(s.String()))
		if err != nil || !equal(s, s2) {
			t.Fatalf("Parse(String()) = %v, %v", s2, err)
		}
		if _, err := s.AgeRecipients(); err != nil {
			t.Fatalf("AgeRecipients: %v", err)
		}
	})
}

func FuzzCheckHeader(f *testing.F) {
	x := x25519ID(f).Recipient()
	h := hybridID(f).Recipient()
	scrypt, _ := age.NewScryptRecipient("pw")
	scrypt.SetWorkFactor(2)
	f.Add(encrypt(f, []byte("x"), x), false)
	f.Add(encrypt(f, nil, h), true)
	f.Add(encrypt(f, []byte("x"), scrypt), true)
	f.Add(rawHeader(32, stanza(TypeX25519, share(7), b64(share(9)))), false)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 A\nAA\n--- AAAA\n"), false)
	f.Fuzz(func(t *testing.T, file []byte, hybrid bool) {
		want := TypeX25519
		if hybrid {
			want = TypeHybrid
		}
		n, err := HeaderLength(bytes.NewReader(file), want)
		if err != nil {
			if !errors.Is(err, ErrNotAge) && !errors.Is(err, ErrWrongRecipientType) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// An accepted header is exactly what age parses, and age sees
		// only stanzas of the wanted type.
		hdr, err := age.ExtractHeader(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("accepted, but age.ExtractHeader fails: %v", err)
		}
		if int64(len(hdr)) != n || !bytes.Equal(hdr, file[:n]) {
			t.Fatalf("HeaderLength = %d, but the header is %d bytes", n, len(hdr))
		}
		if len(file) < int(n)+minPayloadSize {
			t.Fatalf("accepted a file with only %d bytes after the header", len(file)-int(n))
		}
		rec := &stanzaRecorder{}
		age.DecryptHeader(hdr, rec)
		for _, s := range rec.stanzas {
			if s.Type != want {
				t.Fatalf("accepted a %q stanza", s.Type)
			}
		}
	})
}

func FuzzVerifyNote(f *testing.F) {
	skey, vkey := orgKey(f, "testimony-org")
	msg, err := SignNote(&Set{Type: TypeX25519, Strings: []string{x25519ID(f).Recipient().String()}}, 1, skey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg)
	f.Add([]byte(NoteHeader + "\nversion 1\ntype X25519\n\n— testimony-org AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		verified, err := VerifyNote(data, vkey)
		unverified, uerr := ParseNoteUnverified(data)
		if err == nil {
			// Whatever verifies also parses, to the same set.
			if uerr != nil || !equal(verified.Set, unverified.Set) || verified.Version != unverified.Version {
				t.Fatalf("VerifyNote accepted %q but ParseNoteUnverified = %v", data, uerr)
			}
		}
		if uerr != nil {
			return
		}
		// An accepted body re-signs to a note that parses the same way.
		again, err := SignNote(unverified.Set, unverified.Version, skey)
		if err != nil {
			t.Fatalf("SignNote of an accepted note: %v", err)
		}
		got, err := VerifyNote(again, vkey)
		if err != nil || !equal(got.Set, unverified.Set) || got.Version != unverified.Version {
			t.Fatalf("re-signed note does not verify the same: %v", err)
		}
	})
}
