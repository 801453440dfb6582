package server

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fragmentsIn reports whether any 32-byte block of secret at an offset
// that is a multiple of 32 occurs anywhere in the files under dir. Every
// 64-byte window of secret contains such a block, so "false" means that no
// 64-byte window of secret is in the directory.
func fragmentsIn(t *testing.T, dir string, secret []byte) []string {
	t.Helper()
	blocks := make(map[[32]byte]bool)
	for off := 0; off+32 <= len(secret); off += 32 {
		blocks[[32]byte(secret[off:off+32])] = true
	}
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i := 0; i+32 <= len(data); i++ {
			if blocks[[32]byte(data[i:i+32])] {
				found = append(found, filepath.Base(path))
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestCompactRemovesDeletedCiphertext deletes an upload (by expiry) and
// shows that its ciphertext stays in the file until Compact, and is nowhere
// in the data directory afterwards.
func TestCompactRemovesDeletedCiphertext(t *testing.T) {
	e := newTestEnv(t)
	kept := encrypt(t, randBytes(t, ChunkSize+100), e.recipient)
	expect(t, e.upload(kept), http.StatusCreated, "")

	file := encrypt(t, randBytes(t, 3*ChunkSize), e.recipient)
	id := e.createUpload(file, true)
	for i := range 3 {
		expect(t, e.putChunk(id, i, chunkOf(file, i)), http.StatusNoContent, "")
	}
	if n := e.expireAll(); n != 1 {
		t.Fatalf("expired %d uploads, want 1", n)
	}
	secret := chunkOf(file, 1) // random ciphertext, no header
	e.db.Close()

	if found := fragmentsIn(t, e.dir, secret); len(found) == 0 {
		t.Fatal("the deleted ciphertext is not in the file before compaction: the test would prove nothing")
	}
	res, err := Compact(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if found := fragmentsIn(t, e.dir, secret); len(found) != 0 {
		t.Fatalf("deleted ciphertext still in %v after compaction", found)
	}
	if res.After >= res.Before {
		t.Errorf("compaction went from %d to %d bytes", res.Before, res.After)
	}
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), dbFileName+".") {
			t.Errorf("compaction left %s behind", en.Name())
		}
	}
	if fi, err := os.Stat(DBPath(e.dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("compacted database: %v, mode %v", err, fi.Mode())
	}
	// The kept submission survives, and the log still checks.
	cr, err := Check(DBPath(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	if cr.Summary.Submissions != 1 || cr.Summary.Bytes != int64(len(kept)) || cr.Summary.Uploads != 0 {
		t.Errorf("after compaction: %+v", cr.Summary)
	}
}

func TestCompactRefusesRunningServer(t *testing.T) {
	dir, _ := initDir(t)
	s := start(t, dir)
	before := mustRead(t, DBPath(dir))
	if _, err := Compact(dir); !errors.Is(err, ErrServerRunning) {
		t.Fatalf("Compact while serving: %v, want ErrServerRunning", err)
	}
	// Compared before the server stops: a clean stop writes the
	// freelist into the file.
	if !bytes.Equal(before, mustRead(t, DBPath(dir))) {
		t.Error("a refused compaction changed the database")
	}
	s.stop()
	if _, err := os.Stat(DBPath(dir) + compactNewSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused compaction left %s", dbFileName+compactNewSuffix)
	}
}

// TestCompactFinishesInterruptedOverwrite: a crash after the rename leaves
// the old file under its second name; the next Compact overwrites it.
func TestCompactFinishesInterruptedOverwrite(t *testing.T) {
	dir, _ := initDir(t)
	old := DBPath(dir) + compactOldSuffix
	if err := os.WriteFile(old, []byte("old ciphertext"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old file of an interrupted compaction is still there: %v", err)
	}
}

func TestCompactIfFree(t *testing.T) {
	fresh, _ := initDir(t)
	if did, _, err := CompactIfFree(fresh, DefaultCompactFree); err != nil || did {
		t.Fatalf("fresh database: compacted %v, %v", did, err)
	}
	e := newTestEnv(t)
	file := encrypt(t, randBytes(t, 4*ChunkSize), e.recipient)
	id := e.createUpload(file, true)
	for i := range 4 {
		expect(t, e.putChunk(id, i, chunkOf(file, i)), http.StatusNoContent, "")
	}
	e.expireAll()
	e.db.Close()
	if did, _, err := CompactIfFree(e.dir, DefaultCompactFree); err != nil || !did {
		t.Fatalf("after deleting 4 MiB: compacted %v, %v", did, err)
	}
}

// TestBackupWhileServing backs up through the admin socket while uploads
// go on, and checks the backup.
func TestBackupWhileServing(t *testing.T) {
	dir, recipient := initDir(t)
	a, err := OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.CreateToken(RoleSubmit, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	s := startAbuseServer(t, dir, RunConfig{})
	first := encrypt(t, randBytes(t, ChunkSize), recipient)
	if code, body := s.do("POST", "/v1/submissions", tok, first); code != 201 {
		t.Fatalf("submit: %d %s", code, body)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := s.client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body := encrypt(t, bytes.Repeat([]byte("x"), 200<<10), recipient)
				req, _ := http.NewRequest("POST", "https://"+s.addr+"/v1/submissions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 201 {
					t.Errorf("concurrent submit: %s", resp.Status)
					return
				}
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	// Wait for uploads to be under way, without timing anything.
	for {
		mu.Lock()
		n := accepted
		mu.Unlock()
		if n >= 2 || t.Failed() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	sum, err := Backup(dir, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.logs.String(), "/admin/backup") {
		t.Error("the backup did not go through the admin socket")
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != sum.FileSize {
		t.Errorf("backup: mode %v, %d bytes; summary says %d", fi.Mode(), fi.Size(), sum.FileSize)
	}
	if sum.Submissions < 3 || int64(sum.Submissions) != sum.LogSize {
		t.Errorf("summary %+v: want at least 3 submissions, one leaf each", sum)
	}
	cr, err := Check(out)
	if err != nil {
		t.Fatalf("check of the backup: %v", err)
	}
	if cr.Summary.Submissions != sum.Submissions || cr.Summary.Bytes != sum.Bytes {
		t.Errorf("check says %+v, backup said %+v", cr.Summary, sum)
	}
	if _, err := Backup(dir, out); err == nil || !errors.Is(err, fs.ErrExist) {
		t.Errorf("backup onto an existing file: %v", err)
	}
}

func TestBackupOffline(t *testing.T) {
	e := newTestEnv(t)
	expect(t, e.upload(e.testFile(1000)), http.StatusCreated, "")
	e.db.Close()
	out := filepath.Join(t.TempDir(), "b.db")
	sum, err := Backup(e.dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Submissions != 1 || sum.LogSize != 1 {
		t.Errorf("summary %+v", sum)
	}
	if _, err := Check(out); err != nil {
		t.Fatal(err)
	}
}

// TestCheckCatchesCorruptTree damages one stored hash of the log, and
// separately one leaf, and check must refuse both.
func TestCheckCatchesCorruptTree(t *testing.T) {
	for _, tc := range []struct {
		name, bucket string
	}{{"stored hash", "loghashes"}, {"leaf", "logleaves"}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			for i := range 3 {
				expect(t, e.upload(e.testFile(1000+i)), http.StatusCreated, "")
			}
			e.db.Close()
			path := DBPath(e.dir)
			if _, err := Check(path); err != nil {
				t.Fatalf("intact database: %v", err)
			}
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = bdb.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(tc.bucket))
				k, v := b.Cursor().Last()
				v = bytes.Clone(v)
				v[len(v)-2] ^= 1
				return b.Put(k, v)
			})
			bdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Check(path); !errors.Is(err, ErrCheckFailed) {
				t.Fatalf("damaged %s: %v, want ErrCheckFailed", tc.name, err)
			}
		})
	}
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestBackupRefusesShortStream: a server that fails half way through a
// backup sends fewer bytes than it announced; the client must not keep
// the partial file.
func TestBackupRefusesShortStream(t *testing.T) {
	dir, _ := initDir(t)
	ln, err := net.Listen("unix", AdminSocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, 5000))
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	out := filepath.Join(t.TempDir(), "backup.db")
	if _, err := Backup(dir, out); err == nil || !strings.Contains(err.Error(), "failed to copy the backup from the server") {
		t.Fatalf("a truncated backup: %v, want a failed copy", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partial backup was left behind: %v", err)
	}
}

// TestCompactLockKeepsServerOut: while compaction holds its lock, a server
// starting cannot open the database it is about to replace.
func TestCompactLockKeepsServerOut(t *testing.T) {
	dir, _ := initDir(t)
	unlock, err := holdShared(DBPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if db, err := openStore(dir, false); !errors.Is(err, ErrLocked) {
		if err == nil {
			db.Close()
		}
		t.Errorf("opening the database during compaction: %v, want ErrLocked", err)
	}
	unlock()
	db, err := openStore(dir, false)
	if err != nil {
		t.Fatalf("after compaction: %v", err)
	}
	db.Close()
}
