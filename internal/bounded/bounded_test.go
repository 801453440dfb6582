package bounded

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	for _, tt := range []struct {
		in      string
		max     int64
		tooLong bool
	}{
		{"", 0, false},
		{"a", 0, true},
		{"abc", 3, false},
		{"abcd", 3, true},
		{strings.Repeat("x", 1<<20), 1 << 20, false},
		{strings.Repeat("x", 1<<20+1), 1 << 20, true},
	} {
		r := strings.NewReader(tt.in)
		data, err := ReadAll(r, tt.max)
		if tt.tooLong {
			if !errors.Is(err, ErrTooLarge) || data != nil {
				t.Errorf("%d bytes, max %d: got %d bytes and %v, want ErrTooLarge", len(tt.in), tt.max, len(data), err)
			}
			if !strings.Contains(err.Error(), "larger than the limit of") {
				t.Errorf("error %q does not give the limit", err)
			}
			// Reading stops one byte past the cap, whatever follows.
			if left := int64(r.Len()); left != int64(len(tt.in))-tt.max-1 {
				t.Errorf("%d bytes, max %d: %d left unread", len(tt.in), tt.max, left)
			}
			continue
		}
		if err != nil || string(data) != tt.in {
			t.Errorf("%d bytes, max %d: got %d bytes and %v", len(tt.in), tt.max, len(data), err)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, bytes.Repeat([]byte("y"), 10), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(name, 10); err != nil || len(data) != 10 {
		t.Errorf("ReadFile at the cap: %d bytes, %v", len(data), err)
	}
	if _, err := ReadFile(name, 9); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over the cap: %v, want ErrTooLarge", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}
