package keyfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

var created = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		x25519   bool
		prefix   string
		secretPf string
	}{
		{"hybrid", false, "age1pq1", "AGE-SECRET-KEY-PQ-1"},
		{"x25519", true, "age1", "AGE-SECRET-KEY-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			contents, recipient, err := New(tc.x25519, created)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(recipient, tc.prefix) || strings.ContainsAny(recipient, " \n") {
				t.Fatalf("recipient %q: want one word starting with %q", recipient, tc.prefix)
			}
			lines := strings.Split(strings.TrimSuffix(string(contents), "\n"), "\n")
			if len(lines) != 3 {
				t.Fatalf("got %d lines, want 3:\n%s", len(lines), contents)
			}
			if lines[0] != "# created: 2026-11-27T10:00:00Z" {
				t.Errorf("line 1 = %q", lines[0])
			}
			if lines[1] != "# public key: "+recipient {
				t.Errorf("line 2 = %q", lines[1])
			}
			if !strings.HasPrefix(lines[2], tc.secretPf) {
				t.Errorf("line 3 does not start with %q", tc.secretPf)
			}
			ids, err := Parse(contents, noPassphrase(t))
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, recipient, ids)
		})
	}
}

// roundTrip checks that ids decrypt a message encrypted to recipient.
func roundTrip(t *testing.T, recipient string, ids []age.Identity) {
	t.Helper()
	rs, err := age.ParseRecipients(strings.NewReader(recipient))
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, rs...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("testimony"))
	w.Close()
	r, err := age.Decrypt(&ct, ids...)
	if err != nil {
		t.Fatalf("identity does not decrypt for its recipient: %v", err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil || got.String() != "testimony" {
		t.Fatalf("decrypted %q, %v", got.String(), err)
	}
}

func noPassphrase(t *testing.T) func() (string, error) {
	return func() (string, error) {
		t.Error("passphrase requested for a plain identity file")
		return "", errors.New("unexpected")
	}
}

func fixed(p string, calls *int) func() (string, error) {
	return func() (string, error) { *calls++; return p, nil }
}

func TestProtect(t *testing.T) {
	contents, recipient, err := New(false, created)
	if err != nil {
		t.Fatal(err)
	}
	prot, err := Protect(contents, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(prot, []byte(armor.Header+"\n")) {
		t.Fatalf("protected file is not armored:\n%s", prot)
	}
	if bytes.Contains(prot, []byte("AGE-SECRET-KEY")) || bytes.Contains(prot, []byte(recipient)) {
		t.Fatal("protected file leaks the key")
	}
	if !IsProtected(prot) {
		t.Fatal("IsProtected = false for a protected file")
	}

	var calls int
	ids, err := Parse(prot, fixed("correct horse", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("passphrase asked %d times, want 1", calls)
	}
	roundTrip(t, recipient, ids)

	// Leading blank lines, as left by an editor or a copy from paper.
	if _, err := Parse(append([]byte("\n\n"), prot...), fixed("correct horse", &calls)); err != nil {
		t.Errorf("leading whitespace: %v", err)
	}

	if _, err := Parse(prot, fixed("wrong", &calls)); !errors.Is(err, ErrIncorrectPassphrase) {
		t.Errorf("wrong passphrase: got %v, want ErrIncorrectPassphrase", err)
	}
	if _, err := Parse(prot, fixed("", &calls)); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: got %v, want ErrEmptyPassphrase", err)
	}
	if _, err := Protect(contents, ""); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("Protect with empty passphrase: got %v", err)
	}
}

// TestUnprotect checks the round trip of a key file that is not an age
// identity, as the organisation key is.
func TestUnprotect(t *testing.T) {
	const orgKey = "# verifier key: testimony-org+1a2b3c4d+AbC\nPRIVATE+KEY+testimony-org+1a2b3c4d+AXyZ\n"
	prot, err := Protect([]byte(orgKey), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(prot, []byte("PRIVATE+KEY")) || bytes.Contains(prot, []byte("testimony-org")) {
		t.Fatal("protected file leaks the key")
	}
	var calls int
	plain, err := Unprotect(prot, fixed("correct horse", &calls))
	if err != nil || string(plain) != orgKey || calls != 1 {
		t.Fatalf("Unprotect = %q, %v after %d passphrases; want the original after 1", plain, err, calls)
	}
	if _, err := Unprotect(prot, fixed("wrong", &calls)); !errors.Is(err, ErrIncorrectPassphrase) {
		t.Errorf("wrong passphrase: got %v, want ErrIncorrectPassphrase", err)
	}
	if _, err := Unprotect([]byte(orgKey), noPassphrase(t)); err == nil {
		t.Error("Unprotect accepted a plain file")
	}
	failing := errors.New("no terminal")
	if _, err := Unprotect(prot, func() (string, error) { return "", failing }); !errors.Is(err, failing) {
		t.Errorf("failing passphrase source: got %v, want it wrapped", err)
	}
}

func TestParseRecipientEncrypted(t *testing.T) {
	// An identity file encrypted to another key (not a passphrase) must be
	// refused before any passphrase is asked for.
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	w, _ := age.Encrypt(&ct, k.Recipient())
	w.Write([]byte(k.String() + "\n"))
	w.Close()
	if _, err := Parse(ct.Bytes(), noPassphrase(t)); !errors.Is(err, ErrNotPassphraseProtected) {
		t.Fatalf("got %v, want ErrNotPassphraseProtected", err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, contents := range map[string]string{
		"empty":           "",
		"comments only":   "# created: now\n",
		"recipient":       "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
		"garbage":         "hello\n",
		"truncated armor": armor.Header + "\nYWdl\n",
		"not age":         "age-encryption.org/v2\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(contents), noPassphrase(t)); err == nil {
				t.Fatal("Parse succeeded")
			}
		})
	}
	if _, err := Parse(make([]byte, MaxFileSize+1), noPassphrase(t)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: got %v", err)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.txt")
	if err := Create(path, []byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := Create(path, []byte("other\n")); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: got %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "secret\n" {
		t.Errorf("existing file changed to %q", got)
	}

	// A dangling symlink must not be followed to create its target.
	link := filepath.Join(dir, "link.txt")
	target := filepath.Join(dir, "target.txt")
	if err := os.Symlink(target, link); err != nil {
		testenv.SkipOrFail(t, "symlinks not supported: %v", err)
	}
	if err := Create(link, []byte("secret\n")); !errors.Is(err, ErrExists) {
		t.Errorf("Create through symlink: got %v, want ErrExists", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink target was created")
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	contents, _, err := New(true, created)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(contents)
	f.Add([]byte(armor.Header + "\n" + armor.Footer + "\n"))
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n\n--- AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Parse must never panic or hang; scrypt work is capped by
		// maxScryptWorkFactor.
		Parse(data, func() (string, error) { return "x", nil })
	})
}
