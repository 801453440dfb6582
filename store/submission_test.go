package store

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFinishUpload(t *testing.T) {
	db := openTemp(t)
	data := randomBytes(2*ChunkSize + 100)

	// ready makes an upload holding the given chunks of data (nil: all).
	ready := func(size int64, sha string, chunks []int) string {
		id := newID(t)
		if err := db.CreateUpload(Upload{ID: id, Size: size, SHA256: sha, Created: t0, Expires: future}); err != nil {
			t.Fatal(err)
		}
		if chunks == nil {
			chunks = []int{0, 1, 2}
		}
		for _, i := range chunks {
			chunk := []byte("past the end")
			if i*ChunkSize < len(data) {
				chunk = data[i*ChunkSize : min(len(data), (i+1)*ChunkSize)]
			}
			if err := db.PutChunk(id, i, chunk); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	good := submissionOf("", data, t0)
	with := func(f func(*Submission)) Submission {
		s := good
		f(&s)
		return s
	}
	size := int64(len(data))

	done := ready(size, "", nil)
	if _, err := db.FinishUpload(done, good, leafOf(good)); err != nil {
		t.Fatal(err)
	}
	// An upload of unknown size whose stored chunks do not cover
	// whole chunks before the last.
	ragged := newID(t)
	createUpload(t, db, ragged, -1)
	if err := db.PutChunk(ragged, 0, data[:ChunkSize-1]); err != nil {
		t.Fatal(err)
	}
	if err := db.PutChunk(ragged, 1, data[:101]); err != nil {
		t.Fatal(err)
	}
	extra := ready(-1, "", []int{0, 1, 2, 3})

	tests := []struct {
		name    string
		id      string
		s       Submission
		leaf    []byte // nil: leafOf(s)
		wantErr error
	}{
		{"declared size", ready(size, "", nil), good, nil, nil},
		{"declared sha256", ready(size, good.SHA256, nil), good, nil, nil},
		{"unknown size", ready(-1, "", nil), good, nil, nil},
		{"id filled in", ready(size, "", nil), with(func(s *Submission) { s.ID = "" }), nil, nil},
		{"empty", ready(0, "", []int{}), submissionOf("", nil, t0), nil, nil},
		{"already finished", done, good, nil, ErrUploadComplete},
		{"unknown upload", newID(t), good, nil, ErrNotFound},
		{"missing first chunk", ready(size, "", []int{1, 2}), good, nil, ErrIncomplete},
		{"missing middle chunk", ready(size, "", []int{0, 2}), good, nil, ErrIncomplete},
		{"missing last chunk", ready(size, "", []int{0, 1}), good, nil, ErrIncomplete},
		{"extra chunk", extra, good, nil, ErrIncomplete},
		{"short chunk before last", ragged, submissionOf("", data[:2*ChunkSize], t0), nil, ErrIncomplete},
		{"size differs from chunks", ready(-1, "", nil), with(func(s *Submission) { s.Size-- }), nil, ErrIncomplete},
		{"size differs from declared", ready(size, "", nil), with(func(s *Submission) { s.Size++ }), nil, ErrInvalid},
		{"sha256 differs from declared", ready(size, strings.Repeat("0", 64), nil), good, nil, ErrInvalid},
		{"other id", ready(size, "", nil), with(func(s *Submission) { s.ID = newID(t) }), nil, ErrInvalid},
		{"chunks inconsistent with size", ready(size, "", nil), with(func(s *Submission) { s.Chunks = 2 }), nil, ErrInvalid},
		{"negative size", ready(size, "", nil), with(func(s *Submission) { s.Size = -1; s.Chunks = 0 }), nil, ErrInvalid},
		{"bad sha256", ready(size, "", nil), with(func(s *Submission) { s.SHA256 = "xyz" }), nil, ErrInvalid},
		{"no received time", ready(size, "", nil), with(func(s *Submission) { s.Received = time.Time{} }), nil, ErrInvalid},
		{"empty leaf", ready(size, "", nil), good, []byte{}, ErrInvalid},
		{"leaf too long", ready(size, "", nil), good, make([]byte, MaxLeafSize+1), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, upBefore := db.Upload(tt.id)
			leaf := tt.leaf
			if leaf == nil {
				leaf = leafOf(tt.s)
			}
			sizeBefore, err := db.LogSize()
			if err != nil {
				t.Fatal(err)
			}
			index, err := db.FinishUpload(tt.id, tt.s, leaf)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishUpload: %v, want %v", err, tt.wantErr)
			}
			sizeAfter, serr := db.LogSize()
			if serr != nil {
				t.Fatal(serr)
			}
			_, upErr := db.Upload(tt.id)
			got, subErr := db.Submission(tt.id)
			if err != nil {
				t.Log(err)
				// A refused finish must change nothing.
				if (upBefore == nil) != (upErr == nil) {
					t.Errorf("upload record changed by a failed finish: %v -> %v", upBefore, upErr)
				}
				if tt.wantErr != ErrUploadComplete && subErr == nil {
					t.Error("failed finish created a submission")
				}
				if sizeAfter != sizeBefore {
					t.Errorf("failed finish changed the log size from %d to %d", sizeBefore, sizeAfter)
				}
				return
			}
			if index != sizeBefore || sizeAfter != sizeBefore+1 {
				t.Errorf("FinishUpload returned index %d, log size %d -> %d; want index %d and one more leaf", index, sizeBefore, sizeAfter, sizeBefore)
			}
			if got, err := db.LogLeaves(index, index+1); err != nil || len(got) != 1 || !bytes.Equal(got[0], leaf) {
				t.Errorf("LogLeaves(%d) = %q, %v; want the leaf", index, got, err)
			}
			if !errors.Is(upErr, ErrNotFound) {
				t.Errorf("upload still present after finish: %v", upErr)
			}
			if subErr != nil {
				t.Fatal(subErr)
			}
			if got.ID != tt.id || got.Size != tt.s.Size || got.SHA256 != tt.s.SHA256 || got.Chunks != tt.s.Chunks ||
				!got.Received.Equal(tt.s.Received) || got.Index != index || got.Collected {
				t.Errorf("Submission = %+v, want %+v", got, tt.s)
			}
			if rd := readAll(t, db, tt.id); int64(len(rd)) != tt.s.Size || !bytes.Equal(rd, data[:len(rd)]) {
				t.Error("submission content differs")
			}
		})
	}
}

func TestSubmissionsAndMarkCollected(t *testing.T) {
	db := openTemp(t)
	// Received times out of insertion order: the listing follows the log
	// (insertion) order regardless, and ids are random.
	times := []time.Time{t0.Add(time.Hour), t0, t0.Add(time.Hour), t0.Add(-time.Hour)}
	var want []Submission
	for i, rt := range times {
		s := submit(t, db, []byte{byte(i)}, rt)
		if s.Index != int64(i) {
			t.Fatalf("submission %d got log index %d", i, s.Index)
		}
		want = append(want, s)
	}
	ids := func(ss []Submission) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}

	if _, err := db.Submission(newID(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Submission(unknown): %v, want ErrNotFound", err)
	}
	pendingUpload := newID(t)
	createUpload(t, db, pendingUpload, 1)
	if _, err := db.Submission(pendingUpload); !errors.Is(err, ErrNotFound) {
		t.Errorf("Submission(open upload): %v, want ErrNotFound", err)
	}

	collected := want[1].ID
	for _, tt := range []struct {
		name    string
		id      string
		wantErr error
	}{
		{"first", collected, nil},
		{"again", collected, nil},
		{"unknown", newID(t), ErrNotFound},
		{"open upload", pendingUpload, ErrNotFound},
	} {
		if err := db.MarkCollected(tt.id); !errors.Is(err, tt.wantErr) {
			t.Errorf("MarkCollected %s: %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	s, err := db.Submission(collected)
	if err != nil || !s.Collected {
		t.Errorf("Submission after MarkCollected = %+v, %v", s, err)
	}

	for _, tt := range []struct {
		pendingOnly bool
		want        []string
	}{
		{false, ids(want)},
		{true, slices.DeleteFunc(ids(want), func(id string) bool { return id == collected })},
	} {
		got, err := db.Submissions(tt.pendingOnly)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("Submissions(%v) = %v, want %v", tt.pendingOnly, ids(got), tt.want)
		}
		for _, s := range got {
			if s.Received.Location() != time.UTC {
				t.Errorf("Received %v not in UTC", s.Received)
			}
		}
	}
}

func TestReceivedStoredInUTC(t *testing.T) {
	db := openTemp(t)
	local := time.Date(2026, 11, 28, 1, 0, 0, 0, time.FixedZone("KST", 9*3600))
	s := submit(t, db, []byte("x"), local)
	got, err := db.Submission(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Received.Equal(local) || got.Received.Location() != time.UTC {
		t.Errorf("Received = %v, want %v in UTC", got.Received, local.UTC())
	}
}

func TestSubmitWhole(t *testing.T) {
	db := openTemp(t)
	data := randomBytes(10 << 10)
	// Concurrent calls share commits, and each gets its own log index.
	var wg sync.WaitGroup
	subs := make([]Submission, 16)
	errs := make([]error, len(subs))
	for i := range subs {
		subs[i] = submissionOf(newID(t), data, t0)
		wg.Go(func() {
			subs[i].Index, errs[i] = db.SubmitWhole(subs[i], data, leafOf(subs[i]))
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, s := range subs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[s.Index] {
			t.Fatalf("log index %d given twice", s.Index)
		}
		seen[s.Index] = true
		got, err := db.Submission(s.ID)
		if err != nil || got != s {
			t.Fatalf("Submission = %+v, %v; want %+v", got, err, s)
		}
		if chunk, err := db.ReadChunk(s.ID, 0); err != nil || !bytes.Equal(chunk, data) {
			t.Fatalf("ReadChunk: %v", err)
		}
	}
	if n, err := db.LogSize(); err != nil || n != int64(len(subs)) {
		t.Fatalf("LogSize = %d, %v", n, err)
	}
	if got := pageAll(t, db, true, MaxSubmissionsPage); len(got) != len(subs) {
		t.Errorf("%d pending, want %d", len(got), len(subs))
	}

	s := subs[0]
	if _, err := db.SubmitWhole(s, data, leafOf(s)); !errors.Is(err, ErrExists) {
		t.Errorf("same id again: %v, want ErrExists", err)
	}
	other := submissionOf(newID(t), data, t0)
	for name, tt := range map[string]struct {
		s    Submission
		data []byte
	}{
		"sha256 of other data": {other, randomBytes(10 << 10)},
		"empty":                {submissionOf(newID(t), nil, t0), nil},
		"two chunks":           {submissionOf(newID(t), make([]byte, ChunkSize+1), t0), make([]byte, ChunkSize+1)},
	} {
		if _, err := db.SubmitWhole(tt.s, tt.data, leafOf(tt.s)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
