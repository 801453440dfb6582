package collect

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

const testKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

type fakeSub struct {
	api.Submission
	data      []byte
	collected bool
}

// fakeServer serves submissions from memory; its knobs make it lie or fail.
type fakeServer struct {
	subs      []*fakeSub
	downloads int
	// failMark makes MarkCollected fail with a network error.
	failMark bool
	// body, if set, replaces the data sent for a download.
	body func(s *fakeSub) []byte
	// header, if set, replaces the Ciphertext-SHA256 header.
	header string
}

func (f *fakeServer) add(t *testing.T, size int) *fakeSub {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var id [16]byte
	rand.Read(id[:])
	s := &fakeSub{data: data}
	s.ID = hex.EncodeToString(id[:])
	s.Size = int64(size)
	s.SHA256 = hex.EncodeToString(sum[:])
	s.Received = "2026-11-27"
	s.Receipt = json.RawMessage(fmt.Sprintf(`{"id": %q}`, s.ID))
	f.subs = append(f.subs, s)
	return s
}

func (f *fakeServer) Pending(context.Context) ([]api.Submission, error) {
	var list []api.Submission
	for _, s := range f.subs {
		if !s.collected {
			list = append(list, s.Submission)
		}
	}
	return list, nil
}

func (f *fakeServer) Download(_ context.Context, id string) (io.ReadCloser, int64, string, error) {
	for _, s := range f.subs {
		if s.ID == id {
			f.downloads++
			data, header := s.data, s.SHA256
			if f.body != nil {
				data = f.body(s)
			}
			if f.header != "" {
				header = f.header
			}
			return io.NopCloser(bytes.NewReader(data)), -1, header, nil
		}
	}
	return nil, 0, "", &api.StatusError{Code: 404}
}

func (f *fakeServer) MarkCollected(_ context.Context, id string) error {
	if f.failMark {
		return errors.New("connection reset by peer")
	}
	for _, s := range f.subs {
		if s.ID == id {
			s.collected = true
		}
	}
	return nil
}

func collector(f *fakeServer, dir string) *Collector {
	return &Collector{
		Server:     f,
		Dir:        dir,
		ReceiptKey: testKey,
		VerifyReceipt: func(raw []byte, s api.Submission) error {
			if !bytes.Contains(raw, []byte(s.ID)) {
				return errors.New("receipt for another submission")
			}
			return nil
		},
		Retry: retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 2},
		Sleep: func(context.Context, time.Duration) error { return nil },
		Now:   func() time.Time { return time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC) },
	}
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{}
	a, b := f.add(t, 3000), f.add(t, 70000)
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Downloaded != 2 || sum.Present != 0 || sum.Bundle != 2 || len(sum.Failed) != 0 {
		t.Errorf("summary %+v", sum)
	}
	bd, err := bundle.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bd.ReceiptKey != testKey || bd.Created != "2026-11-28T09:00:00Z" || len(bd.Submissions) != 2 {
		t.Errorf("bundle %+v", bd)
	}
	for _, s := range []*fakeSub{a, b} {
		got, err := os.ReadFile(filepath.Join(dir, s.ID+".age"))
		if err != nil || !bytes.Equal(got, s.data) {
			t.Errorf("%s.age: %v, equal=%v", s.ID, err, bytes.Equal(got, s.data))
		}
		rec, err := os.ReadFile(filepath.Join(dir, s.ID+".receipt.json"))
		if err != nil || !json.Valid(rec) || !bytes.Contains(rec, []byte(s.ID)) {
			t.Errorf("%s.receipt.json = %s, %v", s.ID, rec, err)
		}
		if !s.collected {
			t.Errorf("%s not marked collected", s.ID)
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".part") || strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("leftover %s", de.Name())
		}
	}
}

// TestCollectInterrupted: the bundle is complete but the server was never
// told; the next run must not download again nor add a second entry.
func TestCollectInterrupted(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{failMark: true}
	s := f.add(t, 5000)
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Failed) != 1 || s.collected || f.downloads != 1 {
		t.Fatalf("first run: summary %+v, collected %v, downloads %d", sum, s.collected, f.downloads)
	}
	f.failMark = false
	sum, err = collector(f, dir).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Present != 1 || sum.Downloaded != 0 || f.downloads != 1 || !s.collected {
		t.Errorf("second run: summary %+v, downloads %d, collected %v", sum, f.downloads, s.collected)
	}
	bd, _ := bundle.Read(dir)
	if len(bd.Submissions) != 1 {
		t.Errorf("bundle has %d entries, want 1", len(bd.Submissions))
	}
}

func TestCollectReplacesDamagedFile(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{}
	s := f.add(t, 100)
	if err := os.WriteFile(filepath.Join(dir, s.ID+".age"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := collector(f, dir).Run(context.Background())
	if err != nil || sum.Downloaded != 1 {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, s.ID+".age"))
	if !bytes.Equal(got, s.data) {
		t.Error("damaged file was not replaced")
	}
}

func TestCollectRefusesLies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(f *fakeServer, s *fakeSub)
		want  string
	}{
		{"swapped content", func(f *fakeServer, s *fakeSub) {
			f.body = func(*fakeSub) []byte { return bytes.Repeat([]byte{1}, int(s.Size)) }
		}, "sha256"},
		{"extra bytes", func(f *fakeServer, s *fakeSub) {
			f.body = func(s *fakeSub) []byte { return append(bytes.Clone(s.data), 0) }
		}, "received"},
		{"short", func(f *fakeServer, s *fakeSub) {
			f.body = func(s *fakeSub) []byte { return s.data[:10] }
		}, "received 10 bytes"},
		{"header", func(f *fakeServer, s *fakeSub) { f.header = strings.Repeat("0", 64) }, "Ciphertext-SHA256"},
		{"receipt", func(f *fakeServer, s *fakeSub) { s.Receipt = json.RawMessage(`{"id":"other"}`) }, "receipt"},
		{"bad id", func(f *fakeServer, s *fakeSub) { s.ID = "../../etc/passwd" }, "malformed submission id"},
		{"bad size", func(f *fakeServer, s *fakeSub) { s.Size = -1 }, "impossible size"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &fakeServer{}
			s := f.add(t, 500)
			tt.setup(f, s)
			sum, err := collector(f, dir).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Failed) != 1 || sum.Downloaded != 0 {
				t.Fatalf("summary %+v, want one failure", sum)
			}
			for _, err := range sum.Failed {
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q does not mention %q", err, tt.want)
				}
			}
			if s.collected {
				t.Error("a refused submission was marked collected")
			}
			des, _ := os.ReadDir(dir)
			for _, de := range des {
				if de.Name() != bundle.FileName {
					t.Errorf("refused submission left %s", de.Name())
				}
			}
			if f.downloads > 1 {
				t.Errorf("a mismatching download was retried %d times", f.downloads)
			}
		})
	}
}

func TestCollectOtherKey(t *testing.T) {
	dir := t.TempDir()
	other := bundle.New("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", time.Now())
	if err := other.Write(dir); err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{}
	f.add(t, 10)
	if _, err := collector(f, dir).Run(context.Background()); !errors.Is(err, ErrOtherKey) {
		t.Errorf("Run = %v, want ErrOtherKey", err)
	}
	if f.downloads != 0 {
		t.Error("downloaded into another server's bundle")
	}
}
