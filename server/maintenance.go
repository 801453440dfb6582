package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/store"
)

// Compaction, backup and check of the database (docs/operator.md,
// sections "Compaction" and "Backup and restore").

// DefaultCompactFree is the free fraction of the database file above which
// serve -compact-at-start compacts: below it, the file holds little
// deleted data and rewriting it all is not worth the start-up time.
const DefaultCompactFree = 0.10

// compactMinFree is the least free space worth a compaction at start: a
// small file always has a few free pages.
const compactMinFree = 1 << 20

// Names of the files compaction leaves while it runs.
const (
	compactNewSuffix = ".compact" // the new file, before it replaces the database
	compactOldSuffix = ".old"     // a second name of the old file, until it is overwritten
)

// CompactResult is what Compact reports.
type CompactResult struct {
	Before, After int64 // file sizes in bytes
}

// ErrServerRunning means an offline command found the database in use.
var ErrServerRunning = errors.New("the server is running")

// Compact rewrites the database of dataDir without its free pages, so that
// deleted ciphertext is no longer in the file: it copies the database into
// a new file (store.Compact), fsyncs it, renames it over the database and
// fsyncs the directory, then overwrites the old file with zeros, fsyncs it
// and removes it. The server must be stopped: the file lock tells, and
// Compact fails with ErrServerRunning without touching anything.
//
// A crash at any point leaves a usable database: before the rename the old
// file is intact (a half-written new file is removed by the next Compact);
// after it, the old file survives under a second name (DB.old) that the next
// Compact overwrites and removes. On flash storage and copy-on-write or
// snapshotting file systems, overwriting does not reach every old copy of
// the blocks: docs/operator.md says so.
func Compact(dataDir string) (CompactResult, error) {
	path := DBPath(dataDir)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return CompactResult{}, fmt.Errorf("%w: %s has no %s", ErrNotInitialized, dataDir, dbFileName)
	}
	// Taking the exclusive lock first tells a running server apart from a
	// copy in progress, and keeps a server from starting meanwhile.
	lock, err := store.Open(path, store.Options{Timeout: -1})
	if errors.Is(err, store.ErrTimeout) {
		return CompactResult{}, fmt.Errorf("%w: %s is locked; stop the server first", ErrServerRunning, path)
	} else if err != nil {
		return CompactResult{}, err
	}
	lock.Close()
	unlock, err := holdShared(path)
	if err != nil {
		return CompactResult{}, err
	}
	defer unlock()
	newPath, oldPath := path+compactNewSuffix, path+compactOldSuffix
	if err := shred(oldPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return CompactResult{}, err
	}
	if err := os.Remove(newPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return CompactResult{}, fmt.Errorf("failed to remove the unfinished %s: %w", newPath, err)
	}
	before, err := os.Stat(path)
	if err != nil {
		return CompactResult{}, fmt.Errorf("failed to compact: %w", err)
	}
	if err := store.Compact(newPath, path, store.Options{Timeout: -1}); err != nil {
		os.Remove(newPath)
		if errors.Is(err, store.ErrTimeout) {
			return CompactResult{}, fmt.Errorf("%w: %s is locked; stop the server first", ErrServerRunning, path)
		}
		return CompactResult{}, err
	}
	if err := fsyncFile(newPath); err != nil {
		os.Remove(newPath)
		return CompactResult{}, err
	}
	// The old file gets a second name before the rename drops the first,
	// so that it can still be overwritten after a crash.
	if err := os.Link(path, oldPath); err != nil {
		os.Remove(newPath)
		return CompactResult{}, fmt.Errorf("failed to compact: %w", err)
	}
	if err := os.Rename(newPath, path); err != nil {
		os.Remove(oldPath)
		os.Remove(newPath)
		return CompactResult{}, fmt.Errorf("failed to replace the database with its compacted copy: %w", err)
	}
	if err := safefile.SyncDir(dataDir); err != nil {
		return CompactResult{}, err
	}
	if err := shred(oldPath); err != nil {
		return CompactResult{}, err
	}
	after, err := os.Stat(path)
	if err != nil {
		return CompactResult{}, fmt.Errorf("failed to compact: %w", err)
	}
	return CompactResult{Before: before.Size(), After: after.Size()}, nil
}

// CompactIfFree compacts the database of dataDir when more than the
// fraction minFree of its file, and at least 1 MiB, is free pages, and
// reports whether it did.
func CompactIfFree(dataDir string, minFree float64) (bool, CompactResult, error) {
	db, err := openStore(dataDir, false)
	if err != nil {
		return false, CompactResult{}, err
	}
	sp, err := db.Space()
	db.Close()
	if err != nil {
		return false, CompactResult{}, err
	}
	if sp.FreeFraction() <= minFree || sp.FreeBytes < compactMinFree {
		return false, CompactResult{}, nil
	}
	res, err := Compact(dataDir)
	return err == nil, res, err
}

// shred overwrites the file at path with zeros, fsyncs it, removes it and
// fsyncs its directory.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("failed to overwrite the old database: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < fi.Size() && err == nil; off += int64(len(zeros)) {
			n := min(int64(len(zeros)), fi.Size()-off)
			_, err = f.WriteAt(zeros[:n], off)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to overwrite the old database %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("failed to remove the old database: %w", err)
	}
	return safefile.SyncDir(filepath.Dir(path))
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", path, err)
	}
	return nil
}

// BackupSummary is what a backup holds.
type BackupSummary = store.Summary

// Backup writes a consistent copy of the database of dataDir to a new file
// at out (mode 0600; an existing file is refused), through the running
// server's admin socket if there is one, else from the file. The copy
// streams: neither side holds the database in memory. The file is fsynced
// before Backup returns; on any error it is removed.
func Backup(dataDir, out string) (BackupSummary, error) {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return BackupSummary{}, fmt.Errorf("failed to create the backup: %w", err)
	}
	sum, err := backupTo(dataDir, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = safefile.SyncDir(filepath.Dir(out))
	}
	if err != nil {
		os.Remove(out)
		return BackupSummary{}, err
	}
	return sum, nil
}

func backupTo(dataDir string, w io.Writer) (BackupSummary, error) {
	admin, err := OpenAdmin(dataDir)
	if err != nil {
		return BackupSummary{}, err
	}
	defer admin.Close()
	switch a := admin.(type) {
	case *localAdmin:
		return a.db.Backup(w, nil)
	case *socketAdmin:
		return a.backup(w)
	}
	return BackupSummary{}, errors.New("unknown admin")
}

// Headers of GET /admin/backup: the summary of the copy in the body.
const (
	hdrLogSize     = "Testimony-Log-Size"
	hdrSubmissions = "Testimony-Submissions"
	hdrBytes       = "Testimony-Bytes"
	hdrUploads     = "Testimony-Uploads"
)

// handleBackup streams a copy of the database. It is a plain handler, not
// an apiFunc: the body is the file, with its length, and the summary goes in
// headers before it. The write deadline moves along with the data
// (deadlineWriter), so the admin server's WriteTimeout does not cut off the
// backup of a large database; a failure half way leaves the body shorter
// than Content-Length, which the client refuses.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "admin /admin/backup")
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	_, err := s.db.Backup(dw, func(sum store.Summary) error {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(sum.FileSize, 10))
		h.Set(hdrLogSize, strconv.FormatInt(sum.LogSize, 10))
		h.Set(hdrSubmissions, strconv.Itoa(sum.Submissions))
		h.Set(hdrBytes, strconv.FormatInt(sum.Bytes, 10))
		h.Set(hdrUploads, strconv.Itoa(sum.Uploads))
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err != nil {
		// The status is sent; the short body tells the client.
		s.log.Error("backup failed", "err", err)
	}
}

func (a *socketAdmin) backup(w io.Writer) (BackupSummary, error) {
	// No overall timeout: a large database takes as long as it takes.
	hc := &http.Client{Transport: a.hc.Transport}
	resp, err := hc.Get("http://admin.sock/admin/backup")
	if err != nil {
		return BackupSummary{}, fmt.Errorf("failed to reach the server over its admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return BackupSummary{}, fmt.Errorf("the server answered %s on its admin socket", resp.Status)
	}
	var sum BackupSummary
	sum.FileSize = resp.ContentLength
	sum.LogSize, _ = strconv.ParseInt(resp.Header.Get(hdrLogSize), 10, 64)
	sum.Submissions, _ = strconv.Atoi(resp.Header.Get(hdrSubmissions))
	sum.Bytes, _ = strconv.ParseInt(resp.Header.Get(hdrBytes), 10, 64)
	sum.Uploads, _ = strconv.Atoi(resp.Header.Get(hdrUploads))
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return BackupSummary{}, fmt.Errorf("failed to copy the backup from the server: %w", err)
	}
	if sum.FileSize < 0 || n != sum.FileSize {
		return BackupSummary{}, fmt.Errorf("failed to copy the backup from the server: got %d bytes of %d", n, sum.FileSize)
	}
	return sum, nil
}

// CheckResult is what Check found.
type CheckResult struct {
	Summary store.Summary
	// Checkpoint is the signed checkpoint of the whole log, as the server
	// would serve it from this database: compare it with one a client saved
	// to see whether the database is older than what clients have seen.
	Checkpoint []byte
}

// ErrCheckFailed means a database or backup is damaged.
var ErrCheckFailed = errors.New("check failed")

// Check verifies the database file at path (a data directory's
// testimony.db or a backup) without changing it: bbolt's consistency check
// of every page, then the intake log's tree recomputed from its leaves
// against the stored hashes that checkpoints are signed from. It returns the
// signed checkpoint of the log.
func Check(path string) (*CheckResult, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("failed to check: %w", err)
	}
	db, err := store.Open(path, store.Options{Timeout: dbLockTimeout, ReadOnly: true})
	if errors.Is(err, store.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s; check a backup of it instead (testimony-server backup)", ErrLocked, path)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFailed, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFailed, err)
	}
	dep, err := loadDeployment(db)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFailed, err)
	}
	n, root, err := db.CheckLog()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFailed, err)
	}
	sum, err := db.Summary()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckFailed, err)
	}
	if int64(sum.Submissions) != n {
		return nil, fmt.Errorf("%w: %d submissions for %d log leaves", ErrCheckFailed, sum.Submissions, n)
	}
	signed, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: dep.logSigner.Name(), Size: n, Root: root}, dep.logSigner)
	if err != nil {
		return nil, err
	}
	return &CheckResult{Summary: sum, Checkpoint: signed}, nil
}
