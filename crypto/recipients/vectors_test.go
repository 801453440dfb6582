package recipients

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	agetest "c2sp.org/CCTV/age"
)

// vector is the part of a c2sp.org/CCTV/age test vector CheckHeader cares about.
type vector struct {
	expect   string
	wantType string // the deployment type matching the vector's identities
	armored  bool
	file     []byte
}

func parseVector(t *testing.T, data []byte) *vector {
	v := &vector{wantType: TypeHybrid}
	var compressed, hasX25519, hasHybrid bool
	for {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			t.Fatal("invalid vector: no payload")
		}
		data = rest
		if len(line) == 0 {
			break
		}
		key, value, _ := strings.Cut(string(line), ": ")
		switch key {
		case "expect":
			v.expect = value
		case "identity":
			if strings.HasPrefix(value, "AGE-SECRET-KEY-PQ-") {
				hasHybrid = true
			} else {
				hasX25519 = true
			}
		case "armored":
			v.armored = true
		case "compressed":
			compressed = true
		}
	}
	if hasX25519 && !hasHybrid {
		v.wantType = TypeX25519
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

// stanzaTypes lists the stanza types of a header by looking at its "-> "
// lines, independently of the code under test.
func stanzaTypes(file []byte) []string {
	var types []string
	for line := range strings.SplitSeq(string(file), "\n") {
		if strings.HasPrefix(line, "---") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "-> "); ok {
			typ, _, _ := strings.Cut(rest, " ")
			types = append(types, typ)
		}
	}
	return types
}

// TestVectors runs every official age test vector through CheckHeader with
// the recipient type of the vector's identities. A vector whose header age
// refuses must be refused; a binary file whose header age accepts and whose
// stanzas are all of the wanted type must be accepted (even if a payload or
// MAC problem shows up later, which CheckHeader cannot see); armored files
// are not age v1 binary files to the server.
func TestVectors(t *testing.T) {
	entries, err := fs.ReadDir(agetest.Vectors, ".")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := make(map[string]int)
	count := func(k string) {
		mu.Lock()
		counts[k]++
		mu.Unlock()
	}
	t.Cleanup(func() {
		t.Logf("%d vectors: %d header failures refused; %d accepted; %d refused by policy (armor, stanza type); "+
			"payload failures: %d refused for lack of a payload, %d accepted by CheckHeader, of which %d refused by CheckHeaderAndPayload",
			len(entries), counts["header failure refused"], counts["accepted"], counts["refused by policy"],
			counts["payload failure refused"], counts["payload failure accepted"], counts["payload failure refused by size"])
		if counts["header failure refused"] == 0 || counts["accepted"] == 0 {
			t.Error("the vector set did not exercise both outcomes")
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
			err := CheckHeader(bytes.NewReader(v.file), v.wantType)
			t.Logf("expect %s, %s: %v", v.expect, v.wantType, err)

			allWanted := true
			for _, typ := range stanzaTypes(v.file) {
				allWanted = allWanted && typ == v.wantType
			}
			switch {
			case v.expect == "header failure":
				if err == nil {
					t.Fatal("CheckHeader accepted a header that age refuses")
				}
				count("header failure refused")
			case v.armored:
				if !errors.Is(err, ErrNotAge) {
					t.Fatalf("CheckHeader = %v, want ErrNotAge for an armored file", err)
				}
				count("refused by policy")
			case !allWanted:
				if !errors.Is(err, ErrWrongRecipientType) {
					t.Fatalf("CheckHeader = %v, want ErrWrongRecipientType for stanzas %q", err, stanzaTypes(v.file))
				}
				count("refused by policy")
			case v.expect == "payload failure":
				// The header is fine; whether CheckHeader notices depends
				// on whether the payload is too short to hold a tag.
				if err != nil && !strings.Contains(err.Error(), "without a payload") {
					t.Fatalf("CheckHeader = %v", err)
				}
				if err != nil {
					count("payload failure refused")
				} else {
					count("payload failure accepted")
				}
			default: // success, no match, HMAC failure
				if err != nil {
					t.Fatalf("CheckHeader = %v, want success", err)
				}
				count("accepted")
			}

			if err == nil {
				// The payload-size check must never refuse a file age
				// decrypts, and must refuse some payload failures.
				perr := CheckHeaderAndPayload(bytes.NewReader(v.file), int64(len(v.file)), v.wantType)
				if v.expect == "success" && perr != nil {
					t.Fatalf("CheckHeaderAndPayload refused a valid file: %v", perr)
				}
				if perr != nil {
					count("payload failure refused by size")
				}
			}
		})
	}
}
