package review

import (
	"testing"

	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

// TestProgress checks that Verify and Open report the reading of every
// ciphertext, ending at its full size, so the reviewer's progress line
// covers both long passes over the bundle.
func TestProgress(t *testing.T) {
	e := newEnv(t)
	ids := e.submitN(2)
	dir := e.bundle(e.log, 0, 2, fixture.BundleOptions{})

	type report struct{ done, total, calls int64 }
	record := func(got map[string]*report) ProgressFunc {
		return func(id string, done, total int64) {
			r := got[id]
			if r == nil {
				r = &report{}
				got[id] = r
			}
			if done < r.done || done > total {
				t.Errorf("progress of %s went from %d to %d of %d", id, r.done, done, total)
			}
			r.done, r.total = done, total
			r.calls++
		}
	}
	check := func(phase string, got map[string]*report) {
		t.Helper()
		if len(got) != len(ids) {
			t.Fatalf("%s: progress for %d submissions, want %d", phase, len(got), len(ids))
		}
		for i, id := range ids {
			r := got[id]
			size := e.log.Leaf(int64(i)).Size
			if r == nil || r.done != size || r.total != size {
				t.Errorf("%s: progress of %s ended at %+v, want %d of %d", phase, id, r, size, size)
			}
		}
	}

	verified := map[string]*report{}
	w := e.w
	w.Progress = record(verified)
	v, err := Verify(dir, w)
	if err != nil {
		t.Fatal(err)
	}
	check("verify", verified)

	opened := map[string]*report{}
	opt := e.options()
	opt.Progress = record(opened)
	res, err := Open(v, e.out, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != Opened {
			t.Fatalf("%s: %v", r.ID, r.Err)
		}
	}
	check("open", opened)
}
