package devicekey

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCreateLoad(t *testing.T) {
	name := filepath.Join(t.TempDir(), FileName)
	if _, err := Load(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	priv, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := Load(name)
	if err != nil || !bytes.Equal(got, priv) {
		t.Fatalf("Load = %x, %v; want the created key", got, err)
	}
	data, _ := os.ReadFile(name)
	if !strings.HasPrefix(string(data), "testimony-device-key-v1\n") || len(data) != fileSize {
		t.Errorf("key file content %q", data)
	}
	if _, err := Create(name); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want fs.ErrExist (never overwrite a key)", err)
	}
	again, created, err := LoadOrCreate(name)
	if err != nil || created || !bytes.Equal(again, priv) {
		t.Errorf("LoadOrCreate of an existing key = %v, %v", created, err)
	}
}

func TestLoadOrCreateNew(t *testing.T) {
	name := filepath.Join(t.TempDir(), FileName)
	priv, created, err := LoadOrCreate(name)
	if err != nil || !created || len(priv) == 0 {
		t.Fatalf("LoadOrCreate = %v, %v", created, err)
	}
}

func TestLoadExposed(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	name := filepath.Join(t.TempDir(), FileName)
	priv, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(name, 0o644)
	got, err := Load(name)
	if !errors.Is(err, ErrExposed) || !bytes.Equal(got, priv) {
		t.Errorf("Load of a readable key = %v; want the key and ErrExposed", err)
	}
}

func TestParseRejects(t *testing.T) {
	good := []byte("testimony-device-key-v1\n" + strings.Repeat("A", 43) + "=\n")
	if _, err := Parse(good); err != nil {
		t.Fatalf("Parse of a good key: %v", err)
	}
	for name, data := range map[string][]byte{
		"empty":         nil,
		"other header":  bytes.Replace(good, []byte("v1"), []byte("v2"), 1),
		"no newline":    good[:len(good)-1],
		"crlf":          bytes.Replace(good, []byte("=\n"), []byte("\r\n"), 1),
		"url base64":    bytes.Replace(good, []byte("AAAA"), []byte("__AA"), 1),
		"non canonical": bytes.Replace(good, []byte("A=\n"), []byte("B=\n"), 1),
		"trailing":      append(bytes.Clone(good), '\n'),
		"age identity":  []byte("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"),
	} {
		if _, err := Parse(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("testimony-device-key-v1\n" + strings.Repeat("A", 43) + "=\n"))
	f.Add([]byte("testimony-device-key-v1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		priv, err := Parse(data)
		if err != nil {
			return
		}
		// Exactly one encoding per key.
		if !bytes.Equal(data[len(header):len(header)+44], []byte(encodeSeed(priv.Seed()))) {
			t.Fatalf("accepted a non-canonical key file %q", data)
		}
	})
}
