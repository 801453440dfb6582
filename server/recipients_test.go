package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/recipients"
)

// orgKeys is the organisation's key pair, which lives on the reviewers'
// air-gapped machine; the server never has the signer.
type orgKeys struct {
	signer, verifier string
}

func newOrgKeys(t testing.TB) orgKeys {
	t.Helper()
	s, v, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		t.Fatal(err)
	}
	return orgKeys{s, v}
}

// signNote signs a note listing rs (of one type) at version with signer.
func signNote(t testing.TB, signer string, version uint64, rs ...string) []byte {
	t.Helper()
	set, err := recipients.Parse(strings.NewReader(strings.Join(rs, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := recipients.SignNote(set, version, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func hybridRecipient(t testing.TB) string {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}

// newEnvWithOrgKey is newTestEnv for a deployment initialized with
// -org-key. It stores the key the way Init does; setRecipients reads the
// deployment from the store, so the running server needs no restart.
func newEnvWithOrgKey(t *testing.T, orgVerifier string) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	if err := e.db.PutMeta(metaOrgKey, []byte(orgVerifier)); err != nil {
		t.Fatal(err)
	}
	return e
}

// served returns what GET /v1/recipients says now.
func (e *testEnv) served() RecipientsInfo {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/v1/recipients", token: e.submit})
	expect(e.t, w, http.StatusOK, "")
	var info RecipientsInfo
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		e.t.Fatal(err)
	}
	return info
}

// setViaSocket sends a note to the server's admin handler, as recipients
// set does while the server runs.
func (e *testEnv) setViaSocket(msg []byte) (*httptest.ResponseRecorder, errorBody) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.srv.AdminHandler().ServeHTTP(w, httptest.NewRequest("POST", "/admin/recipients", bytes.NewReader(msg)))
	var eb errorBody
	if w.Code >= 300 {
		json.Unmarshal(w.Body.Bytes(), &eb)
	}
	return w, eb
}

func TestSetRecipients(t *testing.T) {
	org := newOrgKeys(t)
	e := newEnvWithOrgKey(t, org.verifier)
	before := e.served()
	if before.SignedRecipients != "" {
		t.Fatalf("a new deployment serves a note: %+v", before)
	}
	r1, r2 := hybridRecipient(t), hybridRecipient(t)
	x, _ := age.GenerateX25519Identity()
	other := newOrgKeys(t)
	// A note body holding a private key, signed properly: no recipients
	// note may carry one, whoever signed it.
	hid, _ := age.GenerateHybridIdentity()
	secretNote, err := note.Sign(&note.Note{Text: "testimony recipients v1\nversion 7\ntype mlkem768x25519\n" + hid.String() + "\n"},
		mustSigner(t, org.signer))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		note     []byte
		wantErr  error
		status   int
		code     string
		msg      string
		wantVers uint64 // served version afterwards
	}{
		{"first note", signNote(t, org.signer, 1, r1), nil, 200, "", "", 1},
		{"same version again", signNote(t, org.signer, 1, r2), ErrRecipientsVersion, 409, "recipients_version", "the note has version 1, the server already serves version 1", 1},
		{"rotation", signNote(t, org.signer, 3, r1, r2), nil, 200, "", "", 3},
		{"rollback", signNote(t, org.signer, 2, r2), ErrRecipientsVersion, 409, "recipients_version", "the note has version 2, the server already serves version 3", 3},
		{"other type", signNote(t, org.signer, 4, x.Recipient().String()), ErrRecipientsType, 409, "recipients_type", "the note lists X25519 recipients, this deployment uses mlkem768x25519", 3},
		{"signed by another key of the same name", signNote(t, other.signer, 9, r2), ErrRecipientsSignature, 403, "recipients_signature", "not signed by the organisation key", 3},
		{"signature altered", tamper(t, signNote(t, org.signer, 9, r2)), ErrRecipientsSignature, 403, "recipients_signature", "", 3},
		{"body altered", bytes.Replace(signNote(t, org.signer, 9, r2), []byte("version 9"), []byte("version 8"), 1), ErrRecipientsSignature, 403, "recipients_signature", "", 3},
		{"plain recipients file", []byte(r1 + "\n"), ErrRecipientsNote, 400, "recipients_note", "not a valid signed recipients note", 3},
		{"private key in the note", secretNote, ErrRecipientsNote, 400, "recipients_note", "", 3},
		{"empty", nil, ErrRecipientsNote, 400, "recipients_note", "", 3},
		{"too large", append(signNote(t, org.signer, 9, r2), bytes.Repeat([]byte("x"), recipients.MaxNoteSize)...), ErrRecipientsNote, 413, "", "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			// Over the admin socket, as with a running server…
			w, eb := e.setViaSocket(tt.note)
			if w.Code != tt.status || eb.Code != tt.code || !strings.Contains(eb.Error, tt.msg) {
				t.Fatalf("admin socket: %d %s, want %d %s %q", w.Code, w.Body.String(), tt.status, tt.code, tt.msg)
			}
			if strings.Contains(w.Body.String(), "AGE-SECRET-KEY") {
				t.Error("the answer repeats a private key")
			}
			// …and directly, as without one: the same verdict. (A note
			// accepted above is now a replay, refused for its version.)
			a := &localAdmin{db: e.db}
			_, err := a.SetRecipients(tt.note)
			want := tt.wantErr
			if want == nil {
				want = ErrRecipientsVersion
			}
			if tt.status == 413 {
				want = ErrRecipientsNote
			}
			if !errors.Is(err, want) {
				t.Fatalf("SetRecipients: %v, want %v", err, want)
			}
			got := e.served()
			ss, err := recipients.VerifyNote([]byte(got.SignedRecipients), org.verifier)
			if err != nil {
				t.Fatalf("the served note does not verify with the organisation key: %v", err)
			}
			if ss.Version != tt.wantVers || !slices.Equal(got.Recipients, ss.Set.Strings) || got.Type != ss.Set.Type {
				t.Fatalf("served %+v, note version %d; want version %d", got, ss.Version, tt.wantVers)
			}
			if got.LogKey != before.LogKey {
				t.Error("the log key changed")
			}
		})
	}

	// The note survives a restart, and uploads go on being checked
	// against the (unchanged) type.
	srv2, err := New(Config{DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	if d := srv2.dep.Load(); d.version != 3 || len(d.recipients.Strings) != 2 {
		t.Fatalf("after restart: version %d, %d recipients", d.version, len(d.recipients.Strings))
	}
	expect(t, e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(10)}), 201, "")
}

// TestServerCannotForgeRecipients is the attack of a seized or compromised
// server: it holds everything in its data directory, including its own log
// key, renames that key to the organisation's name and signs a note listing
// a key of its own. With -org-key the server refuses to serve it; in any
// case a client that pinned the organisation key refuses it.
func TestServerCannotForgeRecipients(t *testing.T) {
	org := newOrgKeys(t)
	for _, withOrgKey := range []bool{true, false} {
		var e *testEnv
		if withOrgKey {
			e = newEnvWithOrgKey(t, org.verifier)
		} else {
			e = newTestEnv(t)
		}
		// Every private key the server has.
		skey, err := e.db.GetMeta(metaLogSigner)
		if err != nil {
			t.Fatal(err)
		}
		forged := signNote(t, renameSigner(t, string(skey), "testimony-org"), 99, hybridRecipient(t))

		if _, err := recipients.VerifyNote(forged, org.verifier); !errors.Is(err, recipients.ErrNoteSignature) {
			t.Fatalf("a client with the organisation key accepts the server's note: %v", err)
		}
		_, err = (&localAdmin{db: e.db, srv: e.srv}).SetRecipients(forged)
		if withOrgKey {
			if !errors.Is(err, ErrRecipientsSignature) {
				t.Fatalf("with -org-key the server set its own note: %v", err)
			}
			if got := e.served(); got.SignedRecipients != "" {
				t.Fatalf("the refused note is served: %+v", got)
			}
			continue
		}
		// Without -org-key the server cannot tell, and serves it; the
		// client is what refuses it.
		if err != nil {
			t.Fatal(err)
		}
		got := e.served()
		if _, err := recipients.VerifyNote([]byte(got.SignedRecipients), org.verifier); !errors.Is(err, recipients.ErrNoteSignature) {
			t.Fatalf("the served forged note verifies: %v", err)
		}
	}
}

func mustSigner(t testing.TB, skey string) note.Signer {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// renameSigner returns the Ed25519 note signer key skey under another name,
// as an attacker holding skey could make it.
func renameSigner(t testing.TB, skey, name string) string {
	t.Helper()
	// The base64 key may itself contain '+', so split only the fields
	// before it.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		t.Fatalf("unexpected signer key format")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		t.Fatalf("unexpected signer key encoding")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.SplitN(vkey, "+", 3)[1]
	renamed := "PRIVATE+KEY+" + name + "+" + hash + "+" + parts[4]
	if s := mustSigner(t, renamed); s.Name() != name {
		t.Fatalf("renamed signer is named %q", s.Name())
	}
	return renamed
}

// tamper flips a bit in the signature of a note signed once.
func tamper(t testing.TB, msg []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(msg, []byte(" "))
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(msg[i+1:])))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	return append(append([]byte{}, msg[:i+1]...), base64.StdEncoding.EncodeToString(sig)+"\n"...)
}
