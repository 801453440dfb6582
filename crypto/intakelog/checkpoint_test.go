package intakelog

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

const origin = "testimony-log-0a1b2c3d"

func signedCheckpoint(t testing.TB, skey string, c Checkpoint) []byte {
	t.Helper()
	msg, err := SignCheckpoint(c, signer(t, skey))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestCheckpointRoundTrip(t *testing.T) {
	skey, vkey := fixedKey(t, origin, 1)
	m := newMemLog(t, 13)
	for _, size := range []int64{0, 1, 13} {
		c := m.checkpoint(t, size)
		msg := signedCheckpoint(t, skey, c)
		if !strings.HasPrefix(string(msg), string(c.Body())+"\n— "+origin+" ") {
			t.Errorf("signed checkpoint %q is not body, blank line, signature", msg)
		}
		got, err := OpenCheckpoint(msg, vkey)
		if err != nil {
			t.Fatalf("OpenCheckpoint: %v", err)
		}
		if got != c {
			t.Errorf("OpenCheckpoint = %+v, want %+v", got, c)
		}
	}
}

func TestCheckpointMatchesSpecExample(t *testing.T) {
	// The note text of the example in c2sp.org/tlog-checkpoint.
	const body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	c, err := parseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != "example.com/behind-the-sofa" || c.Size != 20852163 || string(c.Body()) != body {
		t.Errorf("parseBody = %+v, body %q", c, c.Body())
	}
}

func TestOpenCheckpointErrors(t *testing.T) {
	skey, vkey := fixedKey(t, origin, 1)
	otherSameName, _ := fixedKey(t, origin, 2)
	otherName, _ := fixedKey(t, "testimony-log-ffffffff", 1)
	m := newMemLog(t, 5)
	c := m.checkpoint(t, 5)
	good := string(signedCheckpoint(t, skey, c))
	body, sig, _ := strings.Cut(good, "\n\n")
	body += "\n"
	// signBody signs arbitrary note text with the log key, to build
	// checkpoints SignCheckpoint would refuse to make.
	signBody := func(text string) string {
		msg, err := note.Sign(&note.Note{Text: text}, signer(t, skey))
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	// A witness cosignature by another key next to the log's.
	cosigned, err := note.Sign(&note.Note{Text: body}, signer(t, skey), signer(t, otherName))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		msg  string
		want error // nil for success
		text string
	}{
		{"valid", good, nil, ""},
		{"cosigned by a witness", string(cosigned), nil, ""},
		{"size changed", strings.Replace(good, "\n5\n", "\n6\n", 1), ErrBadSignature, ""},
		{"root changed", strings.Replace(good, body, string(m.checkpoint(t, 4).Body()), 1), ErrBadSignature, ""},
		{"signature bit flipped", body + "\n" + sig[:len(sig)-3] + flipB64(sig[len(sig)-3]) + sig[len(sig)-2:], ErrBadSignature, ""},
		{"other key, same name", string(signedCheckpoint(t, otherSameName, c)), ErrUnknownKey, origin},
		{"other key, other name", string(signedCheckpoint(t, otherName, Checkpoint{"testimony-log-ffffffff", 5, c.Root})), ErrUnknownKey, "testimony-log-ffffffff"},
		{"empty", "", ErrMalformed, ""},
		{"no signature", body, ErrMalformed, ""},
		{"unsigned blank line", body + "\n", ErrMalformed, ""},
		{"garbage signature line", body + "\nhello\n", ErrMalformed, ""},
		{"no final newline", strings.TrimSuffix(good, "\n"), ErrMalformed, ""},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), ErrMalformed, ""},
		{"too large", good + strings.Repeat("— x AAAAAAAA\n", MaxCheckpointSize/12), ErrMalformed, ""},
		{"extension line", signBody(body + "extension\n"), ErrMalformed, "3 lines"},
		{"two lines", signBody(origin + "\n5\n"), ErrMalformed, "3 lines"},
		{"other origin", signBody("elsewhere\n5\n" + strings.Split(body, "\n")[2] + "\n"), ErrMalformed, "origin"},
		{"size with leading zero", signBody(strings.Replace(body, "\n5\n", "\n05\n", 1)), ErrMalformed, "size"},
		{"size with plus", signBody(strings.Replace(body, "\n5\n", "\n+5\n", 1)), ErrMalformed, "size"},
		{"size negative", signBody(strings.Replace(body, "\n5\n", "\n-5\n", 1)), ErrMalformed, "size"},
		{"size overflow", signBody(strings.Replace(body, "\n5\n", "\n9223372036854775808\n", 1)), ErrMalformed, "size"},
		{"root unpadded", signBody(strings.Replace(body, "=\n", "\n", 1)), ErrMalformed, "root"},
		{"root hex", signBody(origin + "\n5\n" + c.Root.String()[:0] + strings.Repeat("ab", 32) + "\n"), ErrMalformed, "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenCheckpoint([]byte(tt.msg), vkey)
			if tt.want == nil {
				if err != nil || got != c {
					t.Fatalf("OpenCheckpoint = %+v, %v; want %+v", got, err, c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenCheckpoint = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrUnknownKey, ErrBadSignature, ErrMalformed} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("OpenCheckpoint = %v, which is also %v", err, other)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("OpenCheckpoint = %q, want it to contain %q", err, tt.text)
			}
		})
	}
	for _, key := range []string{"", "not a key", skey} {
		if _, err := OpenCheckpoint([]byte(good), key); !errors.Is(err, ErrMalformed) {
			t.Errorf("OpenCheckpoint with key %q = %v, want ErrMalformed", key, err)
		}
	}
}

func flipB64(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestSignCheckpointRefuses(t *testing.T) {
	skey, _ := fixedKey(t, origin, 1)
	s := signer(t, skey)
	for _, c := range []Checkpoint{
		{Origin: "elsewhere", Size: 1},
		{Origin: "", Size: 1},
		{Origin: origin, Size: -1},
		{Origin: origin + "\n2", Size: 1},
	} {
		if _, err := SignCheckpoint(c, s); err == nil {
			t.Errorf("SignCheckpoint(%+v) succeeded", c)
		}
	}
}

func TestNewLogKey(t *testing.T) {
	skey, vkey, err := NewLogKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+"+origin+"+") || !strings.HasPrefix(vkey, origin+"+") {
		t.Errorf("NewLogKey = %q, %q", skey, vkey)
	}
	msg := signedCheckpoint(t, skey, Checkpoint{Origin: origin})
	if _, err := OpenCheckpoint(msg, vkey); err != nil {
		t.Errorf("OpenCheckpoint with a new key: %v", err)
	}
	_, vkey2, _ := NewLogKey(origin)
	if _, err := OpenCheckpoint(msg, vkey2); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a second key of the same name: OpenCheckpoint = %v, want ErrUnknownKey", err)
	}
	for _, bad := range []string{"", "has space", "has+plus", "tab\there", "ctl\x01", "bad\xffutf8", strings.Repeat("a", MaxOriginSize+1)} {
		if _, _, err := NewLogKey(bad); err == nil {
			t.Errorf("NewLogKey(%q) succeeded", bad)
		}
	}
}
