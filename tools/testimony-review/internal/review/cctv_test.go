package review

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	agetest "c2sp.org/CCTV/age"
	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

// cctvVector is one of age's official test vectors (c2sp.org/CCTV/age).
type cctvVector struct {
	name        string
	expect      string // success, payload failure, header failure, HMAC failure, no match, armor failure
	payloadHash *[32]byte
	identities  []age.Identity
	armored     bool
	file        []byte
}

func readCCTV(t *testing.T) []*cctvVector {
	t.Helper()
	entries, err := fs.ReadDir(agetest.Vectors, ".")
	if err != nil {
		t.Fatal(err)
	}
	var vs []*cctvVector
	for _, e := range entries {
		data, err := fs.ReadFile(agetest.Vectors, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, parseCCTV(t, e.Name(), data))
	}
	return vs
}

func parseCCTV(t *testing.T, name string, data []byte) *cctvVector {
	v := &cctvVector{name: name}
	compressed := false
	for {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			t.Fatalf("%s: no payload", name)
		}
		data = rest
		if len(line) == 0 {
			break
		}
		key, value, _ := strings.Cut(string(line), ": ")
		switch key {
		case "expect":
			v.expect = value
		case "payload":
			h, err := hex.DecodeString(value)
			if err != nil || len(h) != 32 {
				t.Fatalf("%s: payload hash %q", name, value)
			}
			v.payloadHash = (*[32]byte)(h)
		case "identity":
			var id age.Identity
			id, err := age.ParseX25519Identity(value)
			if err != nil {
				id, err = age.ParseHybridIdentity(value)
			}
			if err != nil {
				t.Fatalf("%s: identity: %v", name, err)
			}
			v.identities = append(v.identities, id)
		case "passphrase":
			id, err := age.NewScryptIdentity(value)
			if err != nil {
				t.Fatal(err)
			}
			v.identities = append(v.identities, id)
		case "armored":
			v.armored = true
		case "compressed":
			compressed = true
		case "file key", "comment":
		default:
			t.Fatalf("%s: unknown header %q", name, key)
		}
	}
	v.file = data
	if compressed {
		r, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if v.file, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// decryptToTemp is the reviewer's decrypt stage on its own: age.Decrypt with
// the reviewer's identities, its plaintext read through decryptReader (which
// marks age's payload errors as in Open) into a file in a temporary area.
// It returns the header error, or the plaintext written and the payload
// error.
func decryptToTemp(t *testing.T, file []byte, ids []age.Identity) (headerErr error, plain []byte, payloadErr error) {
	r, err := age.Decrypt(bytes.NewReader(file), ids...)
	if err != nil {
		return err, nil, nil
	}
	tmp, err := os.CreateTemp(t.TempDir(), "plaintext-")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	_, payloadErr = io.Copy(tmp, decryptReader{r})
	plain, err = os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return nil, plain, payloadErr
}

// openVectorBundle puts the vector's ciphertext into a one-submission
// bundle, verifies it and opens it with the vector's identities, as
// `testimony-review open` does.
func openVectorBundle(t *testing.T, v *cctvVector) (Result, string) {
	t.Helper()
	dir := t.TempDir()
	bundleDir, out := filepath.Join(dir, "bundle"), filepath.Join(dir, "out")
	log := fixture.NewLog()
	log.Append(id(1), v.file)
	if err := log.WriteBundle(bundleDir, 0, 1, fixture.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	_, key := fixture.LogKey()
	verified, err := Verify(bundleDir, Witness{LogKey: key, Opened: map[string]SeenLeaf{}})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ids := v.identities
	if len(ids) == 0 {
		// Armor vectors need none (they fail before one is used); Open
		// needs at least one.
		k, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		ids = []age.Identity{k}
	}
	res, err := Open(verified, out, Options{
		Identities: ids,
		Limits:     envelope.DefaultLimits,
		Now:        time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Tool:       "cctv test",
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	return res[0], out
}

// TestVectorsReviewer runs every official age test vector through the
// reviewer's decryption path with the vector's identities, and asserts the
// vector's expected outcome twice:
//
//   - the decrypt stage (age.Decrypt and decryptReader into a temporary
//     file): success with the vector's plaintext hash; a payload failure
//     marked as a decryption error after a plaintext prefix matching the
//     vector's hash; a header failure (HMAC, malformed, armored: the
//     reviewer reads binary age only); or no matching identity;
//   - the whole open path, with the ciphertext wrapped in a verified
//     bundle: the submission fails with the reason that matches the
//     outcome (a successfully decrypted vector is not a tar envelope, so
//     it is refused as an envelope), and nothing at all is left in OUTDIR,
//     neither a submission directory nor a work directory holding
//     partial plaintext.
func TestVectorsReviewer(t *testing.T) {
	vs := readCCTV(t)
	var mu sync.Mutex
	outcomes := map[string]int{}
	record := func(k string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[k]++
	}
	t.Cleanup(func() {
		var lines []string
		total := 0
		for k, n := range outcomes {
			lines = append(lines, fmt.Sprintf("%s: %d", k, n))
			total += n
		}
		sort.Strings(lines)
		t.Logf("%d of %d vectors got their expected reviewer outcome:\n\t%s", total, len(vs), strings.Join(lines, "\n\t"))
		if total != len(vs) && !t.Failed() {
			t.Errorf("only %d of %d vectors were checked", total, len(vs))
		}
	})
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			headerErr, plain, payloadErr := decryptToTemp(t, v.file, v.identities)
			var noMatch *age.NoIdentityMatchError
			isNoMatch := errors.As(headerErr, &noMatch)
			var wantReason, outcome string
			switch {
			case v.armored:
				// Bundles hold what the server accepted, which is never
				// armored; the reviewer does not strip armor either.
				if headerErr == nil || isNoMatch {
					t.Fatalf("armored file: header error %v, want a refusal", headerErr)
				}
				wantReason, outcome = "decryption failed", "armored ("+v.expect+"): refused in the header"
			case v.expect == "success":
				if headerErr != nil || payloadErr != nil {
					t.Fatalf("decrypt: %v, %v", headerErr, payloadErr)
				}
				if v.payloadHash == nil || sha256.Sum256(plain) != *v.payloadHash {
					t.Fatal("plaintext hash mismatch")
				}
				wantReason, outcome = "envelope refused", "success: plaintext hash matches"
			case v.expect == "payload failure":
				if headerErr != nil {
					t.Fatalf("header error %v, want a payload failure", headerErr)
				}
				if payloadErr == nil || !errors.Is(payloadErr, ErrDecrypt) {
					t.Fatalf("payload error %v, want a decryption error", payloadErr)
				}
				if v.payloadHash != nil && sha256.Sum256(plain) != *v.payloadHash {
					t.Errorf("the %d plaintext bytes before the failure do not match the vector", len(plain))
				}
				// Extract reads the first tar block before anything else:
				// if age fails before 512 bytes, the failure is age's;
				// otherwise the block is not a tar header.
				wantReason = "decryption failed"
				if len(plain) >= 512 {
					wantReason = "envelope refused"
				}
				outcome = "payload failure: refused (" + wantReason + ")"
			case v.expect == "no match":
				if !isNoMatch {
					t.Fatalf("header error %v, want no matching identity", headerErr)
				}
				wantReason, outcome = "no matching identity", "no match: refused"
			case v.expect == "HMAC failure", v.expect == "header failure":
				if headerErr == nil || isNoMatch {
					t.Fatalf("header error %v, want a header failure", headerErr)
				}
				if v.expect == "HMAC failure" && !strings.Contains(headerErr.Error(), "bad header MAC") {
					t.Fatalf("header error %v, want a bad header MAC", headerErr)
				}
				wantReason, outcome = "decryption failed", v.expect+": refused in the header"
			default:
				t.Fatalf("unexpected vector kind %q", v.expect)
			}

			if len(v.file) == 0 {
				// The server refuses an empty file, so no log leaf and no
				// bundle can hold one.
				record(outcome + " (not bundled: empty)")
				return
			}
			res, out := openVectorBundle(t, v)
			if res.Status != Failed || res.Reason != wantReason {
				t.Fatalf("open: status %v, reason %q (%v); want failure %q", res.Status, res.Reason, res.Err, wantReason)
			}
			switch wantReason {
			case "decryption failed":
				if !errors.Is(res.Err, ErrDecrypt) {
					t.Errorf("error %v does not wrap ErrDecrypt", res.Err)
				}
			case "envelope refused":
				if !errors.Is(res.Err, envelope.ErrInvalid) {
					t.Errorf("error %v does not wrap envelope.ErrInvalid", res.Err)
				}
			case "no matching identity":
				if !errors.Is(res.Err, ErrNoIdentity) {
					t.Errorf("error %v does not wrap ErrNoIdentity", res.Err)
				}
			}
			if got := ls(t, out); len(got) != 0 {
				t.Errorf("OUTDIR holds %v after a failed open", got)
			}
			record(outcome)
		})
	}
}
