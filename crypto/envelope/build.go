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
		k := foldKey(filepath.Base(p))
		if prev, ok := byKey[k]; ok {
			if prev == ManifestName || prev == SignatureName {
				return nil, fmt.Errorf("failed to build envelope: %s: the name %s is reserved for the envelope's manifest; rename the file", p, prev)
			}
			return nil, fmt.Errorf("failed to build envelope: %s and %s have the same name in the envelope (names are compared ignoring case and Unicode normalisation); rename one", prev, p)
		}
		byKey[k] = p
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
	if _, err := io.CopyN(w, zeroReader{}, Padme(cw.n)-cw.n); err != nil {
		return nil, fmt.Errorf("failed to write envelope padding: %w", err)
	}
	return m, nil
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

// hashFile is the first pass: size, SHA-256 and media type of p.
func hashFile(p string) (File, error) {
	name := filepath.Base(p)
	if err := checkComponent(name); err != nil {
		return File{}, fmt.Errorf("%s: %w", p, err)
	}
	f, fi, err := openRegular(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	if fi.Size() > DefaultLimits.MaxFileSize {
		return File{}, fmt.Errorf("%s is %d bytes, more than the limit of %d", p, fi.Size(), DefaultLimits.MaxFileSize)
	}
	h := sha256.New()
	head := &headBuffer{}
	n, err := io.Copy(io.MultiWriter(h, head), f)
	if err != nil {
		return File{}, fmt.Errorf("failed to read %s: %w", p, err)
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
func copyFile(tw *tar.Writer, p string, want File, created time.Time) error {
	f, _, err := openRegular(p)
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
