package review

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/bounded"
)

// Names inside an opened submission's directory besides the submitted files.
const (
	ManifestName    = envelope.ManifestName
	CustodyJSONName = "custody.json"
	CustodyTextName = "custody.txt"
)

// tmpPrefix starts the name of a submission's work directory inside the
// output directory. The leading dot keeps half-done work out of casual
// listings; the id lets a later run find and remove leftovers.
const tmpPrefix = ".tmp-"

var (
	// ErrCiphertextMismatch means the ciphertext file changed between
	// Verify and the decryption (a flaky or meddled-with USB stick).
	ErrCiphertextMismatch = errors.New("ciphertext changed since the bundle was verified")
	// ErrDecrypt means age failed to decrypt or authenticate the
	// ciphertext with an identity that matched it.
	ErrDecrypt = errors.New("failed to decrypt")
	// ErrNoIdentity means none of the identities can decrypt the submission.
	ErrNoIdentity = errors.New("no identity matches the submission")
	// ErrOutputExists means OUTDIR/<id> exists but is not a directory this
	// program made (a file or a symbolic link), so it is neither replaced
	// nor treated as already open.
	ErrOutputExists = errors.New("output path exists and is not a directory")
	// ErrNotThisSubmission means OUTDIR/<id> is a directory, but not one
	// this machine opened from the submission's log leaf: its custody.json
	// is missing, unreadable, or records another leaf or another log. It
	// is neither replaced nor taken for the submission, which would then
	// never be opened.
	ErrNotThisSubmission = errors.New("output directory holds something other than this submission")
	// ErrReservedName means the envelope holds a file named like one of the
	// custody records, which it would be confused with, or hide.
	ErrReservedName = errors.New("envelope holds a file named " + CustodyJSONName + " or " + CustodyTextName)
)

// Status is the outcome for one submission.
type Status int

const (
	// Opened means the submission was verified and written to OUTDIR/<id>.
	Opened Status = iota
	// AlreadyOpen means OUTDIR/<id> already held this very submission:
	// its custody.json records this log, this leaf index and this leaf
	// hash. It was left alone.
	AlreadyOpen
	// Failed means something did not verify; nothing was written for it.
	Failed
)

// Result describes what happened to one submission.
type Result struct {
	ID    string
	Index int64 // log index
	// Case is the manifest's case reference as the sender wrote it
	// (untrusted text: sanitize before printing).
	Case string
	// Manifest reports whether the envelope had a manifest.json; a plain
	// `tar | age` submission has none.
	Manifest bool
	Files    int   // number of files extracted
	Size     int64 // total bytes of the files extracted
	// Signer is the caseworker signature over the manifest, for an opened
	// submission.
	Signer Signer
	Status Status
	// Reason is a short account of the failure, for a table; Err has the
	// details and wraps the sentinel errors of this package and of
	// crypto/envelope.
	Reason string
	Err    error
}

// Options configures Open.
type Options struct {
	// Identities decrypt the submissions. At least one is required.
	Identities []age.Identity
	// Limits bound what an envelope may hold.
	Limits envelope.Limits
	// Caseworkers maps the device keys ("tdk1…") of known caseworkers to
	// their names.
	Caseworkers map[string]string
	// Now is the time recorded as the opening time in custody records.
	Now time.Time
	// Tool names the program and its version in custody records.
	Tool string
	// Warnf, if set, receives notices that are not failures, such as the
	// removal of a leftover temporary directory.
	Warnf func(format string, args ...any)
	// Progress, if set, follows the reading of each ciphertext as it is
	// decrypted.
	Progress ProgressFunc
}

// Open decrypts every submission of a verified bundle into outDir, creating
// outDir (0700) if needed. It returns one Result per submission, in bundle
// order, and an error only when outDir cannot be used or, for a bundle
// verified with Witness.HashInOpen, when a ciphertext does not match its
// leaf (the *RefusedError Verify would have returned) or cannot be read; a
// failed submission does not stop the others.
//
// Every submission is extracted into its work directory before any is
// moved into place, so that a bundle refused by the hash of its last
// ciphertext leaves nothing in outDir (not even outDir, if Open made it).
func Open(v *Verified, outDir string, opt Options) ([]Result, error) {
	if len(opt.Identities) == 0 {
		return nil, errors.New("failed to open bundle: no identities")
	}
	root, err := os.OpenRoot(v.Dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open bundle directory: %w", err)
	}
	defer root.Close()
	_, err = os.Lstat(outDir)
	made := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create output directory: %w", err)
	}
	if fi, err := os.Stat(outDir); err != nil {
		return nil, fmt.Errorf("failed to use output directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("failed to use output directory: %s is not a directory", outDir)
	}
	o := &opener{bundle: root, outDir: outDir, v: v, opt: opt}
	results := make([]Result, len(v.Submissions))
	work := make([]string, len(v.Submissions))
	for i, s := range v.Submissions {
		r, tmp, err := o.extract(s)
		if err != nil {
			for _, w := range work[:i] {
				if w != "" {
					os.RemoveAll(w)
				}
			}
			if made {
				os.Remove(outDir)
			}
			return nil, err
		}
		r.Index = s.Index
		results[i], work[i] = r, tmp
	}
	for i, s := range v.Submissions {
		if work[i] != "" {
			results[i] = o.place(s, work[i], results[i])
			results[i].Index = s.Index
		}
	}
	return results, nil
}

type opener struct {
	bundle *os.Root
	outDir string
	v      *Verified
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

// extract decrypts a submission into a new work directory, which it
// returns with the Result of an opened submission; otherwise it returns
// the Result of one already open or failed and no directory. Its error is
// a refusal of the whole bundle: a ciphertext that Verify left unhashed
// and that does not match its leaf. Such a ciphertext is hashed whatever
// becomes of its submission, as Verify would have.
func (o *opener) extract(s Submission) (Result, string, error) {
	dst := filepath.Join(o.outDir, s.ID)
	switch fi, err := os.Lstat(dst); {
	case err == nil && fi.IsDir():
		return o.alreadyOpen(s, dst), "", o.hashOnly(s)
	case err == nil:
		// Never follow or replace a link or file planted where the
		// submission's directory belongs.
		return failure(s.ID, "output path is not a directory",
			fmt.Errorf("%w: %s is a %v", ErrOutputExists, dst, describeMode(fi.Mode()))), "", o.hashOnly(s)
	case !errors.Is(err, fs.ErrNotExist):
		return failure(s.ID, "cannot check output path", err), "", o.hashOnly(s)
	}
	o.removeLeftovers(s.ID)

	var f *os.File
	var err error
	if o.v.unhashed {
		if f, err = openCiphertext(o.bundle, s); err != nil {
			return Result{}, "", err
		}
	} else if f, err = openRegular(o.bundle, s.File); err != nil {
		return failure(s.ID, "cannot read ciphertext", err), "", nil
	}
	defer f.Close()

	tmp, err := os.MkdirTemp(o.outDir, tmpPrefix+s.ID+"-")
	if err != nil {
		return failure(s.ID, "cannot create work directory", err), "", o.hashOnly(s)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	// The hash is of the very bytes that are decrypted. When Verify hashed
	// every ciphertext already, a mismatch here is a file that changed
	// since (a flaky USB stick, or someone swapping it in between).
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(progressReader(f, s, o.opt.Progress), h)}
	ext, extractErr := decryptExtract(cr, tmp, o.opt)
	// Read whatever decryption left unread (all of it, when the identity did
	// not match) so the hash covers the whole file. A mismatch explains a
	// decryption failure better than the failure itself does.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		if o.v.unhashed {
			return Result{}, "", fmt.Errorf("failed to read %s: %w", s.File, err)
		}
		return failure(s.ID, "cannot read ciphertext", fmt.Errorf("failed to read %s: %w", s.File, err)), "", nil
	}
	if o.v.unhashed {
		if err := checkCiphertext(s, h.Sum(nil), cr.n); err != nil {
			return Result{}, "", err
		}
	} else if got := hex.EncodeToString(h.Sum(nil)); got != s.Leaf.SHA256 || cr.n != s.Leaf.Size {
		return failure(s.ID, "ciphertext changed",
			fmt.Errorf("%w: %s now has sha256 %s (%d bytes), its log leaf says %s (%d bytes)", ErrCiphertextMismatch, s.File, got, cr.n, s.Leaf.SHA256, s.Leaf.Size)), "", nil
	}
	if extractErr != nil {
		return extractFailure(s.ID, extractErr), "", nil
	}

	signer := o.signer(ext)
	c := newCustody(o.v, s, ext, signer, o.opt)
	if err := c.write(tmp); err != nil {
		if errors.Is(err, ErrReservedName) {
			return failure(s.ID, "envelope holds a file named like a custody record", err), "", nil
		}
		return failure(s.ID, "cannot write output", err), "", nil
	}
	done = true
	r := Result{ID: s.ID, Status: Opened, Files: len(ext.Files), Manifest: ext.Manifest != nil, Signer: signer}
	if ext.Manifest != nil {
		r.Case = ext.Manifest.Case
	}
	for _, file := range ext.Files {
		r.Size += file.Size
	}
	return r, tmp, nil
}

// hashOnly hashes the ciphertext of a submission that is not decrypted,
// if Verify left that to Open.
func (o *opener) hashOnly(s Submission) error {
	if !o.v.unhashed {
		return nil
	}
	return hashCiphertext(o.bundle, s, o.opt.Progress)
}

// place moves an extracted submission's work directory to OUTDIR/<id>, or
// removes it if it cannot.
func (o *opener) place(s Submission, tmp string, r Result) Result {
	dst := filepath.Join(o.outDir, s.ID)
	// Re-checked right before the rename: rename(2) silently replaces an
	// empty directory, and something may have appeared since the first check.
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(tmp)
		return failure(s.ID, "output path appeared while opening",
			fmt.Errorf("%w: %s was created by something else during the open", ErrOutputExists, dst))
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return failure(s.ID, "cannot move into place", err)
	}
	return r
}

// maxCustodyFile bounds the custody.json read back to recognise an opened
// submission. The record lists every extracted file; envelope limits keep
// that list far below this.
const maxCustodyFile = 64 << 20

// alreadyOpen decides about an existing directory OUTDIR/<id>. Only a
// directory whose custody.json records this log, this leaf index and this
// leaf hash holds this submission. Anything else is refused rather than
// skipped: skipping it would move past a logged testimony for good.
//
// The witness record in opened.json is not required to match: a crash
// between the rename and the saving of opened.json leaves a complete,
// matching directory that is not recorded yet, and the caller records it.
// A record at another index never reaches here (Verify refuses it).
func (o *opener) alreadyOpen(s Submission, dst string) Result {
	leafHash := s.Leaf.Hash()
	want := base64.StdEncoding.EncodeToString(leafHash[:])
	_, recorded := o.v.opened[s.ID]
	c, err := readCustody(dst)
	switch {
	case err != nil && recorded:
		return failure(s.ID, "opened folder changed",
			fmt.Errorf("%w: %s was opened here from leaf %d, but its %s can no longer be read (%v): the folder was changed after it was opened; move it out of OUTDIR (keep it) and run again to open the submission afresh",
				ErrNotThisSubmission, dst, s.Index, CustodyJSONName, err))
	case err != nil:
		return failure(s.ID, "output path taken",
			fmt.Errorf("%w: %s exists but was not opened by this program (%s: %v); it is not submission %s from leaf %d: move it out of OUTDIR and run again",
				ErrNotThisSubmission, dst, CustodyJSONName, err, s.ID, s.Index))
	case c.ID == s.ID && c.Log.Key == o.v.LogKey && c.Log.Index == s.Index && c.Log.LeafHash == want:
		return Result{ID: s.ID, Status: AlreadyOpen}
	case c.Log.Key != o.v.LogKey:
		return failure(s.ID, "output path taken",
			fmt.Errorf("%w: %s holds a submission opened from another log (key %q): move it out of OUTDIR and run again",
				ErrNotThisSubmission, dst, c.Log.Key))
	case recorded:
		return failure(s.ID, "opened folder changed",
			fmt.Errorf("%w: %s was opened here from leaf %d, but its %s now records id %s, leaf %d, leaf hash %s: the folder was changed after it was opened; move it out of OUTDIR (keep it) and run again to open the submission afresh",
				ErrNotThisSubmission, dst, s.Index, CustodyJSONName, c.ID, c.Log.Index, c.Log.LeafHash))
	case c.ID == s.ID:
		// Same log, same id, another leaf: the server logged two
		// submissions under one id, the earlier one opened with another
		// state directory (or before its record was lost).
		return failure(s.ID, "submission id reused",
			fmt.Errorf("%w: %w: leaf %d (leaf hash %s) reuses the id of the submission in %s, opened from leaf %d (leaf hash %s) of the same log: keep the bundle as evidence; to open the new one, move that folder out of OUTDIR and run again",
				ErrReused, ErrNotThisSubmission, s.Index, want, dst, c.Log.Index, c.Log.LeafHash))
	}
	return failure(s.ID, "output path taken",
		fmt.Errorf("%w: %s holds the custody record of submission %s, not of %s: move it out of OUTDIR and run again",
			ErrNotThisSubmission, dst, c.ID, s.ID))
}

// readCustody reads the custody.json of an opened submission's directory,
// without following links.
func readCustody(dir string) (*Custody, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := openRegular(root, CustodyJSONName)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, maxCustodyFile)
	if err != nil {
		return nil, err
	}
	var c Custody
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	if c.Version != CustodyVersion {
		return nil, fmt.Errorf("version %d, want %d", c.Version, CustodyVersion)
	}
	return &c, nil
}

func decryptExtract(r io.Reader, dir string, opt Options) (*envelope.Result, error) {
	plain, err := age.Decrypt(r, opt.Identities...)
	if e := new(age.NoIdentityMatchError); errors.As(err, &e) {
		return nil, fmt.Errorf("%w (it is encrypted to %s recipients)", ErrNoIdentity, stanzaTypes(e.StanzaTypes))
	}
	if err != nil {
		return nil, &decryptError{err}
	}
	ra := newReadAhead(decryptReader{plain})
	defer ra.Close()
	return envelope.Extract(ra, dir, opt.Limits)
}

// decryptError marks a failure of age (header or payload authentication)
// as opposed to one of the envelope inside it.
type decryptError struct{ err error }

func (e *decryptError) Error() string        { return "failed to decrypt: " + e.err.Error() }
func (e *decryptError) Unwrap() error        { return e.err }
func (e *decryptError) Is(target error) bool { return target == ErrDecrypt }

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
	case errors.Is(err, envelope.ErrBadSignature):
		return failure(id, "bad caseworker signature", err)
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
