package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
)

// submitN makes n one-shot submissions and returns their receipts, each as
// the client got it.
func (e *testEnv) submitN(n int) []*receipt.Receipt {
	e.t.Helper()
	var rs []*receipt.Receipt
	for i := range n {
		w := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(100 + i)})
		expect(e.t, w, http.StatusCreated, "")
		rc, err := receipt.Parse(w.Body.Bytes())
		if err != nil {
			e.t.Fatal(err)
		}
		rs = append(rs, rc)
	}
	return rs
}

// checkpoint fetches and verifies the newest checkpoint.
func (e *testEnv) checkpoint() (intakelog.Checkpoint, string) {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/v1/log/checkpoint", token: e.submit})
	expect(e.t, w, http.StatusOK, "")
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		e.t.Errorf("checkpoint Content-Type %q", ct)
	}
	cp, err := intakelog.OpenCheckpoint(w.Body.Bytes(), e.logKey())
	if err != nil {
		e.t.Fatalf("checkpoint %q: %v", w.Body.String(), err)
	}
	return cp, w.Body.String()
}

// getProof fetches a proof route and decodes it.
func (e *testEnv) getProof(path string) []tlog.Hash {
	e.t.Helper()
	w := e.do(req{method: "GET", path: path, token: e.collect})
	expect(e.t, w, http.StatusOK, "")
	var resp struct {
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Proof == nil {
		e.t.Fatalf("%s: %s (%v)", path, w.Body.String(), err)
	}
	proof, err := intakelog.DecodeProof(resp.Proof)
	if err != nil {
		e.t.Fatal(err)
	}
	return proof
}

func (e *testEnv) getLeaves(start, end int64) []leafEntry {
	e.t.Helper()
	w := e.do(req{method: "GET", path: fmt.Sprintf("/v1/log/leaves?start=%d&end=%d", start, end), token: e.collect})
	expect(e.t, w, http.StatusOK, "")
	var resp leavesResponse
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil || resp.Leaves == nil {
		e.t.Fatalf("leaves: %v", err)
	}
	return resp.Leaves
}

// memTree is a tree built in the test from leaves alone, to check the
// server's proofs against roots it did not compute.
type memTree []tlog.Hash

func (m memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", idx)
		}
		out[i] = m[idx]
	}
	return out, nil
}

func buildTree(t testing.TB, leaves []intakelog.Leaf) memTree {
	t.Helper()
	var m memTree
	for i, l := range leaves {
		hs, err := tlog.StoredHashes(int64(i), l.Bytes(), m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	return m
}

// TestLogFollowsSubmissions is a client's and a collector's view of the
// log: every receipt verifies, its checkpoint is consistent with the newest
// one, and the leaves, proofs and roots agree with a tree the test builds
// from the receipts alone.
func TestLogFollowsSubmissions(t *testing.T) {
	e := newTestEnv(t)
	cp, _ := e.checkpoint()
	if empty, _ := tlog.TreeHash(0, nil); cp.Size != 0 || cp.Root != empty {
		t.Fatalf("checkpoint of the empty log = %+v", cp)
	}
	if leaves := e.getLeaves(0, 0); len(leaves) != 0 {
		t.Fatalf("leaves of the empty log: %+v", leaves)
	}

	const n = 7
	rs := e.submitN(n)
	var leaves []intakelog.Leaf
	for i, rc := range rs {
		got, err := rc.Verify(e.logKey())
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		// Each receipt carries the checkpoint of the log as it was just
		// after its submission.
		if rc.Index != int64(i) || got.Size != int64(i+1) {
			t.Fatalf("receipt %d has index %d and checkpoint size %d", i, rc.Index, got.Size)
		}
		leaves = append(leaves, rc.Leaf())
	}
	final, _ := e.checkpoint()
	tree := buildTree(t, leaves)
	if root, _ := tlog.TreeHash(n, tree); final.Size != n || final.Root != root {
		t.Fatalf("final checkpoint %+v does not match the tree of the receipts' leaves", final)
	}

	// Every receipt's checkpoint is consistent with the final one.
	for i, rc := range rs {
		old, err := intakelog.OpenCheckpoint([]byte(rc.Checkpoint), e.logKey())
		if err != nil {
			t.Fatal(err)
		}
		proof := e.getProof(fmt.Sprintf("/v1/log/consistency?old=%d&new=%d", old.Size, final.Size))
		if err := intakelog.VerifyConsistency(old, final, proof); err != nil {
			t.Errorf("receipt %d: checkpoint of size %d not consistent with %d: %v", i, old.Size, final.Size, err)
		}
	}
	// Inclusion and consistency at every size, against roots computed
	// here.
	for size := int64(1); size <= n; size++ {
		root, err := tlog.TreeHash(size, tree)
		if err != nil {
			t.Fatal(err)
		}
		cp := intakelog.Checkpoint{Origin: final.Origin, Size: size, Root: root}
		for i := range size {
			proof := e.getProof(fmt.Sprintf("/v1/log/inclusion?index=%d&size=%d", i, size))
			if err := intakelog.VerifyInclusion(cp, i, leaves[i], proof); err != nil {
				t.Errorf("inclusion of %d at size %d: %v", i, size, err)
			}
			// The proof is for this leaf only.
			if other := leaves[(i+1)%size]; size > 1 && intakelog.VerifyInclusion(cp, i, other, proof) == nil {
				t.Errorf("inclusion proof of %d at size %d also proves another leaf", i, size)
			}
		}
		for old := int64(0); old <= size; old++ {
			oldRoot, _ := tlog.TreeHash(old, tree)
			proof := e.getProof(fmt.Sprintf("/v1/log/consistency?old=%d&new=%d", old, size))
			if err := intakelog.VerifyConsistency(intakelog.Checkpoint{Origin: final.Origin, Size: old, Root: oldRoot}, cp, proof); err != nil {
				t.Errorf("consistency %d -> %d: %v", old, size, err)
			}
		}
	}

	got := e.getLeaves(0, n)
	for i, l := range got {
		want := leaves[i]
		if l.Index != int64(i) || l.ID != want.ID || l.SHA256 != want.SHA256 || l.Size != want.Size || l.Date != want.Date {
			t.Errorf("leaf %d = %+v, want %+v", i, l, want)
		}
	}
	if got := e.getLeaves(2, 5); len(got) != 3 || got[0].Index != 2 || got[0].ID != leaves[2].ID {
		t.Errorf("leaves [2, 5) = %+v", got)
	}

	// A receipt asked for again comes with the newest checkpoint.
	w := e.do(req{method: "GET", path: "/v1/uploads/" + rs[0].ID, token: e.submit})
	expect(t, w, http.StatusOK, `"state":"complete"`)
	var status struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	json.Unmarshal(w.Body.Bytes(), &status)
	again, err := receipt.Parse(status.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := again.Verify(e.logKey()); err != nil || cp.Size != n || again.Index != 0 {
		t.Fatalf("receipt asked for again: checkpoint size %d, %v", cp.Size, err)
	}
}

func TestCheckpointCache(t *testing.T) {
	e := newTestEnv(t)
	e.submitN(2)
	a, err := e.srv.intake.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.srv.intake.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if &a.signed[0] != &b.signed[0] {
		t.Error("the checkpoint of an unchanged log was signed again")
	}
	e.submitN(1)
	c, err := e.srv.intake.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if c.cp.Size != 3 {
		t.Errorf("checkpoint after a submission has size %d, want 3", c.cp.Size)
	}
	// A new process signs the same checkpoint again: signing is
	// deterministic, so clients never see two texts for one tree.
	srv2, err := New(Config{DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	d, err := srv2.intake.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if string(d.signed) != string(c.signed) {
		t.Errorf("a new server signed the same tree differently:\n%s\n%s", c.signed, d.signed)
	}
}

func TestLogRoutes(t *testing.T) {
	e := newTestEnv(t)
	e.submitN(5)
	tests := []struct {
		name   string
		path   string
		status int
		msg    string
	}{
		{"inclusion", "/v1/log/inclusion?index=0&size=5", 200, `"proof":[`},
		{"inclusion, last leaf", "/v1/log/inclusion?index=4&size=5", 200, `"proof":[`},
		{"inclusion, one leaf", "/v1/log/inclusion?index=0&size=1", 200, `{"proof":[]}`},
		{"inclusion, parameters in any order", "/v1/log/inclusion?size=5&index=2", 200, `"proof":[`},
		{"inclusion, index not below size", "/v1/log/inclusion?index=5&size=5", 400, "index 5 is not below size 5"},
		{"inclusion, empty tree", "/v1/log/inclusion?index=0&size=0", 400, "not below size 0"},
		{"inclusion, size beyond the log", "/v1/log/inclusion?index=0&size=6", 404, "size 6 is beyond the log, which has 5 leaves"},
		{"inclusion, huge size", "/v1/log/inclusion?index=0&size=1000000000000000", 404, "beyond the log"},
		{"inclusion, size over the bound", "/v1/log/inclusion?index=0&size=1000000000000001", 400, "size must be a decimal number from 0 to 1000000000000000"},
		{"inclusion, size overflows", "/v1/log/inclusion?index=0&size=99999999999999999999", 400, "size must be a decimal number"},
		{"inclusion, no index", "/v1/log/inclusion?size=5", 400, "query parameter index is required; this route takes index=N and size=N"},
		{"inclusion, no query", "/v1/log/inclusion", 400, "query parameter index is required"},
		{"inclusion, empty index", "/v1/log/inclusion?index=&size=5", 400, `index must be a decimal number from 0 to 1000000000000000, not ""`},
		{"inclusion, negative", "/v1/log/inclusion?index=-1&size=5", 400, `not "-1"`},
		{"inclusion, plus sign", "/v1/log/inclusion?index=%2B1&size=5", 400, `not "+1"`},
		{"inclusion, leading zero", "/v1/log/inclusion?index=01&size=5", 400, `not "01"`},
		{"inclusion, exponent", "/v1/log/inclusion?index=1e0&size=5", 400, `not "1e0"`},
		{"inclusion, hex", "/v1/log/inclusion?index=0x1&size=5", 400, `not "0x1"`},
		{"inclusion, space", "/v1/log/inclusion?index=%201&size=5", 400, `not " 1"`},
		{"inclusion, repeated", "/v1/log/inclusion?index=1&index=2&size=5", 400, "query parameter index is given 2 times; give it once"},
		{"inclusion, unknown parameter", "/v1/log/inclusion?index=1&size=5&leaf=3", 400, `unknown query parameter "leaf"; this route takes index=N and size=N`},
		{"inclusion, bad escape", "/v1/log/inclusion?index=%zz&size=5", 400, "malformed query string"},
		{"inclusion, long value", "/v1/log/inclusion?index=" + strings.Repeat("9", 100) + "&size=5", 400, "…"},

		{"consistency", "/v1/log/consistency?old=2&new=5", 200, `"proof":[`},
		{"consistency, from empty", "/v1/log/consistency?old=0&new=5", 200, `{"proof":[]}`},
		{"consistency, same size", "/v1/log/consistency?old=5&new=5", 200, `{"proof":[]}`},
		{"consistency, both empty", "/v1/log/consistency?old=0&new=0", 200, `{"proof":[]}`},
		{"consistency, old larger", "/v1/log/consistency?old=5&new=4", 400, "old size 5 is larger than new size 4"},
		{"consistency, new beyond the log", "/v1/log/consistency?old=2&new=6", 404, "new 6 is beyond the log, which has 5 leaves"},
		{"consistency, no old", "/v1/log/consistency?new=5", 400, "query parameter old is required; this route takes old=N and new=N"},
		{"consistency, size named", "/v1/log/consistency?old=1&size=5", 400, `unknown query parameter "size"`},

		{"leaves", "/v1/log/leaves?start=0&end=5", 200, `"index":4`},
		{"leaves, none", "/v1/log/leaves?start=5&end=5", 200, `{"leaves":[]}`},
		{"leaves, start after end", "/v1/log/leaves?start=3&end=2", 400, "start 3 is larger than end 2"},
		{"leaves, end beyond the log", "/v1/log/leaves?start=0&end=6", 404, "end 6 is beyond the log, which has 5 leaves"},
		{"leaves, too many", "/v1/log/leaves?start=0&end=1001", 400, "at most 1000 leaves per request: ask for [0, 1000) and continue from there"},
		{"leaves, exactly the limit", "/v1/log/leaves?start=2000&end=3000", 404, "end 3000 is beyond the log"},
		{"leaves, no end", "/v1/log/leaves?start=0", 400, "query parameter end is required"},

		{"checkpoint", "/v1/log/checkpoint", 200, "\n5\n"},
		{"checkpoint of a given size", "/v1/log/checkpoint?size=3", 400, "takes no query parameters; it always returns the newest checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			w := e.do(req{method: "GET", path: tt.path, token: e.collect})
			expect(t, w, tt.status, tt.msg)
		})
	}

	// Any valid token reads the log; nothing else does, and it is read-only.
	for _, path := range []string{"/v1/log/checkpoint", "/v1/log/inclusion?index=0&size=1", "/v1/log/consistency?old=0&new=1", "/v1/log/leaves?start=0&end=1"} {
		expect(t, e.do(req{method: "GET", path: path, token: e.submit}), 200, "")
		expect(t, e.do(req{method: "GET", path: path, token: e.collect}), 200, "")
		expect(t, e.do(req{method: "GET", path: path}), 401, "missing Authorization")
		expect(t, e.do(req{method: "POST", path: path, token: e.collect}), 405, "method POST is not allowed")
	}
}

// FuzzLogQuery sends arbitrary query strings to the log routes: the answer
// is success or a client error, never a server error, and a number the
// parser accepts has exactly one spelling.
func FuzzLogQuery(f *testing.F) {
	e := newTestEnv(f)
	e.submitN(3)
	for _, s := range []string{"index=0&size=3", "index=2&size=3", "old=1&new=3", "start=0&end=3", "index=01&size=3",
		"index=-1&size=3", "size=3&size=3&index=0", "index=%zz", "index=9223372036854775807&size=9223372036854775807", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		e := e.in(t)
		for _, route := range []string{"/v1/log/inclusion", "/v1/log/consistency", "/v1/log/leaves"} {
			r := newRequest(req{method: "GET", path: route, token: e.collect})
			r.URL.RawQuery = query
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			switch w.Code {
			case 200, 400, 404:
			default:
				t.Fatalf("GET %s?%s: status %d %s", route, query, w.Code, w.Body.String())
			}
		}
		if n, ok := parseQueryNumber(query); ok && (strconv.FormatInt(n, 10) != query || n < 0 || n > maxQueryNumber) {
			t.Fatalf("parseQueryNumber(%q) = %d", query, n)
		}
	})
}
