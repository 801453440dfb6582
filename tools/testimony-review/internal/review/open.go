package review

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
)

// Names inside an opened submission's directory besides the submitted files.
const (
	ManifestName = envelope.ManifestName
	ReceiptName  = "receipt.json"
)

// tmpPrefix starts the name of a submission's work directory inside the
// output directory. The leading dot keeps half-done work out of casual
// listings; the id lets a later run find and remove leftovers.
const tmpPrefix = ".tmp-"

var (
	// ErrReceiptKeyMismatch means the pinned receipt key differs from the
	// one in bundle.json: the bundle was made against another server, or
	// the server handed out a key of its own.
	ErrReceiptKeyMismatch = errors.New("receipt key in the bundle differs from the pinned key")
	// ErrReceiptMismatch means a receipt does not describe the submission
	// bundle.json lists under the same id.
	ErrReceiptMismatch = errors.New("receipt does not match the bundle entry")
	// ErrCiphertextMismatch means the ciphertext file's size or SHA-256
	// differs from the receipt: it was corrupted or replaced after the
	// server received it.
	ErrCiphertextMismatch = errors.New("ciphertext does not match its receipt")
	// ErrNoIdentity means none of the identities can decrypt the submission.
	ErrNoIdentity = errors.New("no identity matches the submission")
	// ErrOutputExists means OUTDIR/<id> exists but is not a directory this
	// program made (a file or a symbolic link), so it is neither replaced
	// nor treated as already open.
	ErrOutputExists = errors.New("output path exists and is not a directory")
	// ErrReservedName means the envelope holds a file named receipt.json,
	// which would be confused with, or hide, the server's receipt.
	ErrReservedName = errors.New("envelope holds a file named " + ReceiptName)
)

// Status is the outcome for one submission.
type Status int

const (
	// Opened means the submission was verified and written to OUTDIR/<id>.
	Opened Status = iota
	// AlreadyOpen means OUTDIR/<id> already existed and was left alone.
	AlreadyOpen
	// Failed means something did not verify; nothing was written for it.
	Failed
)

// Result describes what happened to one submission.
type Result struct {
	ID string
	// Case is the manifest's case reference as the sender wrote it
	// (untrusted text: sanitize before printing).
	Case string
	// Manifest reports whether the envelope had a manifest.json; a plain
	// `tar | age` submission has none.
	Manifest bool
	Files    int   // number of files extracted
	Size     int64 // total bytes of the files extracted
	Status   Status
	// Reason is a short account of the failure, for a table; Err has the
	// details and wraps the sentinel errors of this package and of
	// crypto/receipt and crypto/envelope.
	Reason string
	Err    error
}

// Options configures Open.
type Options struct {
	// Identities decrypt the submissions. At least one is required.
	Identities []age.Identity
	// ReceiptKey, if set, is the organisation's pinned receipt key, and
	// bundle.json's receipt_key must equal it. If nil, the bundle's key is
	// trusted as is.
	ReceiptKey ed25519.PublicKey
	// Limits bound what an envelope may hold.
	Limits envelope.Limits
	// Warnf, if set, receives notices that are not failures, such as the
	// removal of a leftover temporary directory.
	Warnf func(format string, args ...any)
}

// Open opens every submission of the bundle in bundleDir into outDir,
// creating outDir (0700) if needed. It returns one Result per submission,
// in bundle order, and an error only when the bundle as a whole cannot be
// used (unreadable bundle.json, receipt key mismatch, unusable outDir); a
// failed submission does not stop the others.
func Open(bundleDir, outDir string, opt Options) ([]Result, error) {
	if len(opt.Identities) == 0 {
		return nil, errors.New("failed to open bundle: no identities")
	}
	b, err := bundle.Read(bundleDir)
	if err != nil {
		return nil, err
	}
	key, err := receipt.ParseKey(b.ReceiptKey)
	if err != nil {
		return nil, fmt.Errorf("failed to read bundle receipt key: %w", err)
	}
	if opt.ReceiptKey != nil && !opt.ReceiptKey.Equal(key) {
		return nil, fmt.Errorf("%w: bundle has %s, pinned key is %s", ErrReceiptKeyMismatch, b.ReceiptKey, receipt.KeyString(opt.ReceiptKey))
	}
	root, err := os.OpenRoot(bundleDir)
	if err != nil {
		return nil, fmt.Errorf("failed to open bundle directory: %w", err)
	}
	defer root.Close()
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create output directory: %w", err)
	}
	if fi, err := os.Stat(outDir); err != nil {
		return nil, fmt.Errorf("failed to use output directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("failed to use output directory: %s is not a directory", outDir)
	}
	o := &opener{bundle: root, outDir: outDir, key: key, opt: opt}
	results := make([]Result, 0, len(b.Submissions))
	for _, e := range b.Submissions {
		results = append(results, o.open(e))
	}
	return results, nil
}

type opener struct {
	bundle *os.Root
	outDir string
	key    ed25519.PublicKey
	opt    Options
}

func (o *opener) warnf(format string, args ...any) {
	if o.opt.Warnf != nil {
		o.opt.Warnf(format, args...)
	}
}

// failure builds the Result of a submission that did not open.
func failure(id, reason string, err error) Result {
	return Result{ID: id, Status: Failed, Reason: reason, Err: fmt.Errorf("submission %s: %w", id, err)}
}

func (o *opener) open(e bundle.Entry) Result {
	dst := filepath.Join(o.outDir, e.ID)
	switch fi, err := os.Lstat(dst); {
	case err == nil && fi.IsDir():
		return Result{ID: e.ID, Status: AlreadyOpen}
	case err == nil:
		// Never follow or replace a link or file planted where the
		// submission's directory belongs.
		return failure(e.ID, "output path is not a directory",
			fmt.Errorf("%w: %s is a %v", ErrOutputExists, dst, describeMode(fi.Mode())))
	case !errors.Is(err, fs.ErrNotExist):
		return failure(e.ID, "cannot check output path", err)
	}
	o.removeLeftovers(e.ID)

	rcptData, res := o.verifyReceipt(e)
	if res != nil {
		return *res
	}

	f, res := o.openCiphertext(e)
	if res != nil {
		return *res
	}
	defer f.Close()

	tmp, err := os.MkdirTemp(o.outDir, tmpPrefix+e.ID+"-")
	if err != nil {
		return failure(e.ID, "cannot create work directory", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	// One pass over the ciphertext feeds both the hash and the decryption,
	// so the bytes hashed are the bytes decrypted even if the file changes
	// underneath (a flaky USB stick), and a 16 GiB file is read once.
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(f, h)}
	ext, extractErr := decryptExtract(cr, tmp, o.opt)
	// Read whatever decryption left unread (all of it, when the identity did
	// not match) so the hash covers the whole file. A mismatch explains a
	// decryption failure better than the failure itself does.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return failure(e.ID, "cannot read ciphertext", fmt.Errorf("failed to read %s: %w", e.File, err))
	}
	if res := checkDigest(e, cr.n, h); res != nil {
		return *res
	}
	if extractErr != nil {
		return extractFailure(e.ID, extractErr)
	}

	if err := o.finish(tmp, rcptData); err != nil {
		if errors.Is(err, ErrReservedName) {
			return failure(e.ID, "envelope holds a file named "+ReceiptName, err)
		}
		return failure(e.ID, "cannot write output", err)
	}
	// Re-checked right before the rename: rename(2) silently replaces an
	// empty directory, and something may have appeared since the first check.
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return failure(e.ID, "output path appeared while opening",
			fmt.Errorf("%w: %s was created by something else during the open", ErrOutputExists, dst))
	}
	if err := os.Rename(tmp, dst); err != nil {
		return failure(e.ID, "cannot move into place", err)
	}
	done = true
	r := Result{ID: e.ID, Status: Opened, Files: len(ext.Files), Manifest: ext.Manifest != nil}
	if ext.Manifest != nil {
		r.Case = ext.Manifest.Case
	}
	for _, file := range ext.Files {
		r.Size += file.Size
	}
	return r
}

// verifyReceipt reads, parses and verifies the receipt, and checks that it
// describes the same ciphertext as the bundle entry. It returns the receipt
// bytes, to be stored beside the files exactly as the server signed them.
func (o *opener) verifyReceipt(e bundle.Entry) ([]byte, *Result) {
	data, err := readSmall(o.bundle, e.Receipt, receipt.MaxSize)
	if err != nil {
		r := failure(e.ID, "cannot read receipt", err)
		return nil, &r
	}
	rc, err := receipt.Parse(data)
	if err != nil {
		r := failure(e.ID, "malformed receipt", err)
		return nil, &r
	}
	if err := rc.Verify(o.key); err != nil {
		reason := "bad receipt"
		switch {
		case errors.Is(err, receipt.ErrBadSignature):
			reason = "bad receipt signature"
		case errors.Is(err, receipt.ErrWrongKey):
			reason = "receipt signed by another key"
		}
		r := failure(e.ID, reason, err)
		return nil, &r
	}
	var diffs []string
	if rc.ID != e.ID {
		diffs = append(diffs, fmt.Sprintf("id %s", rc.ID))
	}
	if rc.Size != e.Size {
		diffs = append(diffs, fmt.Sprintf("size %d, bundle.json says %d", rc.Size, e.Size))
	}
	if rc.SHA256 != e.SHA256 {
		diffs = append(diffs, fmt.Sprintf("sha256 %s, bundle.json says %s", rc.SHA256, e.SHA256))
	}
	if len(diffs) > 0 {
		r := failure(e.ID, "receipt does not match bundle.json",
			fmt.Errorf("%w: receipt has %v", ErrReceiptMismatch, diffs))
		return nil, &r
	}
	return data, nil
}

// openCiphertext opens the ciphertext file, refusing anything but a regular
// file of the size the receipt names.
func (o *opener) openCiphertext(e bundle.Entry) (*os.File, *Result) {
	lfi, err := o.bundle.Lstat(e.File)
	if err != nil {
		r := failure(e.ID, "cannot read ciphertext", err)
		return nil, &r
	}
	if !lfi.Mode().IsRegular() {
		r := failure(e.ID, "ciphertext is not a regular file",
			fmt.Errorf("failed to read %s: it is a %v", e.File, describeMode(lfi.Mode())))
		return nil, &r
	}
	f, err := o.bundle.Open(e.File)
	if err != nil {
		r := failure(e.ID, "cannot read ciphertext", err)
		return nil, &r
	}
	fi, err := f.Stat()
	if err == nil && !os.SameFile(fi, lfi) {
		err = fmt.Errorf("%s changed while being opened", e.File)
	}
	if err != nil {
		f.Close()
		r := failure(e.ID, "cannot read ciphertext", err)
		return nil, &r
	}
	if fi.Size() != e.Size {
		f.Close()
		r := failure(e.ID, "ciphertext size mismatch",
			fmt.Errorf("%w: %s is %d bytes, the receipt says %d (truncated or replaced; copy the bundle again)", ErrCiphertextMismatch, e.File, fi.Size(), e.Size))
		return nil, &r
	}
	return f, nil
}

func checkDigest(e bundle.Entry, n int64, h hash.Hash) *Result {
	if n != e.Size {
		r := failure(e.ID, "ciphertext size mismatch",
			fmt.Errorf("%w: read %d bytes of %s, the receipt says %d (the file changed while being read)", ErrCiphertextMismatch, n, e.File, e.Size))
		return &r
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		r := failure(e.ID, "ciphertext sha256 mismatch",
			fmt.Errorf("%w: %s has sha256 %s, the receipt says %s (corrupted or replaced after the server received it)", ErrCiphertextMismatch, e.File, got, e.SHA256))
		return &r
	}
	return nil
}

func decryptExtract(r io.Reader, dir string, opt Options) (*envelope.Result, error) {
	plain, err := age.Decrypt(r, opt.Identities...)
	if e := new(age.NoIdentityMatchError); errors.As(err, &e) {
		return nil, fmt.Errorf("%w (it is encrypted to %s recipients)", ErrNoIdentity, stanzaTypes(e.StanzaTypes))
	}
	if err != nil {
		return nil, &decryptError{err}
	}
	return envelope.Extract(decryptReader{plain}, dir, opt.Limits)
}

// decryptError marks a failure of age (header or payload authentication)
// as opposed to one of the envelope inside it.
type decryptError struct{ err error }

func (e *decryptError) Error() string { return "failed to decrypt: " + e.err.Error() }
func (e *decryptError) Unwrap() error { return e.err }

// decryptReader marks the errors of age's payload reader, which reach us
// through envelope.Extract.
type decryptReader struct{ r io.Reader }

func (d decryptReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = &decryptError{err}
	}
	return n, err
}

func extractFailure(id string, err error) Result {
	switch {
	case errors.Is(err, ErrNoIdentity):
		return failure(id, "no matching identity", err)
	case isDecryptError(err):
		return failure(id, "decryption failed", err)
	default:
		return failure(id, "envelope refused", err)
	}
}

// isDecryptError tells age's failures apart from the envelope's, which only
// matters for the short reason: both are reported in full.
func isDecryptError(err error) bool {
	var de *decryptError
	return errors.As(err, &de)
}

// finish adds the server's receipt to the work directory; Extract already
// wrote manifest.json, if there was one.
func (o *opener) finish(dir string, rcpt []byte) error {
	if err := createFile(filepath.Join(dir, ReceiptName), rcpt); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrReservedName
		}
		return err
	}
	return nil
}

// createFile writes a new file; O_EXCL also refuses to follow a symlink.
func createFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("failed to write %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// removeLeftovers deletes work directories of id that a crash or a kill
// left behind; they may hold plaintext that never verified.
func (o *opener) removeLeftovers(id string) {
	matches, _ := filepath.Glob(filepath.Join(o.outDir, tmpPrefix+id+"-*"))
	for _, m := range matches {
		if err := os.RemoveAll(m); err != nil {
			o.warnf("failed to remove leftover work directory %s: %v", m, err)
			continue
		}
		o.warnf("removed leftover work directory %s from an interrupted open", m)
	}
}

// readSmall reads a file from root that must be regular and at most max
// bytes.
func readSmall(root *os.Root, name string, max int64) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("failed to read %s: it is a %v", name, describeMode(fi.Mode()))
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("failed to read %s: larger than %d bytes", name, max)
	}
	return data, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	default:
		return "special file"
	}
}

func stanzaTypes(types []string) string {
	seen := map[string]bool{}
	var b bytes.Buffer
	for _, t := range types {
		if seen[t] {
			continue
		}
		seen[t] = true
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t)
	}
	if b.Len() == 0 {
		return "no"
	}
	return b.String()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
