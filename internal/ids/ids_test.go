package ids

import (
	"strings"
	"testing"
)

func TestFormats(t *testing.T) {
	sub := "0123456789abcdef0123456789abcdef"
	sum := strings.Repeat("a1", 32)
	tests := []struct {
		name  string
		valid func(string) bool
		s     string
		want  bool
	}{
		{"submission", ValidSubmission, sub, true},
		{"submission all digits", ValidSubmission, strings.Repeat("0", 32), true},
		{"submission uppercase", ValidSubmission, strings.ToUpper(sub), false},
		{"submission one uppercase", ValidSubmission, sub[:31] + "F", false},
		{"submission short", ValidSubmission, sub[:31], false},
		{"submission long", ValidSubmission, sub + "0", false},
		{"submission empty", ValidSubmission, "", false},
		{"submission not hex", ValidSubmission, sub[:31] + "g", false},
		{"submission path", ValidSubmission, "../" + sub[3:], false},
		{"submission slash", ValidSubmission, sub[:16] + "/" + sub[17:], false},
		{"submission dot", ValidSubmission, sub[:16] + "." + sub[17:], false},
		{"submission non-ASCII", ValidSubmission, sub[:30] + "é", false},
		{"submission NUL", ValidSubmission, sub[:31] + "\x00", false},
		{"submission digest", ValidSubmission, sum, false},
		{"token", ValidToken, sub[:16], true},
		{"token uppercase", ValidToken, strings.ToUpper(sub[:16]), false},
		{"token submission", ValidToken, sub, false},
		{"sha256", ValidSHA256, sum, true},
		{"sha256 uppercase", ValidSHA256, strings.ToUpper(sum), false},
		{"sha256 submission", ValidSHA256, sub, false},
		{"sha256 space", ValidSHA256, sum[:63] + " ", false},
	}
	for _, tt := range tests {
		if got := tt.valid(tt.s); got != tt.want {
			t.Errorf("%s: %q: got %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
	if !LowerHex("", 0) || LowerHex("a", 0) || !LowerHex("0f", 2) {
		t.Error("LowerHex does not count the length exactly")
	}
}
