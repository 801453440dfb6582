package outbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// createWith writes an entry as submit does: Begin, Write, Commit; a
// failure of write abandons it.
func createWith(o Outbox, meta Meta, now time.Time, write func(io.Writer) error) (*Entry, error) {
	p, err := o.Begin(meta)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := write(p); err != nil {
		p.Abort(err)
		return nil, err
	}
	return p.Commit(now)
}

func create(t *testing.T, o Outbox, content []byte) *Entry {
	t.Helper()
	e, err := createWith(o, Meta{Server: "https://h", TLSPin: "ab"}, now, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCreateListRemove(t *testing.T) {
	o := Outbox{Dir: filepath.Join(t.TempDir(), "outbox")}
	content := bytes.Repeat([]byte("ciphertext"), 1000)
	e := create(t, o, content)
	sum := sha256.Sum256(content)
	if e.Meta.Size != int64(len(content)) || e.Meta.SHA256 != hex.EncodeToString(sum[:]) || e.Meta.Created != "2026-11-27" {
		t.Errorf("meta = %+v", e.Meta)
	}
	for _, name := range []string{e.Name + ".age", e.Name + ".json"} {
		fi, err := os.Stat(filepath.Join(o.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if err := o.SetUploadID(e, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	l, err := o.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || len(l.Partial) != 0 || len(l.Broken) != 0 {
		t.Fatalf("List = %+v", l)
	}
	if got := l.Entries[0].Meta; got.UploadID != "0123456789abcdef0123456789abcdef" || got.TLSPin != "ab" || got.Server != "https://h" {
		t.Errorf("listed meta = %+v", got)
	}
	f, err := o.Open(&l.Entries[0])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, content) {
		t.Error("Open returned other content")
	}
	if err := o.Remove(&l.Entries[0]); err != nil {
		t.Fatal(err)
	}
	if l, _ := o.List(); len(l.Entries)+len(l.Partial) != 0 {
		t.Errorf("after Remove: %+v", l)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	boom := errors.New("boom")
	_, err := createWith(o, Meta{Server: "https://h"}, now, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Create = %v, want the write error", err)
	}
	des, _ := os.ReadDir(o.Dir)
	if len(des) != 0 {
		t.Errorf("outbox holds %v after a failed Create", des)
	}
}

// TestPartialEntries simulates a client killed during encryption: a .part
// without metadata, and one whose metadata was written just before the
// rename.
func TestPartialEntries(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	keep := create(t, o, []byte("complete"))
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("1111111111111111.age.part", "half")
	write("2222222222222222.age.part", "whole")
	write("2222222222222222.json", `{"version":1,"server":"https://h","size":5,"sha256":"`+hex.EncodeToString(make([]byte, 32))+`","created":"2026-11-27"}`)
	write("3333333333333333.age", "no metadata")

	l, err := o.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries[0].Name != keep.Name {
		t.Errorf("entries = %+v", l.Entries)
	}
	if len(l.Partial) != 2 || l.Partial[0] != "1111111111111111" || l.Partial[1] != "2222222222222222" {
		t.Errorf("partial = %v", l.Partial)
	}
	if !errors.Is(l.Broken["3333333333333333"], ErrCorrupt) {
		t.Errorf("broken = %v", l.Broken)
	}
	if err := o.Discard(l); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1111111111111111.age.part", "2222222222222222.age.part", "2222222222222222.json"} {
		if _, err := os.Stat(filepath.Join(o.Dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s survived Discard", name)
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, keep.Name+".age")); err != nil {
		t.Errorf("Discard removed a complete entry: %v", err)
	}
}

func TestOpenDetectsTruncation(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	e := create(t, o, []byte("0123456789"))
	if err := os.Truncate(filepath.Join(o.Dir, e.Name+".age"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(e); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a truncated entry: %v, want ErrCorrupt", err)
	}
}

func TestBadMetadata(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	e := create(t, o, []byte("x"))
	for _, bad := range []string{
		`not json`,
		`{"version":2,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"x"}`,
		`{"version":1,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"x","upload_id":"../x"}`,
		`{"version":1,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"x","other":1}`,
		`{"version":1,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"x","org_key":"k"}`,
		`{"version":1,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"x","recipients_version":3}`,
	} {
		if err := os.WriteFile(filepath.Join(o.Dir, e.Name+".json"), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := o.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Entries) != 0 || !errors.Is(l.Broken[e.Name], ErrCorrupt) {
			t.Errorf("metadata %s: entries %v, broken %v", bad, l.Entries, l.Broken)
		}
	}
}

func TestLock(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	unlock, err := o.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Lock(); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock: %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := o.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	if l, err := o.List(); err != nil || len(l.Entries)+len(l.Partial)+len(l.Broken) != 0 {
		t.Errorf("the lock file shows up in List: %+v, %v", l, err)
	}
}

// TestRecipientsVersion: the organisation key and recipients version an
// entry was encrypted to are kept, and an entry written before they were
// recorded still loads, without them.
func TestRecipientsVersion(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	e, err := createWith(o, Meta{Server: "https://h", OrgKey: "org+1+k", RecipientsVersion: 3}, time.Now(), func(w io.Writer) error {
		_, err := w.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := o.List()
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Meta.OrgKey != "org+1+k" || l.Entries[0].Meta.RecipientsVersion != 3 {
		t.Fatalf("List = %+v, %v", l, err)
	}
	old := `{"version":1,"server":"https://h","size":1,"sha256":"` + e.Meta.SHA256 + `","created":"2026-11-27"}`
	if err := os.WriteFile(filepath.Join(o.Dir, e.Name+".json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err = o.List()
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Meta.OrgKey != "" || l.Entries[0].Meta.RecipientsVersion != 0 {
		t.Fatalf("List of an old entry = %+v, %v", l, err)
	}
}

// TestPendingReadWhileWritten checks an entry read while it is written:
// WaitFor releases a reader once the bytes are on the file, an upload id
// set before Commit lands in N.json, and reading goes on across Commit's
// rename.
func TestPendingReadWhileWritten(t *testing.T) {
	o := Outbox{Dir: filepath.Join(t.TempDir(), "outbox")}
	p, err := o.Begin(Meta{Server: "https://h"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waited := make(chan error)
	go func() { waited <- p.WaitFor(context.Background(), 6) }()
	if _, err := p.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		t.Fatalf("WaitFor(6) returned %v after 3 bytes", err)
	default:
	}
	if _, err := p.Write([]byte("def")); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := p.ReadAt(buf, 0); err != nil || string(buf) != "abcdef" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	if l, err := o.List(); err != nil || len(l.Partial) != 1 || len(l.Entries) != 0 {
		t.Fatalf("List before Commit = %+v, %v; want one partial entry", l, err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	if err := p.SetUploadID(id); err != nil {
		t.Fatal(err)
	}
	// A crash now leaves an upload that resume must delete.
	if l, err := o.List(); err != nil || len(l.Abandoned) != 1 || l.Abandoned[0].Meta.UploadID != id || l.Abandoned[0].Meta.Server != "https://h" {
		t.Fatalf("List before Commit = %+v, %v; want the abandoned upload", l, err)
	}
	committed := make(chan *Entry)
	go func() {
		e, err := p.Committed(context.Background())
		if err != nil {
			t.Error(err)
		}
		committed <- e
	}()
	e, err := p.Commit(now)
	if err != nil {
		t.Fatal(err)
	}
	if c := <-committed; c == nil || c.Meta.SHA256 != e.Meta.SHA256 {
		t.Errorf("Committed = %+v, want %+v", c, e)
	}
	if _, err := p.ReadAt(buf, 0); err != nil || string(buf) != "abcdef" {
		t.Fatalf("ReadAt after Commit = %q, %v", buf, err)
	}
	if err := p.WaitFor(context.Background(), 7); !errors.Is(err, ErrCorrupt) {
		t.Errorf("WaitFor beyond the committed size = %v, want ErrCorrupt", err)
	}
	l, err := o.List()
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Meta.UploadID != id || l.Entries[0].Meta.Size != 6 {
		t.Fatalf("List after Commit = %+v, %v", l, err)
	}
}

// TestPendingAbort checks that an abandoned entry leaves nothing and tells
// its readers why.
func TestPendingAbort(t *testing.T) {
	o := Outbox{Dir: filepath.Join(t.TempDir(), "outbox")}
	p, err := o.Begin(Meta{Server: "https://h"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Write([]byte("abc"))
	stop := errors.New("build failed")
	waited := make(chan error)
	go func() { waited <- p.WaitFor(context.Background(), 4) }()
	go func() {
		_, err := p.Committed(context.Background())
		waited <- err
	}()
	p.Abort(stop)
	for range 2 {
		if err := <-waited; !errors.Is(err, stop) {
			t.Errorf("a reader got %v, want the abort's error", err)
		}
	}
	if des, _ := os.ReadDir(o.Dir); len(des) != 0 {
		t.Errorf("left behind: %v", des)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WaitFor(ctx, 1); err != nil {
		t.Errorf("WaitFor of written bytes = %v", err)
	}
}
