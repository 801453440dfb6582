package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/bounded"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// The browser sends a testimony as one multipart request: a "meta" part
// (JSON: the metadata, the label and each file's name and size), a
// "notes" part, then one "file" part per file in the order of meta. The
// parts are read from the request stream with multipart.Reader, never
// ParseMultipartForm, which would write large files to a temporary file
// in plaintext.
//
// The envelope needs every file twice (its manifest, written first,
// holds their hashes), and the browser sends each once. So each file is
// written to a spool file encrypted with age to an X25519 key made for
// this testimony that exists only in this process's memory, and read back
// through it. A spool file left by a killed app is noise without that key;
// the next start deletes it.

const (
	spoolDir = ".app-spool"
	// maxMetaPart and maxNotes bound what is held in memory.
	maxMetaPart = 64 << 10
	maxNotes    = 4 << 20
	// notesName is the notes' file name in the envelope.
	notesName = "notes.txt"
)

// submitMeta is the "meta" part.
type submitMeta struct {
	Case    string     `json:"case"`
	Lang    string     `json:"lang"`
	Date    string     `json:"date"`
	Consent string     `json:"consent"`
	Label   string     `json:"label"`
	Files   []fileMeta `json:"files"`
}

type fileMeta struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// errInput is a mistake in what the page sent, shown to the caseworker.
var errInput = errors.New("bad input")

type inputError struct{ key string }

func (e *inputError) Error() string { return e.key }
func (e *inputError) Unwrap() error { return errInput }

// receive reads a testimony from mr into j, spooling every file.
func (a *App) receive(mr *multipart.Reader, j *job) error {
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "meta" {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	data, err := bounded.ReadAll(part, maxMetaPart)
	if err != nil {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	var m submitMeta
	if err := strictjson.Decode(data, &m); err != nil {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	part, err = mr.NextPart()
	if err != nil || part.FormName() != "notes" {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	notes, err := bounded.ReadAll(part, maxNotes)
	if errors.Is(err, bounded.ErrTooLarge) {
		return &inputError{"The notes are too long. Save long notes as a file and add the file instead."}
	}
	if err != nil {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	if len(m.Files) == 0 && len(bytes.TrimSpace(notes)) == 0 {
		return &inputError{"Add at least one file or write notes."}
	}
	if m.Date != "" {
		if _, err := time.Parse(time.DateOnly, m.Date); err != nil {
			return &inputError{"The interview date is not a valid date."}
		}
	}
	j.meta = envelope.Meta{Case: strings.TrimSpace(m.Case), Language: m.Lang, InterviewDate: m.Date, Consent: strings.TrimSpace(m.Consent)}
	j.label = strings.TrimSpace(m.Label)
	// Browsers send a text area's line ends as CRLF.
	notes = bytes.ReplaceAll(notes, []byte("\r\n"), []byte("\n"))
	if len(bytes.TrimSpace(notes)) > 0 {
		j.notes = notes
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	j.ident = id
	dir := filepath.Join(a.cfg.StateDir, spoolDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create the spool directory: %w", err)
	}
	for _, fm := range m.Files {
		if fm.Size < 0 || fm.Size > envelope.DefaultLimits.MaxFileSize || fm.Name == "" {
			return &inputError{"A file is too large or has no name."}
		}
		jf := &jobFile{name: fm.Name, size: fm.Size}
		a.mu.Lock()
		j.files = append(j.files, jf)
		a.mu.Unlock()
	}
	for _, jf := range j.files {
		part, err := mr.NextPart()
		if err != nil || part.FormName() != "file" {
			return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
		}
		if err := a.spool(dir, j, jf, part); err != nil {
			return err
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		return &inputError{"The page sent an incomplete testimony. Reload the page and add the files again."}
	}
	return nil
}

// spool encrypts one file part into a spool file, checking its size.
func (a *App) spool(dir string, j *job, jf *jobFile, r io.Reader) (err error) {
	f, err := os.CreateTemp(dir, "s-*")
	if err != nil {
		return fmt.Errorf("failed to create a spool file: %w", err)
	}
	jf.spool = f.Name()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	w, err := age.Encrypt(f, j.ident.Recipient())
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > jf.size {
				return &inputError{"A file changed while it was being added. Add it again."}
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return fmt.Errorf("failed to write a spool file: %w", err)
			}
			a.mu.Lock()
			jf.received = n
			a.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &inputError{"The page stopped sending the files. Keep the page open until all files are read, then try again."}
		}
	}
	clear(buf)
	if n != jf.size {
		return &inputError{"A file changed while it was being added. Add it again."}
	}
	return w.Close()
}

// sources are j's files for the envelope, read back from the spool, and
// the notes from memory.
func (j *job) sources() []envelope.Source {
	var src []envelope.Source
	ident := j.ident // dropSpool may forget it meanwhile (a wipe)
	for _, jf := range j.files {
		spool := jf.spool
		src = append(src, envelope.Source{Name: jf.name, Size: jf.size, Open: func() (io.ReadCloser, error) {
			f, err := os.Open(spool)
			if err != nil {
				return nil, err
			}
			r, err := age.Decrypt(f, ident)
			if err != nil {
				f.Close()
				return nil, err
			}
			return readCloser{r, f}, nil
		}})
	}
	if j.notes != nil {
		notes := j.notes
		src = append(src, envelope.Source{Name: notesName, Size: int64(len(notes)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(notes)), nil
		}})
	}
	return src
}

type readCloser struct {
	io.Reader
	io.Closer
}

// dropSpool deletes j's spool files and forgets its key and notes.
func (j *job) dropSpool() {
	for _, jf := range j.files {
		if jf.spool != "" {
			os.Remove(jf.spool)
		}
	}
	clear(j.notes)
	j.notes = nil
	j.ident = nil
}
