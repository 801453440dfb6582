package recipients

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	agetest "c2sp.org/CCTV/age"
)

// serverChunkSize is server.ChunkSize (the server imports this package, so
// the test cannot import it): the server checks the age header in the
// first upload chunk, and the payload length once the upload is complete.
const serverChunkSize = 1 << 20

// serverAcceptance is the server's acceptance check, call for call: the
// header of the first chunk (server.checkHeader), then the payload length of
// the whole file (server.checkPayload).
func serverAcceptance(file []byte, wantType string) error {
	first := file[:min(len(file), serverChunkSize)]
	n, err := HeaderLength(bytes.NewReader(first), wantType)
	if err != nil {
		return err
	}
	if _, err := PlaintextSize(int64(len(file)) - n); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAge, err)
	}
	return nil
}

// headerEnd finds the end of an age header by its text alone: the newline
// that ends the first line starting with "---" (stanza lines start with
// "-> ", and stanza bodies are base64, which has no '-').
func headerEnd(file []byte) (int64, bool) {
	i := bytes.Index(file, []byte("\n---"))
	if i < 0 {
		return 0, false
	}
	j := bytes.IndexByte(file[i+1:], '\n')
	if j < 0 {
		return 0, false
	}
	return int64(i + 1 + j + 1), true
}

// streamLength is the size of the age payload (nonce included) for a
// plaintext of n bytes, computed forwards as an encryptor does: 64 KiB
// chunks, each with a 16-byte tag, and one empty chunk only for an empty
// plaintext.
func streamLength(n int64) int64 {
	chunks := max(1, (n+chunkSize-1)/chunkSize)
	return nonceSize + n + chunks*tagSize
}

// possiblePayload reports whether some plaintext encrypts to exactly p
// payload bytes: for each plausible chunk count k, the plaintext would be
// p minus the nonce and k tags, and streamLength says whether it fits.
func possiblePayload(p int64) bool {
	k0 := (p - nonceSize) / encChunkSize
	for k := max(1, k0-1); k <= k0+1; k++ {
		if n := p - nonceSize - k*tagSize; n >= 0 && streamLength(n) == p {
			return true
		}
	}
	return false
}

// TestVectorsServerAcceptance runs every official age test vector through
// the server's acceptance check, with the deployment's recipient type set to
// the type of the vector's identities, and requires exactly the outcome the
// server can know without a key:
//
//   - a header age refuses: refused (ErrNotAge or ErrWrongRecipientType);
//   - an armored file: refused as not a binary age file (ErrNotAge);
//   - stanzas of another type (scrypt, mixed): refused (ErrWrongRecipientType);
//   - any other file (success, no match, bad header MAC, bad payload):
//     accepted exactly when its payload length is one an age encryptor can
//     produce, worked out here forwards from the plaintext size; else
//     refused with ErrNotAge. Every "success" vector must be accepted.
func TestVectorsServerAcceptance(t *testing.T) {
	entries, err := fs.ReadDir(agetest.Vectors, ".")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	outcomes := map[string]int{}
	record := func(expect, outcome string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[expect+": "+outcome]++
	}
	t.Cleanup(func() {
		var lines []string
		total := 0
		for k, n := range outcomes {
			lines = append(lines, fmt.Sprintf("%s: %d", k, n))
			total += n
		}
		sort.Strings(lines)
		t.Logf("%d of %d vectors got their expected server outcome:\n\t%s", total, len(entries), strings.Join(lines, "\n\t"))
		if total != len(entries) && !t.Failed() {
			t.Errorf("only %d of %d vectors were checked", total, len(entries))
		}
	})
	for _, e := range entries {
		data, err := fs.ReadFile(agetest.Vectors, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			v := parseVector(t, data)
			err := serverAcceptance(v.file, v.wantType)
			types := stanzaTypes(v.file)
			wrongType := slices.ContainsFunc(types, func(s string) bool { return s != v.wantType })
			switch {
			case v.expect == "header failure":
				if !errors.Is(err, ErrNotAge) && !errors.Is(err, ErrWrongRecipientType) {
					t.Fatalf("server check = %v, want a refusal of the header", err)
				}
				record(v.expect, "refused")
			case v.armored:
				if !errors.Is(err, ErrNotAge) {
					t.Fatalf("server check = %v, want ErrNotAge for an armored file", err)
				}
				record("armored ("+v.expect+")", "refused")
			case wrongType:
				if !errors.Is(err, ErrWrongRecipientType) {
					t.Fatalf("server check = %v, want ErrWrongRecipientType for stanzas %q in a %s deployment", err, types, v.wantType)
				}
				record(v.expect+" (stanza type)", "refused by policy")
			default:
				end, ok := headerEnd(v.file)
				if !ok {
					t.Fatal("vector has no header end")
				}
				possible := possiblePayload(int64(len(v.file)) - end)
				switch {
				case v.expect == "success" && !possible:
					t.Fatal("the length oracle refuses a vector age decrypts")
				case possible && err != nil:
					t.Fatalf("server check = %v, want acceptance (the payload length is possible)", err)
				case !possible && !errors.Is(err, ErrNotAge):
					t.Fatalf("server check = %v, want ErrNotAge (no age file has this payload length)", err)
				case possible:
					record(v.expect, "accepted")
				default:
					t.Logf("refused: %v", err)
					record(v.expect, "refused by length")
				}
			}
		})
	}
}

func TestPossiblePayloadOracle(t *testing.T) {
	// The oracle and PlaintextSize are independent ways of saying the same
	// thing; they must agree on every length around the chunk boundaries.
	for _, base := range []int64{0, encChunkSize, 2 * encChunkSize, 257 * encChunkSize} {
		for p := base; p < base+3*tagSize+nonceSize+2; p++ {
			_, err := PlaintextSize(p)
			if possiblePayload(p) != (err == nil) {
				t.Errorf("payload %d: oracle says %v, PlaintextSize says %v", p, possiblePayload(p), err)
			}
		}
	}
}
