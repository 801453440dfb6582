package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/store"
)

// MaxLogLeaves is the most leaves GET /v1/log/leaves returns at once.
const MaxLogLeaves = store.MaxLogLeaves

// maxQueryNumber bounds the numbers of the log routes' query parameters: a
// log will never hold 10^15 leaves, and the bound keeps every arithmetic
// on them far from overflow.
const maxQueryNumber = 1_000_000_000_000_000

// intakeLog signs checkpoints of the store's log. Checkpoints are never
// stored: one is derived from the log size and the stored hashes when
// needed, so a crash between committing a submission and signing cannot
// leave anything inconsistent. The newest is cached in memory, so each tree
// size is hashed and signed once per process; after a restart the first
// request signs again (Ed25519 is deterministic, so the bytes are the same).
type intakeLog struct {
	db     *store.DB
	signer note.Signer
	origin string

	mu     sync.Mutex
	cached signedCheckpoint // newest signed checkpoint; signed is nil before the first
}

type signedCheckpoint struct {
	cp     intakelog.Checkpoint
	signed []byte
}

func newIntakeLog(db *store.DB, signer note.Signer) *intakeLog {
	return &intakeLog{db: db, signer: signer, origin: signer.Name()}
}

// checkpoint returns the signed checkpoint of the whole log as it is now.
// Because the log only grows, it includes every leaf committed before the
// call.
func (l *intakeLog) checkpoint() (signedCheckpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.db.LogSize()
	if err != nil {
		return signedCheckpoint{}, err
	}
	if l.cached.signed != nil && l.cached.cp.Size == n {
		return l.cached, nil
	}
	root, err := tlog.TreeHash(n, l.db.LogHashReader())
	if err != nil {
		return signedCheckpoint{}, fmt.Errorf("failed to hash the log at size %d: %w", n, err)
	}
	cp := intakelog.Checkpoint{Origin: l.origin, Size: n, Root: root}
	signed, err := intakelog.SignCheckpoint(cp, l.signer)
	if err != nil {
		return signedCheckpoint{}, err
	}
	l.cached = signedCheckpoint{cp: cp, signed: signed}
	return l.cached, nil
}

// receipt builds the receipt of the leaf at index: the newest checkpoint
// and the inclusion proof at its size.
func (l *intakeLog) receipt(leaf intakelog.Leaf, index int64) (json.RawMessage, error) {
	sc, err := l.checkpoint()
	if err != nil {
		return nil, err
	}
	if index >= sc.cp.Size {
		return nil, fmt.Errorf("leaf %d is not in the log of size %d", index, sc.cp.Size)
	}
	proof, err := tlog.ProveRecord(sc.cp.Size, index, l.db.LogHashReader())
	if err != nil {
		return nil, fmt.Errorf("failed to prove leaf %d in the log of size %d: %w", index, sc.cp.Size, err)
	}
	data, err := json.Marshal(receipt.New(leaf, index, sc.signed, proof))
	if err != nil {
		return nil, fmt.Errorf("failed to encode the receipt of leaf %d: %w", index, err)
	}
	return data, nil
}

// leafOf is the log leaf of a submission. Submissions store the UTC date
// they were received at midnight, so the date is all there is.
func leafOf(sub store.Submission) intakelog.Leaf {
	return intakelog.Leaf{ID: sub.ID, SHA256: sub.SHA256, Size: sub.Size, Date: sub.Received.UTC().Format(time.DateOnly)}
}

// submissionReceipt builds the receipt of a stored submission.
func (s *Server) submissionReceipt(sub store.Submission) (json.RawMessage, error) {
	return s.intake.receipt(leafOf(sub), sub.Index)
}

type proofResponse struct {
	Proof []string `json:"proof"`
}

type leavesResponse struct {
	Leaves []leafEntry `json:"leaves"`
}

type leafEntry struct {
	Index  int64  `json:"index"`
	ID     string `json:"id"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Date   string `json:"date"`
}

// textBody is a text/plain response.
type textBody []byte

// GET /v1/log/checkpoint
func (s *Server) logCheckpoint(c *call) (any, int, error) {
	if c.r.URL.RawQuery != "" {
		return nil, 0, fail(errBadRequest, "GET /v1/log/checkpoint takes no query parameters; it always returns the newest checkpoint")
	}
	sc, err := s.intake.checkpoint()
	if err != nil {
		return nil, 0, err
	}
	return textBody(sc.signed), http.StatusOK, nil
}

// GET /v1/log/inclusion?index=I&size=N
func (s *Server) logInclusion(c *call) (any, int, error) {
	q, err := logQuery(c, "index", "size")
	if err != nil {
		return nil, 0, err
	}
	index, size := q["index"], q["size"]
	if index >= size {
		return nil, 0, fail(errBadRequest, "index %d is not below size %d: a tree of size N holds the leaves 0 to N-1", index, size)
	}
	if err := s.checkTreeSize(size, "size"); err != nil {
		return nil, 0, err
	}
	proof, err := tlog.ProveRecord(size, index, s.db.LogHashReader())
	if err != nil {
		return nil, 0, fmt.Errorf("failed to prove leaf %d in the log of size %d: %w", index, size, err)
	}
	return &proofResponse{Proof: intakelog.EncodeProof(proof)}, http.StatusOK, nil
}

// GET /v1/log/consistency?old=M&new=N
func (s *Server) logConsistency(c *call) (any, int, error) {
	q, err := logQuery(c, "old", "new")
	if err != nil {
		return nil, 0, err
	}
	old, size := q["old"], q["new"]
	if old > size {
		return nil, 0, fail(errBadRequest, "old size %d is larger than new size %d", old, size)
	}
	if err := s.checkTreeSize(size, "new"); err != nil {
		return nil, 0, err
	}
	// Every tree is consistent with the empty tree and with itself, with
	// an empty proof (tlog.ProveTree refuses an empty old tree).
	if old == 0 || old == size {
		return &proofResponse{Proof: []string{}}, http.StatusOK, nil
	}
	proof, err := tlog.ProveTree(size, old, s.db.LogHashReader())
	if err != nil {
		return nil, 0, fmt.Errorf("failed to prove consistency from %d to %d: %w", old, size, err)
	}
	return &proofResponse{Proof: intakelog.EncodeProof(proof)}, http.StatusOK, nil
}

// GET /v1/log/leaves?start=A&end=B
func (s *Server) logLeaves(c *call) (any, int, error) {
	q, err := logQuery(c, "start", "end")
	if err != nil {
		return nil, 0, err
	}
	start, end := q["start"], q["end"]
	switch {
	case start > end:
		return nil, 0, fail(errBadRequest, "start %d is larger than end %d", start, end)
	case end-start > MaxLogLeaves:
		return nil, 0, fail(errBadRequest, "at most %d leaves per request: ask for [%d, %d) and continue from there", MaxLogLeaves, start, start+MaxLogLeaves)
	}
	if err := s.checkTreeSize(end, "end"); err != nil {
		return nil, 0, err
	}
	raw, err := s.db.LogLeaves(start, end)
	if err != nil {
		return nil, 0, err
	}
	resp := &leavesResponse{Leaves: make([]leafEntry, 0, len(raw))}
	for i, b := range raw {
		leaf, err := intakelog.ParseLeaf(b)
		if err != nil {
			return nil, 0, fmt.Errorf("stored log leaf %d: %w", start+int64(i), err)
		}
		resp.Leaves = append(resp.Leaves, leafEntry{Index: start + int64(i), ID: leaf.ID, SHA256: leaf.SHA256, Size: leaf.Size, Date: leaf.Date})
	}
	return resp, http.StatusOK, nil
}

// checkTreeSize refuses a tree size larger than the log: no checkpoint of
// that size exists yet.
func (s *Server) checkTreeSize(size int64, param string) error {
	n, err := s.db.LogSize()
	if err != nil {
		return err
	}
	if size > n {
		return fail(errNotFound, "%s %d is beyond the log, which has %d leaves; GET /v1/log/checkpoint gives the current size", param, size, n)
	}
	return nil
}

// logQuery parses the named query parameters, all required, each a
// decimal number from 0 to maxQueryNumber given exactly once; any other
// parameter is refused so that a misspelt one does not go unnoticed.
func logQuery(c *call, names ...string) (map[string]int64, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, fail(errBadRequest, "malformed query string: %v", err)
	}
	for k := range q {
		if !slices.Contains(names, k) {
			return nil, fail(errBadRequest, "unknown query parameter %q; this route takes %s", k, joinParams(names))
		}
	}
	out := make(map[string]int64, len(names))
	for _, name := range names {
		vs := q[name]
		switch {
		case len(vs) == 0:
			return nil, fail(errBadRequest, "query parameter %s is required; this route takes %s", name, joinParams(names))
		case len(vs) > 1:
			return nil, fail(errBadRequest, "query parameter %s is given %d times; give it once", name, len(vs))
		}
		n, ok := parseQueryNumber(vs[0])
		if !ok {
			return nil, fail(errBadRequest, "query parameter %s must be a decimal number from 0 to %d, not %q", name, int64(maxQueryNumber), truncate(vs[0], 40))
		}
		out[name] = n
	}
	return out, nil
}

// parseQueryNumber accepts only plain decimal digits (no sign, no spaces,
// no leading zeros), so that every number has one spelling.
func parseQueryNumber(s string) (int64, bool) {
	if s == "" || len(s) > 16 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxQueryNumber {
		return 0, false
	}
	return n, true
}

func joinParams(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(n + "=N")
	}
	return b.String()
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
