package state

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEmpty(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "state"))
	l, err := s.Log()
	if err != nil || l.LogKey != "" || l.Checkpoint != "" {
		t.Errorf("Log() = %+v, %v", l, err)
	}
	o, err := s.Opened()
	if err != nil || o == nil || o.LogKey != "" || o.Entries == nil || len(o.Entries) != 0 {
		t.Errorf("Opened() = %v, %v", o, err)
	}
	c, err := s.Caseworkers()
	if err != nil || len(c) != 0 {
		t.Errorf("Caseworkers() = %v, %v", c, err)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Error("reading created the state directory")
	}
}

func TestRoundTrip(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "state"))
	want := &Log{Version: Version, LogKey: "log+12345678+key", Checkpoint: "log\n3\nroot\n\n— log sig\n"}
	if err := s.SaveLog(want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Log(); err != nil || *got != *want {
		t.Errorf("Log() = %+v, %v; want %+v", got, err, want)
	}
	opened := &Opened{LogKey: "log+12345678+key", Entries: map[string]OpenedLeaf{
		"0123456789abcdef0123456789abcdef": {Index: 7, LeafHash: "9KLK4fgXs3zNJrIDJ6ykoCbXJtkCg1smqFlL4s92dEg="},
		"1123456789abcdef0123456789abcdef": {Index: 8}, // from version 1
	}}
	if err := s.SaveOpened(opened); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Opened(); err != nil || got.LogKey != opened.LogKey || !maps.Equal(got.Entries, opened.Entries) {
		t.Errorf("Opened() = %+v, %v", got, err)
	}
	failedList := []Failed{
		{ID: "0123456789abcdef0123456789abcdef", Index: 7, LeafHash: "aGFzaA==", LogKey: "log+12345678+key", SHA256: "ab", Size: 9, BundleSize: 8, Failed: "2026-12-01T10:00:00Z", Reason: "no matching identity"},
		{ID: "1123456789abcdef0123456789abcdef", Index: 2, LeafHash: "aGFzaA==", Waiver: &Waiver{By: "Lee", Reason: "damaged", At: "2026-12-02T10:00:00Z", Tool: "t"}},
	}
	if err := s.SaveFailed(failedList); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Failed(); err != nil || len(got) != 2 || got[0] != failedList[0] || *got[1].Waiver != *failedList[1].Waiver {
		t.Errorf("Failed() = %+v, %v", got, err)
	}
	cw := []Caseworker{{Name: "Kim", Key: "tdk1x", Added: "2026-11-27"}, {Name: "Park", Key: "tdk1y", Added: "2026-11-28"}}
	if err := s.SaveCaseworkers(cw); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Caseworkers(); err != nil || !slices.Equal(got, cw) {
		t.Errorf("Caseworkers() = %v, %v", got, err)
	}
	if fi, err := os.Stat(s.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v", fi.Mode(), err)
	}
	for _, name := range []string{LogFile, OpenedFile, FailedFile, CaseworkersFile} {
		if fi, err := os.Stat(s.Path(name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", name, fi.Mode(), err)
		}
	}
}

// TestCorrupt refuses state files that are not exactly what SaveX writes,
// rather than reading them as empty, which would silently drop a pinned key
// or a verified checkpoint.
func TestCorrupt(t *testing.T) {
	for _, tc := range []struct{ file, content string }{
		{LogFile, `{"version":1,"log_key":"k","checkpoint":"","extra":1}`},
		{LogFile, `{"version":2,"log_key":"k","checkpoint":""}`},
		{LogFile, `{"log_key":"k","checkpoint":""}`},
		{LogFile, `{"version":1,"log_key":"k","checkpoint":""} {}`},
		{LogFile, `{"version":1,"log_key":"","checkpoint":"cp"}`},
		{LogFile, `not json`},
		{LogFile, ``},
		{OpenedFile, `{"version":1,"opened":{"short":1}}`},
		{OpenedFile, `{"version":1,"opened":{"0123456789abcdef0123456789abcdef":-1}}`},
		{OpenedFile, `{"version":3,"log_key":"k","opened":{}}`},
		{OpenedFile, `{"version":1,"log_key":"k","opened":{}}`},
		{OpenedFile, `{"version":2,"opened":{"0123456789abcdef0123456789abcdef":7}}`},
		{OpenedFile, `{"version":2,"log_key":"","opened":{"0123456789abcdef0123456789abcdef":{"index":7,"leaf_hash":""}}}`},
		{OpenedFile, `{"version":2,"log_key":"k","opened":{"0123456789abcdef0123456789abcdef":{"index":7,"leaf_hash":"aGFzaA=="}}}`},
		{OpenedFile, `{"version":2,"log_key":"k","opened":{"0123456789abcdef0123456789abcdef":{"index":-1,"leaf_hash":""}}}`},
		{CaseworkersFile, `{"version":1,"caseworkers":[{"name":"a","key":"b","added":"c","x":1}]}`},
		{FailedFile, `{"version":3,"failed":[]}`},
		{FailedFile, `{"version":1,"failed":[{"id":"0123456789abcdef0123456789abcdef","index":1,"leaf_hash":"h","log_key":"k","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""}]}`},
		{FailedFile, `{"version":1,"failed":[{"id":"short","index":1,"leaf_hash":"h","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""}]}`},
		{FailedFile, `{"version":1,"failed":[{"id":"0123456789abcdef0123456789abcdef","index":-1,"leaf_hash":"h","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""}]}`},
		{FailedFile, `{"version":1,"failed":[{"id":"0123456789abcdef0123456789abcdef","index":1,"leaf_hash":"","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""}]}`},
		{FailedFile, `{"version":1,"failed":[{"id":"0123456789abcdef0123456789abcdef","index":1,"leaf_hash":"h","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""},{"id":"0123456789abcdef0123456789abcdef","index":2,"leaf_hash":"h","sha256":"","size":0,"bundle_size":0,"failed":"","reason":""}]}`},
	} {
		s := New(t.TempDir())
		if err := os.WriteFile(s.Path(tc.file), []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		switch tc.file {
		case LogFile:
			_, err = s.Log()
		case OpenedFile:
			_, err = s.Opened()
		case CaseworkersFile:
			_, err = s.Caseworkers()
		case FailedFile:
			_, err = s.Failed()
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s %q: got %v, want ErrCorrupt", tc.file, tc.content, err)
		}
	}
}

// TestVersion1 reads the opened.json and failed.json of version 1, which
// tied no entry to a log key or (opened.json) a leaf hash: those stay
// empty, for the callers to treat as unknown.
func TestVersion1(t *testing.T) {
	s := New(t.TempDir())
	const id = "0123456789abcdef0123456789abcdef"
	for name, content := range map[string]string{
		OpenedFile: `{"version":1,"opened":{"` + id + `":7}}`,
		FailedFile: `{"version":1,"failed":[{"id":"` + id + `","index":7,"leaf_hash":"aGFzaA==","sha256":"ab","size":9,"bundle_size":8,"failed":"2026-12-01T10:00:00Z","reason":"r"}]}`,
	} {
		if err := os.WriteFile(s.Path(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o, err := s.Opened()
	if err != nil || o.LogKey != "" || len(o.Entries) != 1 || o.Entries[id] != (OpenedLeaf{Index: 7}) {
		t.Errorf("Opened() = %+v, %v", o, err)
	}
	f, err := s.Failed()
	if err != nil || len(f) != 1 || f[0].LogKey != "" || f[0].LeafHash != "aGFzaA==" || f[0].Index != 7 {
		t.Errorf("Failed() = %+v, %v", f, err)
	}
	// Written back as version 2; an opened entry without a log key is not.
	if err := s.SaveOpened(o); err == nil {
		t.Error("SaveOpened saved entries without a log key")
	}
	o.LogKey = "log+12345678+key"
	if err := s.SaveOpened(o); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFailed(f); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{OpenedFile, FailedFile} {
		if data, err := os.ReadFile(s.Path(name)); err != nil || !strings.Contains(string(data), `"version": 2,`) {
			t.Errorf("%s: %s, %v", name, data, err)
		}
	}
	if got, err := s.Opened(); err != nil || got.LogKey != o.LogKey || got.Entries[id] != (OpenedLeaf{Index: 7}) {
		t.Errorf("Opened() after saving = %+v, %v", got, err)
	}
}

func TestDir(t *testing.T) {
	t.Setenv(EnvHome, "/somewhere/else")
	if d, err := Dir(); err != nil || d != "/somewhere/else" {
		t.Errorf("Dir() = %q, %v", d, err)
	}
	t.Setenv(EnvHome, "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("HOME", "/home/reviewer")
	if d, err := Dir(); err != nil || filepath.Base(d) != "testimony-review" {
		t.Errorf("Dir() = %q, %v", d, err)
	}
}
