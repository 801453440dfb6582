package recipients

import (
	"bytes"
	"compress/zlib"
	"io"
	"strings"
	"testing"
)

// vector is the part of a c2sp.org/CCTV/age test vector HeaderLength cares about.
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
