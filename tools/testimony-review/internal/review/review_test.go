package review

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

func id(n int) string { return fmt.Sprintf("%032x", n) }

type env struct {
	t      *testing.T
	bundle string
	out    string
	id     *age.X25519Identity
	warns  []string
}

func newEnv(t *testing.T) *env {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &env{t: t, bundle: filepath.Join(dir, "bundle"), out: filepath.Join(dir, "out"), id: k}
}

// add puts a submission with the given files into the bundle.
func (e *env) add(n int, d fixture.Damage, files map[string]string) {
	e.t.Helper()
	src := e.t.TempDir()
	var paths []string
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			e.t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	pt := fixture.Envelope(envelope.Meta{Case: "NK-" + fmt.Sprint(n)}, paths...)
	if err := fixture.Add(e.bundle, id(n), []age.Recipient{e.id.Recipient()}, pt, d); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) options() Options {
	return Options{
		Identities: []age.Identity{e.id},
		Limits:     envelope.DefaultLimits,
		Warnf:      func(f string, a ...any) { e.warns = append(e.warns, fmt.Sprintf(f, a...)) },
	}
}

func (e *env) open(opt Options) []Result {
	e.t.Helper()
	res, err := Open(e.bundle, e.out, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// ls lists a directory, hidden entries included.
func ls(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpen(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha", "b.txt": "bravo!"})
	opt := e.options()
	opt.ReceiptKey = fixture.SigningKey().Public().(ed25519.PublicKey)
	res := e.open(opt)
	if len(res) != 1 {
		t.Fatalf("got %d results", len(res))
	}
	r := res[0]
	if r.Status != Opened || r.Err != nil || r.Case != "NK-1" || !r.Manifest || r.Files != 2 || r.Size != 11 {
		t.Fatalf("result %+v", r)
	}
	dst := filepath.Join(e.out, id(1))
	if got, want := ls(t, dst), []string{"a.txt", "b.txt", "manifest.json", "receipt.json"}; !slices.Equal(got, want) {
		t.Errorf("opened directory holds %v, want %v", got, want)
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(1)}) {
		t.Errorf("output directory holds %v", got)
	}
	for _, p := range []string{e.out, dst} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", p, fi.Mode().Perm(), err)
		}
	}
	rc, _ := os.ReadFile(filepath.Join(dst, ReceiptName))
	orig, _ := os.ReadFile(filepath.Join(e.bundle, bundle.ReceiptName(id(1))))
	if !bytes.Equal(rc, orig) {
		t.Error("receipt.json differs from the bundle's receipt")
	}
	m, err := os.ReadFile(filepath.Join(dst, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.ParseManifest(m); err != nil {
		t.Errorf("manifest.json does not parse: %v", err)
	}

	again := e.open(e.options())
	if again[0].Status != AlreadyOpen {
		t.Errorf("second open: %+v", again[0])
	}
}

func TestOpenFailures(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{Corrupt: true}, map[string]string{"a.txt": "alpha"})
	e.add(2, fixture.Damage{BadSignature: true}, map[string]string{"a.txt": "alpha"})
	e.add(3, fixture.Damage{Signer: fixture.OtherKey()}, map[string]string{"a.txt": "alpha"})
	e.add(4, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	res := e.open(e.options())
	for i, want := range []error{ErrCiphertextMismatch, receipt.ErrBadSignature, receipt.ErrWrongKey} {
		if res[i].Status != Failed || !errors.Is(res[i].Err, want) {
			t.Errorf("submission %d: got %+v, want failure wrapping %v", i+1, res[i], want)
		}
		if !strings.Contains(res[i].Err.Error(), id(i+1)) {
			t.Errorf("error %q does not name the submission", res[i].Err)
		}
	}
	if res[3].Status != Opened {
		t.Errorf("the intact submission did not open: %+v", res[3])
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(4)}) {
		t.Errorf("output directory holds %v, want only %s", got, id(4))
	}

	// The wrong identity fails with ErrNoIdentity, after the hash checked out.
	e2 := newEnv(t)
	e2.bundle = e.bundle
	opt := e2.options()
	res = e2.open(opt)
	if !errors.Is(res[3].Err, ErrNoIdentity) {
		t.Errorf("wrong identity: %+v", res[3])
	}
	if !errors.Is(res[0].Err, ErrCiphertextMismatch) {
		t.Errorf("corrupt ciphertext with the wrong identity should still report the hash: %+v", res[0])
	}
}

func TestOpenDecryptFailure(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{Truncate: true}, map[string]string{"a.txt": "alpha"})
	res := e.open(e.options())
	if res[0].Status != Failed || res[0].Reason != "decryption failed" {
		t.Fatalf("got %+v, want a decryption failure", res[0])
	}
	if errors.Is(res[0].Err, ErrCiphertextMismatch) {
		t.Errorf("a ciphertext matching its receipt reported as mismatched: %v", res[0].Err)
	}
	if got := ls(t, e.out); len(got) != 0 {
		t.Errorf("output directory holds %v", got)
	}
}

func TestOpenCiphertextFile(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, path string){
		"truncated": func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		},
		"symlink": func(t *testing.T, path string) {
			if err := os.Rename(path, path+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(path)+".real", path); err != nil {
				t.Skip(err)
			}
		},
		"missing": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
			damage(t, filepath.Join(e.bundle, bundle.CiphertextName(id(1))))
			res := e.open(e.options())
			if res[0].Status != Failed {
				t.Fatalf("opened a %s ciphertext", name)
			}
			if got := ls(t, e.out); len(got) != 0 {
				t.Errorf("output directory holds %v", got)
			}
		})
	}
}

func TestOpenReceiptMismatch(t *testing.T) {
	// bundle.json and the (valid) receipt disagree about the ciphertext.
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	b, err := bundle.Read(e.bundle)
	if err != nil {
		t.Fatal(err)
	}
	b.Submissions[0].SHA256 = strings.Repeat("0", 64)
	if err := b.Write(e.bundle); err != nil {
		t.Fatal(err)
	}
	res := e.open(e.options())
	if !errors.Is(res[0].Err, ErrReceiptMismatch) {
		t.Fatalf("got %+v, want ErrReceiptMismatch", res[0])
	}
}

func TestOpenReceiptKeyMismatch(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	opt := e.options()
	opt.ReceiptKey = fixture.OtherKey().Public().(ed25519.PublicKey)
	if _, err := Open(e.bundle, e.out, opt); !errors.Is(err, ErrReceiptKeyMismatch) {
		t.Fatalf("got %v, want ErrReceiptKeyMismatch", err)
	}
	if _, err := os.Stat(e.out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created despite the key mismatch")
	}
}

func TestOpenOutputPathTaken(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	if err := os.MkdirAll(e.out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.out, id(1)), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := e.open(e.options())
	if !errors.Is(res[0].Err, ErrOutputExists) {
		t.Fatalf("got %+v, want ErrOutputExists", res[0])
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	left := filepath.Join(e.out, tmpPrefix+id(1)+"-123456")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "half.txt"), []byte("plaintext"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := e.open(e.options())
	if res[0].Status != Opened {
		t.Fatalf("got %+v", res[0])
	}
	if got := ls(t, e.out); !slices.Equal(got, []string{id(1)}) {
		t.Errorf("output directory holds %v", got)
	}
	if len(e.warns) != 1 || !strings.Contains(e.warns[0], "leftover") {
		t.Errorf("warnings %q", e.warns)
	}
}

func TestOpenNoIdentities(t *testing.T) {
	e := newEnv(t)
	e.add(1, fixture.Damage{}, map[string]string{"a.txt": "alpha"})
	opt := e.options()
	opt.Identities = nil
	if _, err := Open(e.bundle, e.out, opt); err == nil {
		t.Fatal("Open without identities succeeded")
	}
}
