package recipients

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func orgKey(t testing.TB, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// signText signs an arbitrary body, so tests can build notes that SignNote
// would refuse to make.
func signText(t testing.TB, text, skey string) []byte {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestNoteRoundTrip(t *testing.T) {
	skey, vkey := orgKey(t, "testimony-org")
	for _, s := range []*Set{
		{Type: TypeHybrid, Strings: []string{hybridID(t).Recipient().String(), hybridID(t).Recipient().String()}},
		{Type: TypeX25519, Strings: []string{x25519ID(t).Recipient().String()}},
	} {
		msg, err := SignNote(s, 7, skey)
		if err != nil {
			t.Fatalf("SignNote: %v", err)
		}
		want := NoteHeader + "\nversion 7\ntype " + s.Type + "\n" + s.String() + "\n— testimony-org "
		if !strings.HasPrefix(string(msg), want) {
			t.Errorf("note = %q, want prefix %q", msg, want)
		}
		for name, parse := range map[string]func([]byte) (*SignedSet, error){
			"VerifyNote":          func(m []byte) (*SignedSet, error) { return VerifyNote(m, vkey) },
			"ParseNoteUnverified": ParseNoteUnverified,
		} {
			got, err := parse(msg)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.Version != 7 || got.Set.Type != s.Type || !equal(got.Set, s) || !bytes.Equal(got.Note, msg) {
				t.Errorf("%s = %+v, want version 7 of %+v", name, got, s)
			}
			if got.Set.String() != s.String() {
				t.Errorf("%s changed the order of recipients", name)
			}
		}
	}
}

func TestNoteTamper(t *testing.T) {
	skey, vkey := orgKey(t, "testimony-org")
	otherSameName, _ := orgKey(t, "testimony-org")
	otherName, _ := orgKey(t, "server")
	r1, r2 := x25519ID(t).Recipient().String(), x25519ID(t).Recipient().String()
	s := &Set{Type: TypeX25519, Strings: []string{r1}}
	msg, err := SignNote(s, 3, skey)
	if err != nil {
		t.Fatal(err)
	}
	body, sigs, _ := strings.Cut(string(msg), "\n\n")

	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"version changed", strings.Replace(string(msg), "version 3", "version 4", 1), ErrNoteSignature},
		{"version lowered", strings.Replace(string(msg), "version 3", "version 1", 1), ErrNoteSignature},
		{"recipient added", body + "\n" + r2 + "\n\n" + sigs, ErrNoteSignature},
		{"recipient swapped", strings.Replace(string(msg), r1, r2, 1), ErrNoteSignature},
		{"signed by another key of the same name", string(signText(t, body+"\n", otherSameName)), ErrNoteSignature},
		{"signed by another key", string(signText(t, body+"\n", otherName)), ErrNoteSignature},
		{"signature removed", body + "\n\n", ErrNoteMalformed},
		{"not a note", "hello", ErrNoteMalformed},
		{"too large", string(msg) + strings.Repeat("x", MaxNoteSize), ErrNoteMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyNote([]byte(tt.msg), vkey)
			if !errors.Is(err, tt.want) {
				t.Errorf("VerifyNote = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := VerifyNote(msg, "not a key"); err == nil {
		t.Error("VerifyNote with a garbage key succeeded")
	}
}

func TestNoteBodyValidation(t *testing.T) {
	skey, vkey := orgKey(t, "testimony-org")
	x1, x2 := x25519ID(t).Recipient().String(), x25519ID(t).Recipient().String()
	h1 := hybridID(t).Recipient().String()
	secret := x25519ID(t).String()
	head := NoteHeader + "\nversion 1\ntype X25519\n"
	var many strings.Builder
	for range MaxRecipients + 1 {
		many.WriteString(x25519ID(t).Recipient().String() + "\n")
	}

	tests := []struct {
		name string
		body string
		want error  // checked with errors.Is besides ErrNoteMalformed, if non-nil
		text string // checked with strings.Contains
	}{
		{"wrong header", "testimony recipients v2\nversion 1\ntype X25519\n" + x1 + "\n", nil, "first line"},
		{"no version", NoteHeader + "\ntype X25519\n" + x1 + "\n", nil, "line 2"},
		{"version 0", NoteHeader + "\nversion 0\ntype X25519\n" + x1 + "\n", nil, "line 2"},
		{"version leading zero", NoteHeader + "\nversion 01\ntype X25519\n" + x1 + "\n", nil, "line 2"},
		{"version negative", NoteHeader + "\nversion -1\ntype X25519\n" + x1 + "\n", nil, "line 2"},
		{"version with space", NoteHeader + "\nversion  1\ntype X25519\n" + x1 + "\n", nil, "line 2"},
		{"version overflow", NoteHeader + "\nversion 18446744073709551616\ntype X25519\n" + x1 + "\n", nil, "out of range"},
		{"unknown type", NoteHeader + "\nversion 1\ntype scrypt\n" + x1 + "\n", nil, "line 3"},
		{"no recipients", head, ErrNoRecipients, ""},
		{"mixed types", head + x1 + "\n" + h1 + "\n", ErrMixedTypes, "line 5"},
		{"type mismatch", NoteHeader + "\nversion 1\ntype mlkem768x25519\n" + x1 + "\n", ErrMixedTypes, "line 4"},
		{"duplicate", head + x1 + "\n" + x1 + "\n", nil, "duplicate"},
		{"uppercase recipient", head + strings.ToUpper(x1) + "\n", nil, "line 4"},
		{"comment", head + "# reviewers\n" + x1 + "\n", nil, "line 4"},
		{"trailing space", head + x1 + " \n", nil, "line 4"},
		{"blank line", head + x1 + "\n\n" + x2 + "\n", nil, "line 5"},
		{"private key", head + x1 + "\n" + secret + "\n", ErrPrivateKey, "line 5"},
		{"private key in a recipient line", head + x1 + " " + secret + "\n", ErrPrivateKey, "line 4"},
		{"ssh key", head + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\n", ErrUnsupportedType, "line 4"},
		{"too many", head + many.String(), ErrTooManyRecipients, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := signText(t, tt.body, skey)
			for name, parse := range map[string]func([]byte) (*SignedSet, error){
				"VerifyNote":          func(m []byte) (*SignedSet, error) { return VerifyNote(m, vkey) },
				"ParseNoteUnverified": ParseNoteUnverified,
			} {
				_, err := parse(msg)
				if !errors.Is(err, ErrNoteMalformed) {
					t.Fatalf("%s = %v, want ErrNoteMalformed", name, err)
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("%s = %v, want %v", name, err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.text) {
					t.Errorf("%s = %q, want it to contain %q", name, err, tt.text)
				}
				if strings.Contains(strings.ToUpper(err.Error()), "AGE-SECRET-KEY") {
					t.Errorf("%s repeats a private key: %q", name, err)
				}
			}
		})
	}
}

func TestParseNoteUnverifiedNeedsSignature(t *testing.T) {
	body := NoteHeader + "\nversion 1\ntype X25519\n" + x25519ID(t).Recipient().String() + "\n"
	for _, msg := range []string{body, body + "\n", body + "\n— x\n", body + "\n— testimony-org AAAA\n"} {
		if _, err := ParseNoteUnverified([]byte(msg)); !errors.Is(err, ErrNoteMalformed) {
			t.Errorf("ParseNoteUnverified(%q) = %v, want ErrNoteMalformed", msg, err)
		}
	}
}

func TestSignNoteRefuses(t *testing.T) {
	skey, _ := orgKey(t, "testimony-org")
	_, vkey := orgKey(t, "testimony-org")
	good := &Set{Type: TypeX25519, Strings: []string{x25519ID(t).Recipient().String()}}
	tests := []struct {
		name    string
		s       *Set
		version uint64
		key     string
	}{
		{"nil set", nil, 1, skey},
		{"version 0", good, 0, skey},
		{"verifier key instead of signer", good, 1, vkey},
		{"garbage key", good, 1, "PRIVATE+KEY+x"},
		{"empty set", &Set{Type: TypeX25519}, 1, skey},
		{"unknown type", &Set{Type: "scrypt", Strings: good.Strings}, 1, skey},
		{"wrong type", &Set{Type: TypeHybrid, Strings: good.Strings}, 1, skey},
		{"newline in recipient", &Set{Type: TypeX25519, Strings: []string{good.Strings[0] + "\nversion 9"}}, 1, skey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SignNote(tt.s, tt.version, tt.key); err == nil {
				t.Error("SignNote succeeded")
			}
		})
	}
}

// TestServerCannotForgeRecipients is the property the note exists for: a
// server holding only what it is given (the signed note and its own keys)
// cannot make a note with its own recipient that a client pinning the
// organisation key accepts.
func TestServerCannotForgeRecipients(t *testing.T) {
	orgSigner, orgVerifier := orgKey(t, "testimony-org")
	honest, err := SignNote(&Set{Type: TypeX25519, Strings: []string{x25519ID(t).Recipient().String()}}, 1, orgSigner)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, _ := orgKey(t, "testimony-org")
	evil := &Set{Type: TypeX25519, Strings: []string{x25519ID(t).Recipient().String()}}
	forged, err := SignNote(evil, 2, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	_, sigs, _ := strings.Cut(string(honest), "\n\n")
	body, _, _ := strings.Cut(string(forged), "\n\n")
	for _, msg := range [][]byte{forged, []byte(body + "\n\n" + sigs)} {
		if _, err := VerifyNote(msg, orgVerifier); !errors.Is(err, ErrNoteSignature) {
			t.Errorf("VerifyNote(forged) = %v, want ErrNoteSignature", err)
		}
	}
}
