package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Build writes the padded tar envelope of the files at paths to w (normally
// an age.Encrypt writer) and returns its manifest. Each file is stored at
// the top level under its base name, in the order given, after
// manifest.json and, if signer is not nil, manifest.sig: the device's
// signature over manifest.json.
//
// Every file is read twice, first to hash it for the manifest and then to
// write it, so memory use does not depend on file sizes. If a file changes
// between the two reads, Build fails; what it already wrote to w is then
// not a valid envelope and must be discarded.
//
// Build refuses directories and other non-regular files (symbolic links
// to regular files are followed), two files with the same base name (also
// after case folding and Unicode normalisation), names Extract would refuse,
// and anything over DefaultLimits, so Extract with DefaultLimits accepts
// every envelope Build writes.
func Build(w io.Writer, meta Meta, paths []string, signer ed25519.PrivateKey) (*Manifest, error) {
	srcs := make([]source, len(paths))
	for i, p := range paths {
		srcs[i] = source{label: p, name: filepath.Base(p), open: func() (io.ReadCloser, int64, error) {
			f, fi, err := openRegular(p)
			if err != nil {
				return nil, 0, err
			}
			return f, fi.Size(), nil
		}}
	}
	return build(w, meta, srcs, signer)
}

// ErrSizeMismatch means a Source did not give the number of bytes it
// announced: a transfer was cut short or padded.
var ErrSizeMismatch = errors.New("the file's size differs from the size announced")

// Source is a file for BuildSources that does not come from a path: a
// stream the caller can open twice, such as a file the caseworker's app
// received from the browser and holds encrypted under a key that exists
// only in memory.
type Source struct {
	// Name is the file's name in the envelope (no directories).
	Name string
	// Size is the file's size in bytes; both reads must yield exactly it.
	Size int64
	// Open returns a new reader of the file's content from the start.
	Open func() (io.ReadCloser, error)
}

// BuildSources is Build for files given as Sources instead of paths. Each
// source is opened twice, like a file in Build, and must give the same
// Size bytes with the same SHA-256 both times.
func BuildSources(w io.Writer, meta Meta, sources []Source, signer ed25519.PrivateKey) (*Manifest, error) {
	srcs := make([]source, len(sources))
	for i, s := range sources {
		srcs[i] = source{label: s.Name, name: s.Name, exact: true, open: func() (io.ReadCloser, int64, error) {
			if s.Size < 0 {
				return nil, 0, fmt.Errorf("%s has a negative size", s.Name)
			}
			r, err := s.Open()
			return r, s.Size, err
		}}
	}
	return build(w, meta, srcs, signer)
}

// source is one file of an envelope: label names it in errors (the path
// given to Build), name in the envelope; open returns its content and
// the size it is expected to have.
type source struct {
	label, name string
	open        func() (io.ReadCloser, int64, error)
	// exact: the content must have the size open returns (a stream whose
	// size was declared in advance, not a file's size at stat time).
	exact bool
}

func build(w io.Writer, meta Meta, paths []source, signer ed25519.PrivateKey) (*Manifest, error) {
	if len(paths) == 0 {
		return nil, errors.New("failed to build envelope: no files given")
	}
	created := time.Now().UTC().Truncate(24 * time.Hour)
	m := &Manifest{
		Version:       ManifestVersion,
		Case:          meta.Case,
		InterviewDate: meta.InterviewDate,
		Language:      meta.Language,
		Consent:       meta.Consent,
		Created:       created.Format(DateFormat),
		Files:         make([]File, 0, len(paths)),
	}
	byKey := map[string]string{foldKey(ManifestName): ManifestName, foldKey(SignatureName): SignatureName}
	for _, p := range paths {
		k := foldKey(p.name)
		if prev, ok := byKey[k]; ok {
			if prev == ManifestName || prev == SignatureName {
				return nil, fmt.Errorf("failed to build envelope: %s: the name %s is reserved for the envelope's manifest; rename the file", p.label, prev)
			}
			return nil, fmt.Errorf("failed to build envelope: %s and %s have the same name in the envelope (names are compared ignoring case and Unicode normalisation); rename one", prev, p.label)
		}
		byKey[k] = p.label
	}
	for _, p := range paths {
		f, err := hashFile(p)
		if err != nil {
			return nil, fmt.Errorf("failed to build envelope: %w", err)
		}
		m.Files = append(m.Files, f)
	}
	if err := m.validate(DefaultLimits); err != nil {
		return nil, fmt.Errorf("failed to build envelope: %w", err)
	}
	var mj bytes.Buffer
	enc := json.NewEncoder(&mj)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("failed to build envelope: %w", err)
	}
	if int64(mj.Len()) > DefaultLimits.MaxManifestSize {
		return nil, fmt.Errorf("failed to build envelope: manifest.json would be larger than %d bytes; shorten the metadata or use fewer files", DefaultLimits.MaxManifestSize)
	}
	var sig []byte
	if signer != nil {
		if len(m.Files) > DefaultLimits.MaxEntries-2 {
			return nil, fmt.Errorf("failed to build envelope: a signed envelope holds at most %d files", DefaultLimits.MaxEntries-2)
		}
		var err error
		if sig, err = signManifest(signer, mj.Bytes()); err != nil {
			return nil, fmt.Errorf("failed to sign envelope: %w", err)
		}
	}

	size, err := envelopeSize(m, int64(mj.Len()), int64(len(sig)), created)
	if err != nil {
		return nil, fmt.Errorf("failed to build envelope: %w", err)
	}
	if ss, ok := w.(SizeSetter); ok {
		if err := ss.SetSize(size); err != nil {
			return nil, err
		}
	}

	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	if err := tw.WriteHeader(tarHeader(ManifestName, int64(mj.Len()), created)); err != nil {
		return nil, fmt.Errorf("failed to write envelope: %w", err)
	}
	if _, err := tw.Write(mj.Bytes()); err != nil {
		return nil, fmt.Errorf("failed to write envelope: %w", err)
	}
	if sig != nil {
		if err := tw.WriteHeader(tarHeader(SignatureName, int64(len(sig)), created)); err != nil {
			return nil, fmt.Errorf("failed to write envelope: %w", err)
		}
		if _, err := tw.Write(sig); err != nil {
			return nil, fmt.Errorf("failed to write envelope: %w", err)
		}
	}
	for i, p := range paths {
		if err := copyFile(tw, p, m.Files[i], created); err != nil {
			return nil, fmt.Errorf("failed to build envelope: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to write envelope: %w", err)
	}
	if _, err := io.CopyN(cw, zeroReader{}, Padme(cw.n)-cw.n); err != nil {
		return nil, fmt.Errorf("failed to write envelope padding: %w", err)
	}
	if cw.n != size {
		// A reader of SetSize relies on it: never let a wrong
		// prediction pass silently.
		return nil, fmt.Errorf("failed to build envelope: wrote %d bytes, %d were announced", cw.n, size)
	}
	return m, nil
}

// SizeSetter is implemented by writers that need the envelope's exact
// length before its first byte: a chunked upload of the ciphertext
// declares the size when it is created, and age's ciphertext size follows
// from the plaintext's. Build and BuildSources call SetSize once, after
// the first read of the files and before writing anything; an error from
// it ends the build.
type SizeSetter interface {
	SetSize(n int64) error
}

// envelopeSize returns the padded length of the envelope of m, with a
// manifest of manifestLen bytes and a signature of sigLen (0: none). The
// tar framing is measured by encoding the very headers the build writes.
func envelopeSize(m *Manifest, manifestLen, sigLen int64, created time.Time) (int64, error) {
	n := int64(endMarkerSize)
	entry := func(name string, size int64) error {
		cw := &countingWriter{w: io.Discard}
		if err := tar.NewWriter(cw).WriteHeader(tarHeader(name, size, created)); err != nil {
			return fmt.Errorf("failed to write entry for %s: %w", name, err)
		}
		n += cw.n + roundUp(size, blockSize)
		return nil
	}
	if err := entry(ManifestName, manifestLen); err != nil {
		return 0, err
	}
	if sigLen > 0 {
		if err := entry(SignatureName, sigLen); err != nil {
			return 0, err
		}
	}
	for _, f := range m.Files {
		if err := entry(f.Name, f.Size); err != nil {
			return 0, err
		}
	}
	return Padme(n), nil
}

// tarHeader makes entry headers that carry no more than the name and size:
// owner names, ids and precise times could identify the caseworker or
// their device. The time is the manifest's creation date.
func tarHeader(name string, size int64, created time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o600,
		ModTime:  created,
		Format:   tar.FormatPAX,
	}
}

// openRegular opens p, refusing anything but a regular file before opening
// it (opening a FIFO would block) and again after (p may have changed).
func openRegular(p string) (*os.File, os.FileInfo, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRegular(p, fi); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err = f.Stat()
	if err == nil {
		err = checkRegular(p, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func checkRegular(p string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return fmt.Errorf("%s is a directory; pass the files inside it", p)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}

// hashFile is the first pass: size, SHA-256 and media type of src.
func hashFile(src source) (File, error) {
	p, name := src.label, src.name
	if err := checkComponent(name); err != nil {
		return File{}, fmt.Errorf("%s: %w", p, err)
	}
	f, size, err := src.open()
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	if size > DefaultLimits.MaxFileSize {
		return File{}, fmt.Errorf("%s is %d bytes, more than the limit of %d", p, size, DefaultLimits.MaxFileSize)
	}
	h := sha256.New()
	head := &headBuffer{}
	// One byte more than the limit is enough to tell a file that grew
	// past it.
	n, err := io.Copy(io.MultiWriter(h, head), io.LimitReader(f, DefaultLimits.MaxFileSize+1))
	if err != nil {
		return File{}, fmt.Errorf("failed to read %s: %w", p, err)
	}
	if n > DefaultLimits.MaxFileSize {
		return File{}, fmt.Errorf("%s is more than the limit of %d bytes", p, DefaultLimits.MaxFileSize)
	}
	if src.exact && n != size {
		return File{}, fmt.Errorf("%s: %w: %d bytes were announced, %d arrived", p, ErrSizeMismatch, size, n)
	}
	return File{
		Name:      name,
		Size:      n,
		SHA256:    hex.EncodeToString(h.Sum(nil)),
		MediaType: mediaType(name, head.b),
	}, nil
}

// copyFile is the second pass: it writes p's entry and checks that p still
// has the size and hash recorded in the first pass.
func copyFile(tw *tar.Writer, src source, want File, created time.Time) error {
	p := src.label
	f, _, err := src.open()
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(tarHeader(want.Name, want.Size, created)); err != nil {
		return fmt.Errorf("failed to write entry for %s: %w", p, err)
	}
	h := sha256.New()
	changed := fmt.Errorf("%s changed while the envelope was being built; try again when nothing is writing to it", p)
	if _, err := io.CopyN(io.MultiWriter(tw, h), f, want.Size); err == io.EOF {
		return changed
	} else if err != nil {
		return fmt.Errorf("failed to copy %s: %w", p, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return changed
	}
	if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
		return changed
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// zeroReader is an endless source of zero bytes, for padding.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
