package caseworker

import (
	"strings"
	"testing"
)

func TestParsePinFlag(t *testing.T) {
	const want = "82853bbf763b5d3cc83611300c15f1ca51f89fdce1d7cc4ba742c755406551e5"
	for _, in := range []string{
		want,
		strings.ToUpper(want),
		colons(want),
		strings.ToLower(colons(want)),
		"SHA256 Fingerprint=" + colons(want),
		"sha256 Fingerprint=" + colons(want),
	} {
		if got, err := parsePinFlag(in); err != nil || got != want {
			t.Errorf("parsePinFlag(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1234", colons(want)[3:], want + "00", "sha256//" + want, "SHA1 Fingerprint=" + colons(want)} {
		if got, err := parsePinFlag(in); err == nil {
			t.Errorf("parsePinFlag(%q) = %q, want an error", in, got)
		}
	}
}

// colons writes a pin as browsers and openssl show it: AB:CD:….
func colons(pin string) string {
	var parts []string
	for i := 0; i < len(pin); i += 2 {
		parts = append(parts, strings.ToUpper(pin[i:i+2]))
	}
	return strings.Join(parts, ":")
}
