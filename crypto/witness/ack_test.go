package witness

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
)

func testLog(t testing.TB, size int64) (logKey string, cpNote []byte) {
	t.Helper()
	skey, vkey, err := intakelog.NewLogKey("test-log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	cpNote, err = intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: "test-log", Size: size, Root: [32]byte{1, 2, 3}}, s)
	if err != nil {
		t.Fatal(err)
	}
	return vkey, cpNote
}

func testKey(t testing.TB, name string) (*Key, *Verifier) {
	t.Helper()
	skey, err := NewKey(name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(k.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != k.VerifierKey() {
		t.Fatalf("verifier key %q round-trips as %q", k.VerifierKey(), v.String())
	}
	return k, v
}

func TestAckRoundTrip(t *testing.T) {
	logKey, cp := testLog(t, 10)
	k, v := testKey(t, "reviewer-1")
	_, other := testKey(t, "reviewer-2")
	now := time.Unix(1796000000, 0)
	data, err := Sign(k, cp, logKey, []int64{7, 3, 3, 0}, now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(data, logKey, []*Verifier{other, v})
	if err != nil {
		t.Fatal(err)
	}
	if a.Witness != v || !a.Time.Equal(now) || !slices.Equal(a.Indexes, []int64{0, 3, 7}) || a.Checkpoint.Size != 10 {
		t.Fatalf("got witness %s, time %v, indexes %v, size %d", a.Witness.Name(), a.Time, a.Indexes, a.Checkpoint.Size)
	}
	if _, err := Open(data, logKey, []*Verifier{other}); !errors.Is(err, ErrUnknownWitness) {
		t.Fatalf("Open with another witness: %v, want ErrUnknownWitness", err)
	}
	if _, err := Sign(k, cp, logKey, []int64{10}, now); err == nil {
		t.Fatal("Sign accepted an index at the checkpoint size")
	}
}

// TestCosignatureFormat checks the cosignature line against the C2SP
// tlog-cosignature/v1 definition, computed here independently of key.go.
func TestCosignatureFormat(t *testing.T) {
	logKey, cp := testLog(t, 5)
	k, _ := testKey(t, "reviewer-1")
	now := time.Unix(1679315147, 0)
	data, err := Sign(k, cp, logKey, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	body, sigs, _ := strings.Cut(f.Checkpoint, "\n\n")
	body += "\n"
	lines := strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("checkpoint has %d signature lines, want the log's and the witness's", len(lines))
	}
	fields := strings.Fields(lines[1])
	if fields[0] != "—" || fields[1] != "reviewer-1" {
		t.Fatalf("cosignature line %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(raw) != 4+8+64 {
		t.Fatalf("cosignature is %d bytes (%v), want 76", len(raw), err)
	}
	vraw, _ := base64.StdEncoding.DecodeString(strings.SplitN(k.VerifierKey(), "+", 3)[2])
	pub := ed25519.PublicKey(vraw[1:])
	if vraw[0] != 0x04 {
		t.Fatalf("verifier key type 0x%02x, want 0x04", vraw[0])
	}
	idInput := append([]byte("reviewer-1\n\x04"), pub...)
	if got, want := raw[:4], sha256Sum(idInput)[:4]; !slices.Equal(got, want) {
		t.Fatalf("key id %x, want %x", got, want)
	}
	if ts := binary.BigEndian.Uint64(raw[4:12]); ts != 1679315147 {
		t.Fatalf("timestamp %d", ts)
	}
	msg := "cosignature/v1\ntime 1679315147\n" + body
	if !ed25519.Verify(pub, []byte(msg), raw[12:]) {
		t.Fatal("cosignature does not verify over the cosignature/v1 message")
	}
}

func TestAckTampered(t *testing.T) {
	logKey, cp := testLog(t, 10)
	k, v := testKey(t, "reviewer-1")
	k2, _ := testKey(t, "reviewer-1")
	data, err := Sign(k, cp, logKey, []int64{1, 2}, time.Unix(1796000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	// The same witness name with another key signs a statement naming more
	// indexes: a collector or server adding indexes of its choice.
	forged, err := note.Sign(&note.Note{Text: statementText(mustCheckpoint(t, cp, logKey), []int64{1, 2, 3})}, k2.statementSigner())
	if err != nil {
		t.Fatal(err)
	}
	_, otherCp := testLog(t, 10)
	for name, mutate := range map[string]func(f *file){
		"index added": func(f *file) {
			f.Statement = strings.Replace(f.Statement, "opened 2\n1\n2\n", "opened 3\n1\n2\n3\n", 1)
		},
		"other key": func(f *file) { f.Statement = string(forged) },
		"other log": func(f *file) { f.Checkpoint = string(otherCp) },
		"no cosig": func(f *file) {
			f.Checkpoint = string(cp)
		},
	} {
		g := f
		mutate(&g)
		b, _ := json.Marshal(&g)
		if a, err := Open(b, logKey, []*Verifier{v}); err == nil {
			t.Errorf("%s: accepted, indexes %v", name, a.Indexes)
		}
	}
	if _, err := Open(append([]byte(`{"version":1,"version":1,`), data[1:]...), logKey, []*Verifier{v}); err == nil {
		t.Error("duplicate key accepted")
	}
}

func mustCheckpoint(t *testing.T, cp []byte, logKey string) intakelog.Checkpoint {
	c, err := intakelog.OpenCheckpoint(cp, logKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewVerifierRefusesOtherKeys(t *testing.T) {
	logKey, _ := testLog(t, 1)
	if _, err := NewVerifier(logKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a log key as a witness key: %v", err)
	}
}
