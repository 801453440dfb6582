// Package keyfile owns the reviewer's secret key files: the age identity
// files and the organisation's signing key. It generates new identities in
// the age-keygen file format, protects any key file with a passphrase,
// writes key files without ever replacing an existing one, and reads them
// back whether they are plain or passphrase-protected.
//
// The identity file is the one secret that can decrypt every testimony
// addressed to the reviewer, and the organisation key decides whom
// caseworkers encrypt to, so every function here errs on the side of
// refusing: an existing file is never overwritten, a passphrase-protected file
// must contain exactly one scrypt stanza, and input sizes are capped.
package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/testimony-ngo/testimony/internal/bounded"
)

// MaxFileSize caps how much of an identity file is read. A hybrid identity
// line is under 100 bytes; a generous cap still stops a mistaken -i pointing
// at a bundle or a disk image from being read into memory.
const MaxFileSize = 1 << 20

// ScryptWorkFactor is the log2 scrypt cost used to protect new identity
// files. 2^18 is age's own default (about a second on a laptop), and the
// passphrase is typed rarely, on one machine.
const ScryptWorkFactor = 18

// maxScryptWorkFactor bounds the work (and memory: 128 B × 8 × 2^logN) an
// identity file can demand when it is opened, so a tampered file cannot stall
// the reviewer's machine. It leaves headroom over ScryptWorkFactor and over
// `age -p`, which also uses 2^18.
const maxScryptWorkFactor = 20

var (
	// ErrExists is returned by Create when the file already exists.
	ErrExists = errors.New("file already exists")
	// ErrIncorrectPassphrase is returned by Parse and Unprotect when the
	// passphrase does not decrypt a passphrase-protected key file.
	ErrIncorrectPassphrase = errors.New("incorrect passphrase")
	// ErrNotPassphraseProtected is returned by Parse and Unprotect for an
	// age-encrypted key file that is encrypted to recipients instead of a
	// passphrase.
	ErrNotPassphraseProtected = errors.New("file is age-encrypted but not with a passphrase")
	// ErrTooLarge is returned by Read, Parse and Unprotect when the file
	// exceeds MaxFileSize.
	ErrTooLarge = errors.New("key file is too large")
	// ErrEmptyPassphrase is returned when a passphrase is empty.
	ErrEmptyPassphrase = errors.New("passphrase is empty")
)

// New generates an identity and returns the contents of its identity file
// (the age-keygen format: "# created", "# public key", then the secret key)
// and the recipient string that encrypts to it. The default is a hybrid
// post-quantum identity; x25519 selects a classic one for deployments that
// must stay readable by older age tools.
func New(x25519 bool, created time.Time) (contents []byte, recipient string, err error) {
	var secret string
	if x25519 {
		k, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, "", fmt.Errorf("failed to generate X25519 identity: %w", err)
		}
		secret, recipient = k.String(), k.Recipient().String()
	} else {
		k, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, "", fmt.Errorf("failed to generate hybrid identity: %w", err)
		}
		secret, recipient = k.String(), k.Recipient().String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# created: %s\n", created.Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", recipient)
	fmt.Fprintf(&b, "%s\n", secret)
	return b.Bytes(), recipient, nil
}

// Protect encrypts key file contents (an identity file or the organisation
// key) to a passphrase (age scrypt) and armors the result, so the protected
// file is still text that survives being pasted or printed for a paper
// backup.
func Protect(contents []byte, passphrase string) ([]byte, error) {
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("failed to set up passphrase encryption: %w", err)
	}
	r.SetWorkFactor(ScryptWorkFactor)
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt identity: %w", err)
	}
	if _, err := w.Write(contents); err != nil {
		return nil, fmt.Errorf("failed to encrypt identity: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("failed to encrypt identity: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("failed to armor identity: %w", err)
	}
	return out.Bytes(), nil
}

// Create writes data to a new file at path with mode 0600. It fails with
// ErrExists rather than replacing anything: overwriting an identity file
// destroys the only key to every testimony sent to it. The data is synced
// before Create returns; on failure the partial file is removed.
func Create(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("failed to create %s: %w", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", path, err)
	}
	return nil
}

// Read reads an identity file of at most MaxFileSize bytes.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open identity file: %w", err)
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, MaxFileSize)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read identity file: %w", err)
	}
	return data, nil
}

// IsProtected reports whether identity file contents are age-encrypted,
// armored or binary, rather than plain identity lines. Leading whitespace is
// tolerated before the armor header, as age itself does.
func IsProtected(contents []byte) bool {
	return bytes.HasPrefix(contents, []byte("age-encryption.org/")) ||
		bytes.HasPrefix(bytes.TrimSpace(contents), []byte(armor.Header))
}

// Parse returns the identities in identity file contents. For a protected
// file it calls passphrase once, decrypts, and parses the result; passphrase
// is not called for a plain file.
func Parse(contents []byte, passphrase func() (string, error)) ([]age.Identity, error) {
	if len(contents) > MaxFileSize {
		return nil, ErrTooLarge
	}
	if !IsProtected(contents) {
		ids, err := age.ParseIdentities(bytes.NewReader(contents))
		if err != nil {
			return nil, fmt.Errorf("failed to parse identity file: %w", err)
		}
		return ids, nil
	}
	plain, err := Unprotect(contents, passphrase)
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("failed to parse decrypted identity file: %w", err)
	}
	return ids, nil
}

// Unprotect decrypts the contents of a key file made by Protect (armored or
// binary age, exactly one scrypt stanza). It calls passphrase once, only
// after the header proved to be passphrase-protected, and returns
// ErrIncorrectPassphrase when the passphrase does not decrypt it.
func Unprotect(contents []byte, passphrase func() (string, error)) ([]byte, error) {
	if len(contents) > MaxFileSize {
		return nil, ErrTooLarge
	}
	raw := contents
	if !bytes.HasPrefix(contents, []byte("age-encryption.org/")) {
		r := armor.NewReader(bytes.NewReader(bytes.TrimSpace(contents)))
		var err error
		if raw, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("failed to read armored key file: %w", err)
		}
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("failed to read encrypted key file: %w", err)
	}
	if _, err := age.DecryptHeader(hdr, stanzaCheck{}); !errors.Is(err, errScryptOnly) {
		return nil, ErrNotPassphraseProtected
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("failed to read passphrase: %w", err)
	}
	if pass == "" {
		return nil, ErrEmptyPassphrase
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("failed to set up passphrase decryption: %w", err)
	}
	id.SetMaxWorkFactor(maxScryptWorkFactor)
	r, err := age.Decrypt(bytes.NewReader(raw), id)
	if e := new(age.NoIdentityMatchError); errors.As(err, &e) {
		return nil, ErrIncorrectPassphrase
	}
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt key file: %w", err)
	}
	plain, err := bounded.ReadAll(r, MaxFileSize)
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt key file: %w", err)
	}
	return plain, nil
}

// errScryptOnly is how stanzaCheck signals that the header is exactly one
// scrypt stanza; any other outcome means the file is not passphrase-protected.
var errScryptOnly = errors.New("header is a single scrypt stanza")

// stanzaCheck is an age.Identity that inspects a header without unwrapping
// anything, so the passphrase is only asked for when it can be used.
type stanzaCheck struct{}

func (stanzaCheck) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) == 1 && stanzas[0].Type == "scrypt" {
		return nil, errScryptOnly
	}
	return nil, age.ErrIncorrectIdentity
}
