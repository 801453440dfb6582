package recipients

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
)

func hybridID(t testing.TB) *age.HybridIdentity {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func x25519ID(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParse(t *testing.T) {
	h1, h2 := hybridID(t), hybridID(t)
	x1, x2 := x25519ID(t), x25519ID(t)
	hr1, hr2 := h1.Recipient().String(), h2.Recipient().String()
	xr1, xr2 := x1.Recipient().String(), x2.Recipient().String()

	var many strings.Builder
	for range MaxRecipients + 1 {
		many.WriteString(x25519ID(t).Recipient().String() + "\n")
	}

	tests := []struct {
		name     string
		in       string
		wantType string
		want     []string
		wantErr  error  // checked with errors.Is if non-nil
		errText  string // checked with strings.Contains if non-empty
	}{
		{name: "hybrid", in: hr1 + "\n" + hr2 + "\n", wantType: TypeHybrid, want: []string{hr1, hr2}},
		{name: "x25519", in: xr1 + "\n" + xr2, wantType: TypeX25519, want: []string{xr1, xr2}},
		{name: "comments blanks CRLF spaces", in: "# reviewers\r\n\r\n  " + xr1 + "  \r\n#" + hr1 + "\n\t" + xr2 + "\r\n",
			wantType: TypeX25519, want: []string{xr1, xr2}},
		{name: "uppercase recipient (age refuses it too)", in: strings.ToUpper(xr1), errText: "malformed age1… recipient"},
		{name: "x25519 secret key", in: xr1 + "\n" + x1.String() + "\n", wantErr: ErrPrivateKey, errText: "line 2"},
		{name: "hybrid secret key", in: h1.String(), wantErr: ErrPrivateKey, errText: "line 1"},
		{name: "lowercase secret key", in: "\n\n" + strings.ToLower(x1.String()), wantErr: ErrPrivateKey, errText: "line 3"},
		{name: "secret key after recipient text", in: xr1 + " " + x1.String(), wantErr: ErrPrivateKey},
		{name: "secret key in a comment", in: xr1 + "\n# old key: " + x1.String(), wantErr: ErrPrivateKey, errText: "line 2"},
		{name: "plugin identity", in: "AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQQQQ", wantErr: ErrPrivateKey},
		{name: "ssh private key", in: "-----BEGIN OPENSSH PRIVATE KEY-----", wantErr: ErrPrivateKey},
		{name: "ssh-ed25519", in: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@example", wantErr: ErrUnsupportedType, errText: "SSH"},
		{name: "ssh-rsa", in: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", wantErr: ErrUnsupportedType},
		{name: "plugin recipient", in: "age1yubikey1q2w7u3vpya839jxxuq8g0sedh3d740d4xvn639sqhr95ejj8vu3hyfumptt", wantErr: ErrUnsupportedType, errText: "plugin"},
		{name: "tagged recipient", in: "age1tag1qwerty", wantErr: ErrUnsupportedType, errText: "tagged"},
		{name: "garbage", in: "hello world", wantErr: ErrUnsupportedType, errText: "line 1"},
		{name: "mixed", in: hr1 + "\n" + xr1 + "\n", wantErr: ErrMixedTypes, errText: "line 2"},
		{name: "mixed other order", in: xr1 + "\n# c\n" + hr1, wantErr: ErrMixedTypes, errText: "line 3"},
		{name: "empty", in: "", wantErr: ErrNoRecipients, errText: "the file is empty; it needs one age1pq1… or age1… line per reviewer"},
		{name: "blank lines", in: "\n \r\n", wantErr: ErrNoRecipients, errText: "the file is empty"},
		{name: "only comments", in: "# nothing\n\n", wantErr: ErrNoRecipients, errText: "only comments and blank lines"},
		{name: "too many", in: many.String(), wantErr: ErrTooManyRecipients, errText: fmt.Sprintf("line %d", MaxRecipients+1)},
		{name: "duplicate", in: xr1 + "\n" + xr2 + "\n" + xr1, errText: "line 3: duplicate of the recipient on line 1"},
		{name: "bad checksum", in: xr1[:len(xr1)-1] + flip(xr1[len(xr1)-1]), errText: "malformed age1… recipient"},
		{name: "bad hybrid checksum", in: hr1[:len(hr1)-1] + flip(hr1[len(hr1)-1]), errText: "malformed age1pq1… recipient"},
		{name: "truncated hybrid", in: hr1[:100], errText: "malformed age1pq1… recipient"},
		{name: "invalid UTF-8", in: "age1\xff\xfe", errText: "not valid UTF-8"},
		{name: "too large", in: strings.Repeat("#", MaxFileSize+1), errText: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr == nil && tt.errText == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if s.Type != tt.wantType {
					t.Errorf("Type = %q, want %q", s.Type, tt.wantType)
				}
				if strings.Join(s.Strings, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("Strings = %q, want %q", s.Strings, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
			// Errors never repeat key material, public or secret.
			for _, secret := range []string{x1.String(), h1.String(), "AGE-SECRET", "age-secret", "QQQQQQ", xr1[5:20], hr1[8:30]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q repeats %q", err, secret)
				}
			}
		})
	}
}

// flip replaces a Bech32 character with another valid one.
func flip(c byte) string {
	if c == 'q' {
		return "p"
	}
	return "q"
}

func TestStringRoundTrip(t *testing.T) {
	for _, typ := range []string{TypeHybrid, TypeX25519} {
		t.Run(typ, func(t *testing.T) {
			var in strings.Builder
			in.WriteString("# comment\n")
			for range 3 {
				if typ == TypeHybrid {
					in.WriteString(hybridID(t).Recipient().String() + "\n\n")
				} else {
					in.WriteString(x25519ID(t).Recipient().String() + "\n\n")
				}
			}
			s, err := Parse(strings.NewReader(in.String()))
			if err != nil {
				t.Fatal(err)
			}
			s2, err := Parse(strings.NewReader(s.String()))
			if err != nil {
				t.Fatalf("Parse(String()): %v", err)
			}
			if !equal(s, s2) {
				t.Errorf("Parse(String()) = %v, want %v", s2, s)
			}
			// The age CLI reads the same file with -R.
			rs, err := age.ParseRecipients(strings.NewReader(s.String()))
			if err != nil {
				t.Fatalf("age.ParseRecipients(String()): %v", err)
			}
			if len(rs) != 3 {
				t.Errorf("age.ParseRecipients found %d recipients, want 3", len(rs))
			}
		})
	}
}

// equal reports whether a and b have the same type and the same recipients,
// in any order. Two nil sets are equal.
func equal(a, b *Set) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Type != b.Type || len(a.Strings) != len(b.Strings) {
		return false
	}
	x, y := slices.Clone(a.Strings), slices.Clone(b.Strings)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func TestEqual(t *testing.T) {
	a, b := x25519ID(t).Recipient().String(), x25519ID(t).Recipient().String()
	tests := []struct {
		name string
		x, y *Set
		want bool
	}{
		{"same", &Set{TypeX25519, []string{a, b}}, &Set{TypeX25519, []string{a, b}}, true},
		{"other order", &Set{TypeX25519, []string{a, b}}, &Set{TypeX25519, []string{b, a}}, true},
		{"subset", &Set{TypeX25519, []string{a, b}}, &Set{TypeX25519, []string{a}}, false},
		{"different", &Set{TypeX25519, []string{a}}, &Set{TypeX25519, []string{b}}, false},
		{"type", &Set{TypeX25519, []string{a}}, &Set{TypeHybrid, []string{a}}, false},
		{"nil and set", nil, &Set{TypeX25519, []string{a}}, false},
		{"nil and nil", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equal(tt.x, tt.y); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
			if got := equal(tt.y, tt.x); got != tt.want {
				t.Errorf("Equal (swapped) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAgeRecipients(t *testing.T) {
	for _, id := range []interface {
		age.Identity
		String() string
	}{hybridID(t), x25519ID(t)} {
		var pub string
		switch id := id.(type) {
		case *age.HybridIdentity:
			pub = id.Recipient().String()
		case *age.X25519Identity:
			pub = id.Recipient().String()
		}
		s, err := Parse(strings.NewReader(pub))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := s.AgeRecipients()
		if err != nil {
			t.Fatal(err)
		}
		file := encrypt(t, []byte("testimony"), rs...)
		if err := checkHeader(bytes.NewReader(file), s.Type); err != nil {
			t.Errorf("checkHeader(%s): %v", s.Type, err)
		}
		r, err := age.Decrypt(bytes.NewReader(file), id)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); string(got) != "testimony" {
			t.Errorf("decrypted %q", got)
		}
	}
	if _, err := (&Set{Type: "scrypt", Strings: []string{"x"}}).AgeRecipients(); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("AgeRecipients of unknown type = %v, want ErrUnsupportedType", err)
	}
}
