package envelope

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func memSource(name string, size int64, data []byte) Source {
	return Source{Name: name, Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// TestBuildSources: files given as readers (the caseworker's app) make the
// same envelope Extract accepts, with Korean names kept.
func TestBuildSources(t *testing.T) {
	notes := []byte("the crossing was at night\n")
	rec := bytes.Repeat([]byte("x"), 70000)
	var buf bytes.Buffer
	m, err := BuildSources(&buf, Meta{Case: "NK-1"}, []Source{
		memSource("notes.txt", int64(len(notes)), notes),
		memSource("면담 녹음.m4a", int64(len(rec)), rec),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[1].Name != "면담 녹음.m4a" || m.Files[1].Size != 70000 {
		t.Fatalf("manifest files %+v", m.Files)
	}
	out := t.TempDir()
	res, err := Extract(&buf, out, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Case != "NK-1" {
		t.Errorf("case %q", res.Manifest.Case)
	}
}

// TestBuildSourcesSizeMismatch: a source that gives fewer or more bytes
// than it announced (a cut or padded browser upload) is refused.
func TestBuildSourcesSizeMismatch(t *testing.T) {
	for _, size := range []int64{9, 11} {
		_, err := BuildSources(io.Discard, Meta{}, []Source{memSource("a.bin", size, []byte("0123456789"))}, nil)
		if !errors.Is(err, ErrSizeMismatch) || !strings.Contains(err.Error(), "a.bin") {
			t.Errorf("size %d: err = %v, want ErrSizeMismatch naming the file", size, err)
		}
	}
}

// TestBuildSourcesChanged: a source whose second read differs from the
// first is refused, as a file that changed is.
func TestBuildSourcesChanged(t *testing.T) {
	n := 0
	src := Source{Name: "a.bin", Size: 4, Open: func() (io.ReadCloser, error) {
		n++
		if n == 1 {
			return io.NopCloser(strings.NewReader("aaaa")), nil
		}
		return io.NopCloser(strings.NewReader("bbbb")), nil
	}}
	if _, err := BuildSources(io.Discard, Meta{}, []Source{src}, nil); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("err = %v, want a changed file refused", err)
	}
}
