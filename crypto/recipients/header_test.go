package recipients

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

func encrypt(t testing.TB, plaintext []byte, rs ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withoutLabels hides a recipient's labels, which is the only way to make
// age mix a hybrid recipient with others (as a hostile client would).
type withoutLabels struct{ r age.Recipient }

func (w withoutLabels) Wrap(fileKey []byte) ([]*age.Stanza, error) { return w.r.Wrap(fileKey) }

func headerLen(t testing.TB, file []byte) int {
	t.Helper()
	hdr, err := age.ExtractHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return len(hdr)
}

// rawHeader builds an age file with arbitrary stanzas and a dummy MAC,
// which HeaderLength cannot and does not check.
func rawHeader(payload int, stanzas ...string) []byte {
	var b strings.Builder
	b.WriteString("age-encryption.org/v1\n")
	for _, s := range stanzas {
		b.WriteString(s)
	}
	b.WriteString("--- " + b64(make([]byte, 32)) + "\n")
	return append([]byte(b.String()), make([]byte, payload)...)
}

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// stanza renders a stanza with the given arguments and body.
func stanza(typ string, body []byte, args ...string) string {
	s := "-> " + typ
	for _, a := range args {
		s += " " + a
	}
	s += "\n"
	enc := b64(body)
	for len(enc) >= 64 {
		s += enc[:64] + "\n"
		enc = enc[64:]
	}
	return s + enc + "\n"
}

func share(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// checkHeader is HeaderLength without the length: most tests only need the
// verdict.
func checkHeader(r io.Reader, wantType string) error {
	_, err := HeaderLength(r, wantType)
	return err
}

func TestCheckHeader(t *testing.T) {
	x1, x2 := x25519ID(t).Recipient(), x25519ID(t).Recipient()
	h1, h2 := hybridID(t).Recipient(), hybridID(t).Recipient()
	scrypt, err := age.NewScryptRecipient("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	scrypt.SetWorkFactor(10)

	xFile := encrypt(t, []byte("hello"), x1, x2)
	hFile := encrypt(t, []byte("hello"), h1, h2)
	emptyFile := encrypt(t, nil, h1)
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(xFile)
	aw.Close()
	var tooMany []age.Recipient
	for range MaxRecipients + 1 {
		tooMany = append(tooMany, x25519ID(t).Recipient())
	}
	var tooBig []age.Recipient
	for range MaxRecipients + 20 {
		tooBig = append(tooBig, withoutLabels{hybridID(t).Recipient()})
	}
	hybridEnc := make([]byte, mlkemCTSize+32)
	for i := range hybridEnc {
		hybridEnc[i] = byte(i)
	}
	lowOrderEnc := append(hybridEnc[:mlkemCTSize:mlkemCTSize], make([]byte, 32)...)
	body := share(7)

	tests := []struct {
		name    string
		file    []byte
		want    string
		wantErr error
		errText string
	}{
		{name: "x25519", file: xFile, want: TypeX25519},
		{name: "hybrid", file: hFile, want: TypeHybrid},
		{name: "empty plaintext", file: emptyFile, want: TypeHybrid},
		{name: "hybrid where x25519 wanted", file: hFile, want: TypeX25519, wantErr: ErrWrongRecipientType,
			errText: `stanza type "mlkem768x25519" is not allowed: this deployment accepts only X25519`},
		{name: "x25519 where hybrid wanted", file: xFile, want: TypeHybrid, wantErr: ErrWrongRecipientType,
			errText: `stanza type "X25519" is not allowed: this deployment accepts only mlkem768x25519`},
		{name: "scrypt", file: encrypt(t, []byte("x"), scrypt), want: TypeHybrid, wantErr: ErrWrongRecipientType,
			errText: `stanza type "scrypt" is not allowed: this deployment accepts only mlkem768x25519 (the file was encrypted with a passphrase`},
		{name: "mixed hybrid then x25519", file: encrypt(t, []byte("x"), withoutLabels{h1}, x1), want: TypeHybrid,
			wantErr: ErrWrongRecipientType, errText: `stanza 2: stanza type "X25519"`},
		{name: "mixed x25519 then hybrid", file: encrypt(t, []byte("x"), x1, withoutLabels{h1}), want: TypeX25519,
			wantErr: ErrWrongRecipientType, errText: `stanza 2: stanza type "mlkem768x25519"`},
		{name: "unknown stanza", file: rawHeader(32, stanza(TypeX25519, body, b64(share(9))), stanza("grease-x", nil, "a")),
			want: TypeX25519, wantErr: ErrWrongRecipientType, errText: `"grease-x"`},
		{name: "too many stanzas", file: encrypt(t, []byte("x"), tooMany...), want: TypeX25519,
			wantErr: ErrWrongRecipientType, errText: "33 recipient stanzas"},
		{name: "header over limit", file: encrypt(t, []byte("x"), tooBig...), want: TypeHybrid,
			wantErr: ErrNotAge, errText: "larger than 65536 bytes"},
		{name: "empty", file: nil, want: TypeHybrid, wantErr: ErrNotAge, errText: "empty"},
		{name: "garbage", file: []byte("PK\x03\x04 this is a zip file"), want: TypeHybrid, wantErr: ErrNotAge, errText: "does not start with"},
		{name: "armored", file: armored.Bytes(), want: TypeX25519, wantErr: ErrNotAge, errText: "armor"},
		{name: "future version", file: []byte("age-encryption.org/v2\n"), want: TypeX25519, wantErr: ErrNotAge, errText: "version"},
		{name: "truncated header", file: xFile[:headerLen(t, xFile)/2], want: TypeX25519, wantErr: ErrNotAge},
		{name: "header only", file: xFile[:headerLen(t, xFile)], want: TypeX25519, wantErr: ErrNotAge, errText: "without a payload"},
		{name: "header and 31 bytes", file: xFile[:headerLen(t, xFile)+31], want: TypeX25519, wantErr: ErrNotAge, errText: "without a payload"},
		{name: "header and 32 bytes", file: xFile[:headerLen(t, xFile)+32], want: TypeX25519},
		{name: "crafted x25519", file: rawHeader(32, stanza(TypeX25519, body, b64(share(9)))), want: TypeX25519},
		{name: "crafted hybrid", file: rawHeader(32, stanza(TypeHybrid, body, b64(hybridEnc))), want: TypeHybrid},
		{name: "x25519 low order share", file: rawHeader(32, stanza(TypeX25519, body, b64(share(0)))), want: TypeX25519,
			wantErr: ErrNotAge, errText: "low-order"},
		{name: "hybrid low order share", file: rawHeader(32, stanza(TypeHybrid, body, b64(lowOrderEnc))), want: TypeHybrid,
			wantErr: ErrNotAge, errText: "low-order"},
		{name: "x25519 two args", file: rawHeader(32, stanza(TypeX25519, body, b64(share(9)), "x")), want: TypeX25519,
			wantErr: ErrNotAge, errText: "2 arguments"},
		{name: "x25519 no args", file: rawHeader(32, stanza(TypeX25519, body)), want: TypeX25519,
			wantErr: ErrNotAge, errText: "0 arguments"},
		{name: "x25519 short share", file: rawHeader(32, stanza(TypeX25519, body, b64(share(9)[:31]))), want: TypeX25519,
			wantErr: ErrNotAge, errText: "share is 31 bytes"},
		{name: "x25519 non-canonical share", file: rawHeader(32, stanza(TypeX25519, body, b64(share(9))[:42]+"B")), want: TypeX25519,
			wantErr: ErrNotAge, errText: "canonical"},
		{name: "x25519 long body", file: rawHeader(32, stanza(TypeX25519, append(share(7), 1), b64(share(9)))), want: TypeX25519,
			wantErr: ErrNotAge, errText: "body is 33 bytes"},
		{name: "hybrid short enc", file: rawHeader(32, stanza(TypeHybrid, body, b64(hybridEnc[1:]))), want: TypeHybrid,
			wantErr: ErrNotAge, errText: "encapsulated key is 1119 bytes"},
		{name: "unknown wanted type", file: xFile, want: "scrypt", wantErr: ErrUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkHeader(bytes.NewReader(tt.file), tt.want)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("checkHeader: %v", err)
				}
				n, err := HeaderLength(bytes.NewReader(tt.file), tt.want)
				if err != nil {
					t.Fatalf("HeaderLength: %v", err)
				}
				if int(n) != headerLen(t, tt.file) {
					t.Errorf("HeaderLength = %d, want %d", n, headerLen(t, tt.file))
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("checkHeader = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
		})
	}
}

// limitedSource serves prefix and then endless filler, and fails the test
// if more than limit bytes are read.
type limitedSource struct {
	t      *testing.T
	prefix []byte
	filler byte
	n      int
	limit  int
}

func (s *limitedSource) Read(p []byte) (int, error) {
	for i := range p {
		if s.n < len(s.prefix) {
			p[i] = s.prefix[s.n]
		} else {
			p[i] = s.filler
		}
		s.n++
	}
	if s.n > s.limit {
		s.t.Fatalf("read %d bytes, more than %d", s.n, s.limit)
	}
	return len(p), nil
}

func TestCheckHeaderReadsAtMostMaxHeaderSize(t *testing.T) {
	for _, prefix := range []string{
		"age-encryption.org/v1\n-> X25519 ",    // an endless argument
		"age-encryption.org/v1\n-> X25519 a\n", // an endless body line
		"age-encryption.org/v1",                // an endless intro line
	} {
		src := &limitedSource{t: t, prefix: []byte(prefix), filler: 'A', limit: MaxHeaderSize}
		err := checkHeader(src, TypeX25519)
		if !errors.Is(err, ErrNotAge) {
			t.Errorf("checkHeader(%q + endless A) = %v, want ErrNotAge", prefix, err)
		}
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestCheckHeaderReadError(t *testing.T) {
	file := encrypt(t, []byte("x"), x25519ID(t).Recipient())
	boom := errors.New("connection reset")
	for _, n := range []int{0, 10, headerLen(t, file), headerLen(t, file) + 20} {
		err := checkHeader(&failingReader{data: file[:n], err: boom}, TypeX25519)
		if !errors.Is(err, boom) || errors.Is(err, ErrNotAge) {
			t.Errorf("after %d bytes: checkHeader = %v, want the read error and not ErrNotAge", n, err)
		}
	}
}

func TestPlaintextSize(t *testing.T) {
	const full = chunkSize + tagSize
	tests := []struct {
		payload int64
		want    int64 // -1 for invalid
	}{
		{-1, -1}, {0, -1}, {16, -1}, {31, -1},
		{32, 0},
		{33, 1},
		{16 + full, chunkSize},
		{16 + full + 15, -1},
		{16 + full + 16, -1}, // an empty final chunk after a full one
		{16 + full + 17, chunkSize + 1},
		{16 + 2*full, 2 * chunkSize},
		{16 + 2*full + 100, 2*chunkSize + 84},
	}
	for _, tt := range tests {
		got, err := PlaintextSize(tt.payload)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("PlaintextSize(%d) = %d, want error", tt.payload, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("PlaintextSize(%d) = %d, %v, want %d", tt.payload, got, err, tt.want)
		}
	}
}

// TestPlaintextSizeExhaustive checks PlaintextSize against PayloadSize, its
// inverse, for every plaintext size up to three chunks
// (TestHeaderLengthThenPlaintextSize checks PayloadSize against age).
func TestPlaintextSizeExhaustive(t *testing.T) {
	const maxPlain = 3*chunkSize + 100
	plainOf := make(map[int64]int64)
	for p := int64(0); p <= maxPlain; p++ {
		plainOf[PayloadSize(p)] = p
	}
	for payload := int64(0); payload <= PayloadSize(maxPlain); payload++ {
		got, err := PlaintextSize(payload)
		want, ok := plainOf[payload]
		switch {
		case ok && (err != nil || got != want):
			t.Fatalf("PlaintextSize(%d) = %d, %v, want %d", payload, got, err, want)
		case !ok && err == nil:
			t.Fatalf("PlaintextSize(%d) = %d, want error: no plaintext encrypts to that size", payload, got)
		}
	}
}

// TestHeaderLengthThenPlaintextSize checks the server's two steps together:
// the header length from the start of the file only, then the plaintext
// size of the rest; and the client's prediction of the file's size.
func TestHeaderLengthThenPlaintextSize(t *testing.T) {
	r := x25519ID(t).Recipient()
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize, 2*chunkSize + 7} {
		file := encrypt(t, make([]byte, size), r)
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// Like the server, pass only the start of the file.
			n, err := HeaderLength(bytes.NewReader(file[:min(len(file), 1000)]), TypeX25519)
			if err != nil {
				t.Fatalf("HeaderLength: %v", err)
			}
			if got, err := PlaintextSize(int64(len(file)) - n); err != nil || got != int64(size) {
				t.Errorf("PlaintextSize = %d, %v, want %d", got, err, size)
			}
			if got := n + PayloadSize(int64(size)); got != int64(len(file)) {
				t.Errorf("header + PayloadSize(%d) = %d, age wrote %d bytes", size, got, len(file))
			}
		})
	}
}

// TestCiphertextSize checks the prediction a pipelined submit makes after
// age.Encrypt returned and before the plaintext is written, for both
// recipient types.
func TestCiphertextSize(t *testing.T) {
	x := x25519ID(t).Recipient()
	hid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []age.Recipient{x, hid.Recipient()} {
		for _, size := range []int{0, 1, chunkSize, chunkSize + 1, 5*chunkSize - 3} {
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, r)
			if err != nil {
				t.Fatal(err)
			}
			start := int64(buf.Len())
			if _, err := w.Write(make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := CiphertextSize(start, int64(size)); got != int64(buf.Len()) {
				t.Errorf("%T, %d bytes: CiphertextSize(%d, %d) = %d, age wrote %d", r, size, start, size, got, buf.Len())
			}
		}
	}
}
