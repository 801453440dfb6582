package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/store"
)

// newWitness makes a witness key and, if register is set, registers it.
func (e *testEnv) newWitness(name string, register bool) *witness.Key {
	e.t.Helper()
	skey, err := witness.NewKey("reviewer-machine")
	if err != nil {
		e.t.Fatal(err)
	}
	k, err := witness.ParseKey(skey)
	if err != nil {
		e.t.Fatal(err)
	}
	if register {
		if _, err := addWitness(e.db, name, k.VerifierKey(), e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	return k
}

// submitted uploads n submissions of random ciphertext and returns their
// records and files, in log order.
func (e *testEnv) submitted(n, size int) ([]store.Submission, [][]byte) {
	e.t.Helper()
	var subs []store.Submission
	var files [][]byte
	for range n {
		file := encrypt(e.t, randBytes(e.t.(*testing.T), size), e.recipient)
		w := e.upload(file)
		expect(e.t, w, http.StatusCreated, "")
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.ID == "" {
			e.t.Fatalf("finish response %s: %v", w.Body.String(), err)
		}
		sub, err := e.db.Submission(r.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		subs = append(subs, sub)
		files = append(files, file)
	}
	return subs, files
}

func (e *testEnv) checkpointNote() []byte {
	e.t.Helper()
	_, raw := e.checkpoint()
	return []byte(raw)
}

func (e *testEnv) signAck(k *witness.Key, cp []byte, indexes ...int64) []byte {
	e.t.Helper()
	data, err := witness.Sign(k, cp, e.logKey(), indexes, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

func (e *testEnv) postAck(ack []byte) *ackResponse {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/v1/ack", token: e.collect, body: ack, header: map[string]string{"Content-Type": "application/json"}})
	expect(e.t, w, http.StatusOK, "")
	var r ackResponse
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		e.t.Fatal(err)
	}
	return &r
}

func TestAckDeletesExactlyWhatWasAcknowledged(t *testing.T) {
	e := newTestEnv(t)
	k := e.newWitness("reviewer-1", true)
	subs, files := e.submitted(3, 2*ChunkSize+7)
	cp := e.checkpointNote()
	e.clock.advance(10 * 24 * time.Hour)
	ack := e.signAck(k, cp, subs[0].Index, subs[2].Index)

	// Only a collect token may send one.
	w := e.do(req{method: "POST", path: "/v1/ack", token: e.submit, body: ack})
	expect(t, w, http.StatusForbidden, "")

	r := e.postAck(ack)
	if r.Witness != "reviewer-1" || r.Acknowledged != 2 || r.Deleted != 2 || r.Date != "2026-12-07" || r.CheckpointAt != 3 {
		t.Fatalf("ack response %+v", r)
	}
	for i, sub := range subs {
		w := e.do(req{method: "GET", path: "/v1/submissions/" + sub.ID, token: e.collect})
		if i == 1 {
			expect(t, w, http.StatusOK, "")
			if !bytes.Equal(w.Body.Bytes(), files[1]) {
				t.Fatal("the submission not acknowledged changed")
			}
			continue
		}
		expect(t, w, http.StatusGone, "deleted on 2026-12-07 after a reviewer acknowledged it")
		rec, err := e.db.Submission(sub.ID)
		if err != nil || rec.Deleted != "2026-12-07" {
			t.Fatalf("record of %s: %+v, %v", sub.ID, rec, err)
		}
	}
	expect(t, e.do(req{method: "GET", path: "/v1/submissions", token: e.collect}), http.StatusOK, `"index":2,"deleted":"2026-12-07"`)
	// The log is whole: leaves, inclusion proofs, receipts.
	expect(t, e.do(req{method: "GET", path: "/v1/log/leaves?start=0&end=3", token: e.submit}), http.StatusOK, subs[0].ID)
	expect(t, e.do(req{method: "GET", path: "/v1/log/inclusion?index=0&size=3", token: e.submit}), http.StatusOK, "proof")
	if _, err := e.srv.submissionReceipt(subs[0]); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if r := e.postAck(ack); r.Deleted != 0 || r.Acknowledged != 2 {
		t.Fatalf("repeat: %+v", r)
	}
	// The acknowledgement is served for the deleted ones only.
	w = e.do(req{method: "GET", path: "/v1/log/ack?index=2", token: e.submit})
	expect(t, w, http.StatusOK, "")
	var la ackEntry
	if err := json.Unmarshal(w.Body.Bytes(), &la); err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewVerifier(la.WitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := witness.Open(la.Ack, e.logKey(), []*witness.Verifier{v}); err != nil || la.Witness != "reviewer-1" || la.Deleted != "2026-12-07" || len(a.Indexes) != 2 {
		t.Fatalf("served acknowledgement: %+v, %v", la, err)
	}
	expect(t, e.do(req{method: "GET", path: "/v1/log/ack?index=1", token: e.submit}), http.StatusNotFound, "has not been acknowledged")
	expect(t, e.do(req{method: "GET", path: "/v1/log/ack?index=3", token: e.submit}), http.StatusNotFound, "index 3 is beyond the log, which has 3 leaves")
	if !strings.Contains(e.logs.String(), "deleted ciphertext after review") {
		t.Error("the deletion is not in the server log")
	}
}

// TestAckRefused: nothing is deleted unless a registered witness signed,
// over a checkpoint of this very log.
func TestAckRefused(t *testing.T) {
	e := newTestEnv(t)
	k := e.newWitness("reviewer-1", true)
	stranger := e.newWitness("", false)
	subs, _ := e.submitted(2, 100)
	cp := e.checkpointNote()

	other := newTestEnv(t)
	otherK := other.newWitness("reviewer-1", true)
	other.submitted(2, 100)
	otherAck := other.signAck(otherK, other.checkpointNote(), 0, 1)

	// A checkpoint signed by this log's key but of another tree (a fork,
	// or a database restored from an older backup).
	signer := e.srv.intake.signer
	forked, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: signer.Name(), Size: 2, Root: [32]byte{9}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: signer.Name(), Size: 5, Root: [32]byte{9}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	good := e.signAck(k, cp, 0, 1)
	var f map[string]any
	json.Unmarshal(good, &f)
	f["statement"] = strings.Replace(f["statement"].(string), "opened 2\n0\n1\n", "opened 1\n0\n", 1)
	edited, _ := json.Marshal(f)

	for _, tc := range []struct {
		name   string
		ack    []byte
		status int
		msg    string
	}{
		{"unregistered witness", e.signAck(stranger, cp, 0, 1), http.StatusForbidden, "not cosigned by a witness registered"},
		{"other log", otherAck, http.StatusForbidden, "of another log"},
		{"forked checkpoint", e.signAck(k, forked, 0), http.StatusConflict, "another root"},
		{"checkpoint ahead of the log", e.signAck(k, ahead, 0), http.StatusConflict, "was the server restored"},
		{"edited statement", edited, http.StatusForbidden, "does not verify"},
		{"not JSON", []byte("hello"), http.StatusBadRequest, "malformed acknowledgement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.in(t).do(req{method: "POST", path: "/v1/ack", token: e.collect, body: tc.ack})
			expect(t, w, tc.status, tc.msg)
			for _, sub := range subs {
				if rec, _ := e.db.Submission(sub.ID); rec.Deleted != "" {
					t.Fatalf("%s deleted after a refused acknowledgement", sub.ID)
				}
			}
		})
	}
	// A removed witness's acknowledgements no longer count.
	if err := removeWitness(e.db, "reviewer-1"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(req{method: "POST", path: "/v1/ack", token: e.collect, body: good}), http.StatusForbidden, "not cosigned")
}

// TestAckThenCompactLeavesNoCiphertext is the test of issue 12: a
// submission of known random ciphertext is acknowledged and deleted, the
// database compacted, and then no 64-byte window of that ciphertext is
// anywhere in the data directory; the log still checks.
func TestAckThenCompactLeavesNoCiphertext(t *testing.T) {
	e := newTestEnv(t)
	k := e.newWitness("reviewer-1", true)
	subs, files := e.submitted(2, 3*ChunkSize)
	secret := files[1][ChunkSize : 3*ChunkSize] // random ciphertext, past the header
	ack := e.signAck(k, e.checkpointNote(), subs[1].Index)
	if r := e.postAck(ack); r.Deleted != 1 {
		t.Fatalf("ack response %+v", r)
	}
	e.db.Close()
	if found := fragmentsIn(t, e.dir, secret); len(found) == 0 {
		t.Fatal("the deleted ciphertext is not in the file before compaction: the test would prove nothing")
	}
	if _, err := Compact(e.dir); err != nil {
		t.Fatal(err)
	}
	if found := fragmentsIn(t, e.dir, secret); len(found) != 0 {
		t.Fatalf("acknowledged ciphertext still in %v after compaction", found)
	}
	if found := fragmentsIn(t, e.dir, files[0][ChunkSize:2*ChunkSize]); len(found) == 0 {
		t.Fatal("the submission not acknowledged is gone too")
	}
	cr, err := Check(DBPath(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	if cr.Summary.LogSize != 2 || cr.Summary.Submissions != 2 || cr.Summary.Bytes != int64(len(files[0])) {
		t.Fatalf("after compaction: %+v", cr.Summary)
	}
}

// FuzzAck sends POST /v1/ack arbitrary bodies, seeded with a valid
// acknowledgement: every answer is a 200 or a specific 4xx, never a 500.
func FuzzAck(f *testing.F) {
	e := newTestEnv(f)
	k := e.newWitness("reviewer-1", true)
	for range 3 {
		expect(f, e.upload(e.testFile(100)), http.StatusCreated, "")
	}
	f.Add(e.signAck(k, e.checkpointNote(), 0, 2))
	f.Add([]byte(`{"version":1,"checkpoint":"","statement":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := e.in(t)
		w := e.do(req{method: "POST", path: "/v1/ack", token: e.collect, body: body})
		switch w.Code {
		case 200, 400, 403, 409, 413:
		default:
			t.Fatalf("POST /v1/ack with %q: status %d %s", body, w.Code, w.Body.String())
		}
	})
}
