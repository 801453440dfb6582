package review

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

// TestCustody checks that the custody record of an opened submission holds
// everything needed to re-check it without this program: its inclusion in
// the signed checkpoint, the caseworker's signature over manifest.json, and
// every file's hash.
func TestCustody(t *testing.T) {
	e := newEnv(t)
	e.submitN(1)
	caseworker := fixture.DeviceKey(7)
	paths := e.files(map[string]string{"testimony.txt": "We crossed the river at night.", "photo.jpg": "not a jpeg"})
	meta := envelope.Meta{Case: "NK-2026-001", InterviewDate: "2026-11-20", Language: "ko", Consent: "documentation"}
	sub := e.add(e.log, fixture.Envelope(meta, caseworker, paths...))
	dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})
	opt := e.options()
	key := envelope.DeviceKeyString(caseworker.Public().(ed25519.PublicKey))
	opt.Caseworkers = map[string]string{key: "Kim Ji-won"}
	if res := e.open(dir, opt); res[1].Status != Opened {
		t.Fatalf("%+v", res[1])
	}
	out := filepath.Join(e.out, sub)

	data, err := os.ReadFile(filepath.Join(out, CustodyJSONName))
	must(t, err)
	var c Custody
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	must(t, dec.Decode(&c))
	b, err := bundle.Read(dir)
	must(t, err)
	leaf := e.log.Leaf(1)

	if c.Version != CustodyVersion || c.ID != sub || c.Received != fixture.Received || c.Opened != "2026-12-01T10:30:00Z" || c.Tool != "testimony-review test" {
		t.Errorf("header fields: %+v", c)
	}
	if c.Ciphertext != (CustodyCiphertext{File: sub + ".age", Size: leaf.Size, SHA256: leaf.SHA256}) {
		t.Errorf("ciphertext %+v, leaf %+v", c.Ciphertext, leaf)
	}
	ct, err := os.ReadFile(filepath.Join(dir, sub+".age"))
	must(t, err)
	if sum := sha256.Sum256(ct); hex.EncodeToString(sum[:]) != c.Ciphertext.SHA256 {
		t.Error("ciphertext sha256 in the record is not the file's")
	}

	// The log section alone proves inclusion.
	_, logKey := fixture.LogKey()
	if c.Log.Key != logKey || c.Log.Origin != fixture.Origin || c.Log.Index != 1 || c.Log.Checkpoint != b.Checkpoint || c.Log.Size != 2 {
		t.Errorf("log %+v", c.Log)
	}
	parsed, err := intakelog.ParseLeaf([]byte(c.Log.Leaf))
	must(t, err)
	cp, err := intakelog.OpenCheckpoint([]byte(c.Log.Checkpoint), c.Log.Key)
	must(t, err)
	proof, err := intakelog.DecodeProof(c.Log.InclusionProof)
	must(t, err)
	if err := intakelog.VerifyInclusion(cp, c.Log.Index, parsed, proof); err != nil {
		t.Errorf("the record's inclusion proof does not verify: %v", err)
	}
	if h := parsed.Hash(); base64.StdEncoding.EncodeToString(h[:]) != c.Log.LeafHash || parsed.SHA256 != c.Ciphertext.SHA256 {
		t.Error("leaf hash or leaf sha256 differ from the record")
	}
	if base64.StdEncoding.EncodeToString(cp.Root[:]) != c.Log.Root {
		t.Error("root differs from the checkpoint's")
	}

	// The caseworker's signature verifies over manifest.json as written.
	if c.Caseworker.Status != "known" || c.Caseworker.Name != "Kim Ji-won" || c.Caseworker.Key != key ||
		c.Caseworker.Fingerprint != envelope.Fingerprint(caseworker.Public().(ed25519.PublicKey)) {
		t.Errorf("caseworker %+v", c.Caseworker)
	}
	mj, err := os.ReadFile(filepath.Join(out, ManifestName))
	must(t, err)
	sig, err := base64.StdEncoding.DecodeString(c.Caseworker.Signature)
	must(t, err)
	if !ed25519.Verify(caseworker.Public().(ed25519.PublicKey), append([]byte("testimony manifest v1\n"), mj...), sig) {
		t.Error("the record's signature does not verify over manifest.json")
	}
	if sum := sha256.Sum256(mj); hex.EncodeToString(sum[:]) != c.ManifestSHA256 {
		t.Error("manifest_sha256 is not manifest.json's")
	}
	if c.Manifest == nil || c.Manifest.Case != meta.Case || c.Manifest.InterviewDate != "2026-11-20" || len(c.Manifest.Files) != 2 {
		t.Errorf("manifest %+v", c.Manifest)
	}

	// Every file's recorded hash is the file's.
	if len(c.Files) != 2 {
		t.Fatalf("files %+v", c.Files)
	}
	for _, f := range c.Files {
		body, err := os.ReadFile(filepath.Join(out, f.Name))
		must(t, err)
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(body)) != f.Size {
			t.Errorf("%s: recorded %s %d", f.Name, f.SHA256, f.Size)
		}
	}

	txt, err := os.ReadFile(filepath.Join(out, CustodyTextName))
	must(t, err)
	text := string(txt)
	for _, want := range []string{
		"testimony submission " + sub,
		"when the submission was opened (2026-12-01 10:30:00 UTC)",
		"Received (UTC date)    " + fixture.Received,
		"Ciphertext SHA-256     " + leaf.SHA256,
		"Leaf index             1",
		"    testimony leaf v1\n    " + sub + "\n",
		"Checkpoint size        2",
		"    " + fixture.Origin + "\n    2\n",
		"Status                 signed by a known caseworker: Kim Ji-won",
		"Device key             " + key,
		"Case                   NK-2026-001\n",
		"Interview date         2026-11-20",
		c.Files[0].SHA256 + "  ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("custody.txt lacks %q:\n%s", want, text)
		}
	}
}

// TestCustodyUnsigned covers the plain tar: no manifest, no signature.
func TestCustodyUnsigned(t *testing.T) {
	e := newEnv(t)
	sub := e.add(e.log, fixture.Tar(fixture.Entry{Name: "notes.txt", Body: "typed by hand"}))
	e.open(e.bundle(e.log, 0, 1, fixture.BundleOptions{}), e.options())
	data, err := os.ReadFile(filepath.Join(e.out, sub, CustodyJSONName))
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(data, &c))
	if c["manifest"] != nil || c["manifest_sha256"] != nil {
		t.Errorf("manifest %v, manifest_sha256 %v", c["manifest"], c["manifest_sha256"])
	}
	if cw := c["caseworker"].(map[string]any); len(cw) != 1 || cw["status"] != "unsigned" {
		t.Errorf("caseworker %v", cw)
	}
	txt, err := os.ReadFile(filepath.Join(e.out, sub, CustodyTextName))
	must(t, err)
	for _, want := range []string{"Status                 unsigned\n", "None: the submission is a plain tar archive", "notes.txt"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("custody.txt lacks %q", want)
		}
	}
}

// TestSafeText: crypto/envelope already refuses control characters in
// metadata and names; custody.txt does not rely on it.
func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"NK-2026-001":       "NK-2026-001",
		"탈북 증언":             "탈북 증언",
		"\x1b[2Jcleared":    "?[2Jcleared",
		"rtl\u202eoverride": "rtl?override",
		"two\nlines":        "two?lines",
		"bad\xffutf8":       "bad?utf8",
	} {
		if got := safeText(in); got != want {
			t.Errorf("safeText(%q) = %q, want %q", in, got, want)
		}
	}
}
