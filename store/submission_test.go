package store

import (
	"bytes"
	"errors"
	"slices"
	"strings"
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
	if err := db.FinishUpload(done, good); err != nil {
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
		wantErr error
	}{
		{"declared size", ready(size, "", nil), good, nil},
		{"declared sha256", ready(size, good.SHA256, nil), good, nil},
		{"unknown size", ready(-1, "", nil), good, nil},
		{"id filled in", ready(size, "", nil), with(func(s *Submission) { s.ID = "" }), nil},
		{"empty", ready(0, "", []int{}), submissionOf("", nil, t0), nil},
		{"already finished", done, good, ErrUploadComplete},
		{"unknown upload", newID(t), good, ErrNotFound},
		{"missing first chunk", ready(size, "", []int{1, 2}), good, ErrIncomplete},
		{"missing middle chunk", ready(size, "", []int{0, 2}), good, ErrIncomplete},
		{"missing last chunk", ready(size, "", []int{0, 1}), good, ErrIncomplete},
		{"extra chunk", extra, good, ErrIncomplete},
		{"short chunk before last", ragged, submissionOf("", data[:2*ChunkSize], t0), ErrIncomplete},
		{"size differs from chunks", ready(-1, "", nil), with(func(s *Submission) { s.Size-- }), ErrIncomplete},
		{"size differs from declared", ready(size, "", nil), with(func(s *Submission) { s.Size++ }), ErrInvalid},
		{"sha256 differs from declared", ready(size, strings.Repeat("0", 64), nil), good, ErrInvalid},
		{"other id", ready(size, "", nil), with(func(s *Submission) { s.ID = newID(t) }), ErrInvalid},
		{"chunks inconsistent with size", ready(size, "", nil), with(func(s *Submission) { s.Chunks = 2 }), ErrInvalid},
		{"negative size", ready(size, "", nil), with(func(s *Submission) { s.Size = -1; s.Chunks = 0 }), ErrInvalid},
		{"bad sha256", ready(size, "", nil), with(func(s *Submission) { s.SHA256 = "xyz" }), ErrInvalid},
		{"no received time", ready(size, "", nil), with(func(s *Submission) { s.Received = time.Time{} }), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, upBefore := db.Upload(tt.id)
			err := db.FinishUpload(tt.id, tt.s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishUpload: %v, want %v", err, tt.wantErr)
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
				return
			}
			if !errors.Is(upErr, ErrNotFound) {
				t.Errorf("upload still present after finish: %v", upErr)
			}
			if subErr != nil {
				t.Fatal(subErr)
			}
			if got.ID != tt.id || got.Size != tt.s.Size || got.SHA256 != tt.s.SHA256 || got.Chunks != tt.s.Chunks ||
				!got.Received.Equal(tt.s.Received) || !bytes.Equal(got.Receipt, tt.s.Receipt) || got.Collected {
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
	// Received times out of insertion order, two of them equal so that
	// the id decides.
	times := []time.Time{t0.Add(time.Hour), t0, t0.Add(time.Hour), t0.Add(-time.Hour)}
	var all []Submission
	for i, rt := range times {
		all = append(all, submit(t, db, []byte{byte(i)}, rt))
	}
	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b Submission) int {
		if c := a.Received.Compare(b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
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
