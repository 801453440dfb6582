package envelope

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Default limits for Extract. They are far above what an interview needs
// and far below what would exhaust a reviewer's machine.
const (
	DefaultMaxEntries      = 10000
	DefaultMaxFileSize     = 64 << 30
	DefaultMaxTotalSize    = 64 << 30
	DefaultMaxManifestSize = 1 << 20
)

// MaxEntryHeaderSize bounds the tar headers of one entry: its own header
// block and the PAX and GNU extension headers before it. archive/tar caps
// each extension at 1 MiB but reads any number of them in one call to
// Next, so without this bound an endless run of them would be read forever
// without ever reaching an entry that counts against the limits.
const MaxEntryHeaderSize = 4 << 20

// Limits bound what Extract accepts. A zero or negative field means the
// default.
type Limits struct {
	// MaxEntries bounds the tar entries, manifest and directories included.
	MaxEntries int
	// MaxFileSize bounds each file.
	MaxFileSize int64
	// MaxTotalSize bounds the sum of all file sizes.
	MaxTotalSize int64
	// MaxManifestSize bounds manifest.json.
	MaxManifestSize int64
}

// DefaultLimits are the limits Build stays within.
var DefaultLimits = Limits{
	MaxEntries:      DefaultMaxEntries,
	MaxFileSize:     DefaultMaxFileSize,
	MaxTotalSize:    DefaultMaxTotalSize,
	MaxManifestSize: DefaultMaxManifestSize,
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxManifestSize <= 0 {
		l.MaxManifestSize = DefaultMaxManifestSize
	}
	return l
}

// Result is what Extract found and wrote.
type Result struct {
	// Manifest is the envelope's manifest, or nil for a plain tarball.
	Manifest *Manifest
	// Files are the extracted files in archive order, with sizes and
	// hashes computed while writing them (and, with a manifest, equal to
	// it). manifest.json and manifest.sig are not listed.
	Files []File
	// ManifestJSON is the exact content of manifest.json (nil without a
	// manifest): the bytes the signature covers.
	ManifestJSON []byte
	// Signature is the content of manifest.sig, or nil if the envelope is
	// unsigned. It has been verified: a bad signature is an error.
	Signature *Signature
	// SignatureStatus is SigValid if Signature verified, else SigNone.
	SignatureStatus SignatureStatus
}

// Sizes of the tar framing.
const (
	blockSize = 512
	// endMarkerSize is the two zero blocks that end a tar archive.
	endMarkerSize = 2 * blockSize
	// recordSlack is the zero padding plain tar adds up to its 10 KiB
	// record size, beyond the end marker.
	recordSlack = 20 * blockSize
)

// Extract reads a decrypted envelope from r and writes its files into dir,
// which must exist and be empty. It never writes outside dir: all file
// system access goes through an os.Root, no links are ever created, and
// files are created exclusively (O_EXCL) with mode 0600, directories 0700.
//
// With a manifest (the first entry is a regular file named manifest.json)
// every other entry must be a top-level regular file listed in the
// manifest, with the listed size and SHA-256, and every listed file must
// be present exactly once; manifest.json is written to dir as well.
// Without a manifest, regular files and directories at relative paths are
// allowed; a leading "./" is ignored.
//
// Refused in any case: absolute paths, "..", empty components, names
// with control characters, backslashes or bidirectional-text controls,
// names over MaxNameLength or MaxPathLength bytes, symbolic and hard links,
// devices, FIFOs, sparse files and other entry types, two entries whose
// names differ only in case or Unicode normalisation, and anything over
// lim. The archive must end with the tar end marker, and everything after
// it must be zero bytes (the padding); r is read to EOF, so that age
// authenticates the last chunk.
//
// Errors about the content wrap ErrInvalid and name the entry, as in
// `entry "../x": path escapes the output directory`. On error dir may hold
// partial output; the caller should delete it.
func Extract(r io.Reader, dir string, lim Limits) (*Result, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open output directory: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root, dir); err != nil {
		return nil, err
	}
	x := &extractor{
		root:  root,
		lim:   lim.withDefaults(),
		src:   &countingReader{r: r},
		nodes: make(map[string]*node),
		res:   &Result{},
	}
	if err := x.run(); err != nil {
		return nil, err
	}
	return x.res, nil
}

func checkEmpty(root *os.Root, dir string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("failed to open output directory: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("failed to read output directory: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("output directory %s is not empty", dir)
	}
	return nil
}

// node is a name already used in the output directory.
type node struct {
	name     string // exact path as it appeared in the archive
	dir      bool
	explicit bool // a directory that had its own entry, not just created as a parent
}

type extractor struct {
	root    *os.Root
	lim     Limits
	src     *countingReader
	res     *Result
	nodes   map[string]*node // by foldKey of the path
	listed  map[string]File  // manifest files not yet seen, by foldKey of the name
	entries int
	total   int64
	dataEnd int64 // offset in src where the last entry's data ended
}

func (x *extractor) run() error {
	tr := tar.NewReader(x.src)
	for {
		// The previous entry's data has been read, except for the zero
		// padding to a block boundary.
		x.src.limit = x.src.n + blockSize + MaxEntryHeaderSize
		hdr, err := tr.Next()
		x.src.limit = 0
		if err == io.EOF {
			break
		}
		if errors.Is(err, errHeaderLimit) {
			return fmt.Errorf("tar entry %d: %w", x.entries+1, invalidf("extension headers are larger than %d bytes", MaxEntryHeaderSize))
		}
		// With GODEBUG=tarinsecurepath=0 the reader flags names it thinks
		// unsafe but still returns the header; the checks below give the
		// precise reason, and refuse it regardless.
		insecure := errors.Is(err, tar.ErrInsecurePath)
		if err != nil && !insecure {
			return x.readError(fmt.Sprintf("tar entry %d", x.entries+1), err)
		}
		x.entries++
		if x.entries > x.lim.MaxEntries {
			return invalidf("the envelope has more than %d entries", x.lim.MaxEntries)
		}
		if insecure {
			if _, err := x.cleanPath(hdr.Name, hdr.Typeflag == tar.TypeDir); err != nil {
				return entryError(hdr.Name, err)
			}
			return entryError(hdr.Name, invalidf("unsafe path"))
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
		x.dataEnd = x.src.n
	}
	if x.entries == 0 {
		return invalidf("the tar archive has no entries")
	}
	if x.res.Manifest != nil && len(x.listed) > 0 {
		missing := make([]string, 0, len(x.listed))
		for _, f := range x.listed {
			missing = append(missing, f.Name)
		}
		slices.Sort(missing)
		return fmt.Errorf("file %s: %w", quoteName(missing[0]), invalidf("listed in manifest.json but missing from the envelope (%d missing)", len(missing)))
	}
	// Go's tar reader also ends quietly when the input stops at an entry
	// boundary, which is how "tar c | age" looks when tar was killed
	// halfway: age then authenticates a truncated archive. The end marker
	// is the only evidence the archive is complete.
	if end := roundUp(x.dataEnd, blockSize); x.src.n-end != endMarkerSize {
		return invalidf("the tar archive is truncated (its end-of-archive marker is missing)")
	}
	return x.checkPadding()
}

// checkPadding reads the rest of the input and requires zero bytes, no
// more than Padmé padding or tar record padding can explain.
func (x *extractor) checkPadding() error {
	tarLen := x.src.n
	allowed := tarLen/8 + recordSlack
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := x.src.Read(buf)
		if m > 0 {
			if i := slices.IndexFunc(buf[:m], func(b byte) bool { return b != 0 }); i >= 0 {
				return invalidf("non-zero byte at offset %d after the end of the tar archive", tarLen+n+int64(i))
			}
			n += int64(m)
			if n > allowed {
				return invalidf("more than %d bytes of padding after the end of the tar archive", allowed)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read envelope: %w", err)
		}
	}
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	if x.entries == 1 && hdr.Name == ManifestName && hdr.Typeflag == tar.TypeReg && !isSparse(hdr) {
		return x.manifest(hdr, tr)
	}
	if x.entries == 2 && x.res.Manifest != nil && hdr.Name == SignatureName && hdr.Typeflag == tar.TypeReg && !isSparse(hdr) {
		return x.signature(hdr, tr)
	}
	if err := checkType(hdr, x.res.Manifest != nil); err != nil {
		return entryError(hdr.Name, err)
	}
	isDir := hdr.Typeflag == tar.TypeDir
	p, err := x.cleanPath(hdr.Name, isDir)
	if err != nil {
		return entryError(hdr.Name, err)
	}
	if p == "" {
		return nil // "./", the output directory itself
	}
	if err := x.makeParents(p); err != nil {
		return entryError(hdr.Name, err)
	}
	k := foldKey(p)
	if k == foldKey(SignatureName) {
		return entryError(hdr.Name, invalidf("%s is allowed only as the entry right after %s", SignatureName, ManifestName))
	}
	// Anywhere else, a manifest.json would be extracted unchecked and could
	// pass for a verified one in the output directory.
	if k == foldKey(ManifestName) {
		return entryError(hdr.Name, invalidf("%s is allowed only as the first entry, named exactly %q", ManifestName, ManifestName))
	}
	if n, ok := x.nodes[k]; ok {
		if isDir && n.dir && !n.explicit && n.name == p {
			// Created earlier as the parent of a file.
			n.explicit = true
			return nil
		}
		return entryError(hdr.Name, duplicateError(p, n.name))
	}
	if isDir {
		x.nodes[k] = &node{name: p, dir: true, explicit: true}
		if err := x.root.Mkdir(p, 0o700); err != nil {
			return fmt.Errorf("failed to create directory %s: %w", quoteName(p), err)
		}
		return nil
	}
	x.nodes[k] = &node{name: p}
	return x.file(hdr, tr, p, k)
}

// checkType allows regular files, and directories in plain tarballs.
func checkType(hdr *tar.Header, haveManifest bool) error {
	if isSparse(hdr) {
		return invalidf("sparse files are not supported")
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return nil
	case tar.TypeDir:
		if haveManifest {
			return invalidf("directories are not allowed in an envelope with a manifest")
		}
		return nil
	case tar.TypeSymlink:
		return invalidf("symbolic links are not allowed")
	case tar.TypeLink:
		return invalidf("hard links are not allowed")
	case tar.TypeChar, tar.TypeBlock:
		return invalidf("device files are not allowed")
	case tar.TypeFifo:
		return invalidf("named pipes (FIFOs) are not allowed")
	case tar.TypeXGlobalHeader:
		return invalidf("PAX global headers are not supported")
	}
	return invalidf("unsupported tar entry type %q", hdr.Typeflag)
}

// isSparse reports a GNU sparse file in either the old GNU or the PAX
// encoding; Go's reader would silently expand its holes.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// cleanPath validates an entry name and returns the relative path to
// write, or "" for the output directory itself.
func (x *extractor) cleanPath(name string, isDir bool) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", invalidf("absolute paths are not allowed")
	}
	p := name
	plain := x.res.Manifest == nil
	if plain {
		for strings.HasPrefix(p, "./") {
			p = strings.TrimPrefix(p, "./")
		}
		if isDir {
			p = strings.TrimSuffix(p, "/")
			if p == "" || p == "." {
				return "", nil
			}
		}
	}
	if len(p) > MaxPathLength {
		return "", invalidf("path is longer than %d bytes", MaxPathLength)
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if err := checkComponent(c); err != nil {
			return "", err
		}
	}
	if !plain && len(parts) > 1 {
		return "", invalidf("an envelope with a manifest holds only top-level files")
	}
	// On Windows this also refuses reserved names (NUL, COM1) and colons,
	// which would open devices or alternate data streams.
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", invalidf("not a valid file name on this system")
	}
	return p, nil
}

// makeParents creates p's missing parent directories, and refuses a parent
// that is a file or is spelled differently from an earlier entry.
func (x *extractor) makeParents(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		parent := p[:i]
		k := foldKey(parent)
		if n, ok := x.nodes[k]; ok {
			if !n.dir {
				return invalidf("%s is a file, not a directory", quoteName(n.name))
			}
			if n.name != parent {
				return duplicateError(parent, n.name)
			}
			continue
		}
		x.nodes[k] = &node{name: parent, dir: true}
		if err := x.root.Mkdir(parent, 0o700); err != nil {
			return fmt.Errorf("failed to create directory %s: %w", quoteName(parent), err)
		}
	}
	return nil
}

func (x *extractor) manifest(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Size > x.lim.MaxManifestSize {
		return entryError(hdr.Name, invalidf("%d bytes, more than the limit of %d", hdr.Size, x.lim.MaxManifestSize))
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return x.readError("manifest.json", err)
	}
	m, err := parseManifest(data, x.lim)
	if err != nil {
		return err
	}
	x.listed = make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		x.listed[foldKey(f.Name)] = f
	}
	x.nodes[foldKey(ManifestName)] = &node{name: ManifestName}
	if err := x.write(ManifestName, bytes.NewReader(data), nil); err != nil {
		return err
	}
	x.res.Manifest = m
	x.res.ManifestJSON = data
	return nil
}

func (x *extractor) file(hdr *tar.Header, tr *tar.Reader, p, key string) error {
	var want *File
	if x.res.Manifest != nil {
		f, ok := x.listed[key]
		if !ok {
			return entryError(hdr.Name, invalidf("not listed in manifest.json"))
		}
		if f.Name != p {
			// The fold keys matched, so the names differ only in case or
			// normalisation, which can look identical once printed.
			return entryError(hdr.Name, invalidf("listed in manifest.json as %s, which differs in case or Unicode normalisation (names must match exactly)", quoteName(f.Name)))
		}
		if hdr.Size != f.Size {
			return entryError(hdr.Name, invalidf("size %d does not match manifest.json (%d)", hdr.Size, f.Size))
		}
		delete(x.listed, key)
		want = &f
	}
	if hdr.Size > x.lim.MaxFileSize {
		return entryError(hdr.Name, invalidf("%d bytes, more than the limit of %d", hdr.Size, x.lim.MaxFileSize))
	}
	if x.total += hdr.Size; x.total > x.lim.MaxTotalSize {
		return entryError(hdr.Name, invalidf("files total more than the limit of %d bytes", x.lim.MaxTotalSize))
	}
	h := sha256.New()
	head := &headBuffer{}
	if err := x.write(p, tr, io.MultiWriter(h, head)); err != nil {
		return err
	}
	f := File{Name: p, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
	if want != nil {
		if f.SHA256 != want.SHA256 {
			return entryError(hdr.Name, invalidf("SHA-256 does not match manifest.json"))
		}
		f.MediaType = want.MediaType
	} else {
		f.MediaType = mediaType(p, head.b)
	}
	x.res.Files = append(x.res.Files, f)
	return nil
}

// write creates p exclusively and copies r into it and into tee, telling
// read errors (a broken archive or a failed decryption) from write errors.
func (x *extractor) write(p string, r io.Reader, tee io.Writer) (err error) {
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", quoteName(p), err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("failed to write %s: %w", quoteName(p), cerr)
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("failed to write %s: %w", quoteName(p), err)
			}
			if tee != nil {
				tee.Write(buf[:n])
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return x.readError(quoteName(p), rerr)
		}
	}
	// The reviewer may delete the ciphertext once it is extracted.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to write %s: %w", quoteName(p), err)
	}
	return nil
}

// readError reports a failure to read what: the source's own error (such
// as age's authentication failure) as is, anything else as a malformed
// archive.
func (x *extractor) readError(what string, err error) error {
	if x.src.err != nil {
		return fmt.Errorf("failed to read envelope: %w", x.src.err)
	}
	if err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%s: %w", what, invalidf("the tar archive is truncated"))
	}
	return fmt.Errorf("%s: %w", what, invalidf("malformed tar archive: %v", err))
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// errHeaderLimit stops archive/tar when an entry's headers exceed
// MaxEntryHeaderSize.
var errHeaderLimit = errors.New("entry headers over the limit")

// countingReader counts the bytes read and remembers the first error other
// than io.EOF. If limit is positive, reading stops there with
// errHeaderLimit, which is not remembered: it is not the source's error.
type countingReader struct {
	r     io.Reader
	n     int64
	err   error
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 {
		if c.n >= c.limit {
			return 0, errHeaderLimit
		}
		p = p[:min(int64(len(p)), c.limit-c.n)]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
