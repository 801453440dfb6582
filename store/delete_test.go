package store

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestDeleteReviewed(t *testing.T) {
	db := openTemp(t)
	kept := submit(t, db, randomBytes(ChunkSize+10), t0)
	gone := submit(t, db, randomBytes(3*ChunkSize+5), t0)
	ack := []byte("ack file")
	when := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)

	// A wrong index changes nothing, not even the other submissions'.
	if _, err := db.DeleteReviewed([]Reviewed{{gone.ID, gone.Index}, {kept.ID, gone.Index}}, ack, when); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong index: %v, want ErrInvalid", err)
	}
	if s, _ := db.Submission(gone.ID); s.Deleted != "" {
		t.Fatal("a refused acknowledgement marked a submission deleted")
	}

	n, err := db.DeleteReviewed([]Reviewed{{gone.ID, gone.Index}}, ack, when)
	if err != nil || n != 1 {
		t.Fatalf("DeleteReviewed = %d, %v", n, err)
	}
	s, err := db.Submission(gone.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Deleted != "2026-12-07" || s.Ack == 0 || !s.Collected {
		t.Fatalf("record after deletion: %+v", s)
	}
	if got, err := db.AckFile(s.Ack); err != nil || !bytes.Equal(got, ack) {
		t.Fatalf("AckFile = %q, %v", got, err)
	}
	if complete, partial, err := db.ChunkState(gone.ID); err != nil || len(complete)+len(partial) != 0 {
		t.Fatalf("chunks left: %v %v %v", complete, partial, err)
	}
	if _, err := db.NewReader(gone.ID); !errors.Is(err, ErrDeleted) {
		t.Fatalf("NewReader of a deleted submission: %v, want ErrDeleted", err)
	}
	if leaves, err := db.LogLeaves(0, 2); err != nil || len(leaves) != 2 {
		t.Fatalf("log leaves after deletion: %d, %v", len(leaves), err)
	}
	// The other submission is whole.
	r, err := db.NewReader(kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil || int64(len(data)) != kept.Size {
		t.Fatalf("kept submission: %d bytes, %v", len(data), err)
	}
	// Idempotent: the first date and acknowledgement stay.
	n, err = db.DeleteReviewed([]Reviewed{{gone.ID, gone.Index}}, []byte("later"), when.Add(48*time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("repeat = %d, %v", n, err)
	}
	if s2, _ := db.Submission(gone.ID); s2.Deleted != s.Deleted || s2.Ack != s.Ack {
		t.Fatalf("repeat changed the record: %+v", s2)
	}
	sum, err := db.Summary()
	if err != nil || sum.Submissions != 2 || sum.Bytes != kept.Size {
		t.Fatalf("summary %+v, %v", sum, err)
	}
}

func TestWitnesses(t *testing.T) {
	db := openTemp(t)
	if ws, err := db.Witnesses(); err != nil || len(ws) != 0 {
		t.Fatalf("Witnesses on a new store = %v, %v", ws, err)
	}
	w := Witness{Name: "alice", Key: "k+1+2", Added: t0}
	if err := db.AddWitness(w); err != nil {
		t.Fatal(err)
	}
	if err := db.AddWitness(w); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	ws, err := db.Witnesses()
	if err != nil || len(ws) != 1 || ws[0].Key != w.Key || !ws[0].Added.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Witnesses = %+v, %v", ws, err)
	}
	if err := db.RemoveWitness("alice"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveWitness("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// TestFinishDeletions: a crash after the records were marked deleted and
// before their chunks went leaves the ciphertext in the file; the sweep the
// server runs when it starts deletes it, and then has nothing left to do.
func TestFinishDeletions(t *testing.T) {
	db := openTemp(t)
	kept := submit(t, db, randomBytes(ChunkSize+10), t0)
	gone := submit(t, db, randomBytes(2*ChunkSize+5), t0)
	crash := errors.New("crash")
	testHookMarked = func() error { return crash }
	_, err := db.DeleteReviewed([]Reviewed{{gone.ID, gone.Index}}, []byte("ack"), t0)
	testHookMarked = nil
	if !errors.Is(err, crash) {
		t.Fatalf("DeleteReviewed = %v, want the crash", err)
	}
	if complete, _, err := db.ChunkState(gone.ID); err != nil || len(complete) != 3 {
		t.Fatalf("after the crash: %d chunks, %v; want all 3 still there", len(complete), err)
	}
	n, err := db.FinishDeletions()
	if err != nil || n != 1 {
		t.Fatalf("FinishDeletions = %d, %v; want 1", n, err)
	}
	if complete, partial, err := db.ChunkState(gone.ID); err != nil || len(complete)+len(partial) != 0 {
		t.Fatalf("after the sweep: %d chunks, %d partial, %v", len(complete), len(partial), err)
	}
	if complete, _, err := db.ChunkState(kept.ID); err != nil || len(complete) != 2 {
		t.Fatalf("the sweep touched a submission nobody acknowledged: %d chunks, %v", len(complete), err)
	}
	if n, err := db.FinishDeletions(); err != nil || n != 0 {
		t.Fatalf("second FinishDeletions = %d, %v; want 0", n, err)
	}
	// A deletion that was not interrupted leaves nothing to sweep.
	if _, err := db.DeleteReviewed([]Reviewed{{kept.ID, kept.Index}}, []byte("ack 2"), t0); err != nil {
		t.Fatal(err)
	}
	if n, err := db.FinishDeletions(); err != nil || n != 0 {
		t.Fatalf("FinishDeletions after a whole deletion = %d, %v; want 0", n, err)
	}
}
