package intakelog

import (
	"errors"
	"strings"
	"testing"
)

func TestLeafRoundTrip(t *testing.T) {
	for _, l := range []Leaf{testLeaf(0), testLeaf(12345), {ID: testLeaf(1).ID, SHA256: testLeaf(1).SHA256, Size: 1 << 62, Date: "2026-02-28"}} {
		got, err := ParseLeaf(l.Bytes())
		if err != nil {
			t.Fatalf("ParseLeaf(%q): %v", l.Bytes(), err)
		}
		if got != l {
			t.Errorf("ParseLeaf(Bytes()) = %+v, want %+v", got, l)
		}
	}
}

func TestParseLeaf(t *testing.T) {
	good := string(testLeaf(7).Bytes())
	line := func(n int, s string) string {
		lines := strings.Split(good, "\n")
		lines[n] = s
		return strings.Join(lines, "\n")
	}
	tests := []struct{ name, in, text string }{
		{"empty", "", "5 newline-terminated lines"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "lines"},
		{"extra line", good + "x\n", "lines"},
		{"extra blank line", good + "\n", "lines"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), ""},
		{"version 2", line(0, "testimony leaf v2"), "first line"},
		{"id uppercase", line(1, strings.ToUpper(testLeaf(10).ID)), "id"},
		{"id short", line(1, "abc"), "id"},
		{"sha256 short", line(2, "00"), "sha256"},
		{"sha256 uppercase", line(2, strings.Repeat("A", 64)), "sha256"},
		{"size leading zero", line(3, "07"), "size"},
		{"size negative", line(3, "-7"), "size"},
		{"size plus", line(3, "+7"), "size"},
		{"size empty", line(3, ""), "size"},
		{"size overflow", line(3, "9223372036854775808"), "size"},
		{"date with time", line(4, "2026-11-27T10:00:00Z"), "date"},
		{"date impossible", line(4, "2026-02-30"), "date"},
		{"date unpadded", line(4, "2026-1-2"), "date"},
		{"too large", good + strings.Repeat("x", MaxLeafSize), "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLeaf([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseLeaf = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("ParseLeaf = %q, want it to contain %q", err, tt.text)
			}
		})
	}
}

func TestLeafHash(t *testing.T) {
	a, b := testLeaf(1), testLeaf(1)
	if a.Hash() != b.Hash() {
		t.Error("equal leaves hash differently")
	}
	b.Date = "2026-11-28"
	if a.Hash() == b.Hash() {
		t.Error("leaves with different dates hash the same")
	}
}
