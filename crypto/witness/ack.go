package witness

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/internal/strictjson"
)

// Version is the only acknowledgement format version.
const Version = 1

// Limits of an acknowledgement. MaxIndexes matches the most submissions
// one bundle carries; MaxAckSize leaves room for that many index lines.
const (
	MaxIndexes = 100000
	MaxAckSize = 2 << 20
)

// statementHeader is the first line of an acknowledgement statement. It
// differs from "cosignature/v1", so the statement and the cosignature
// never sign the same message.
const statementHeader = "testimony-ack/v1"

var (
	// ErrMalformed means an acknowledgement or a witness key is not
	// well-formed.
	ErrMalformed = errors.New("malformed acknowledgement")
	// ErrUnknownWitness means no registered witness cosigned the checkpoint.
	ErrUnknownWitness = errors.New("checkpoint is not cosigned by a registered witness")
	// ErrBadSignature means a signature by a registered witness, or by the
	// log, does not verify: the acknowledgement was altered after signing.
	ErrBadSignature = errors.New("acknowledgement signature is invalid")
	// ErrLogKey means the checkpoint is not signed by the log key.
	ErrLogKey = errors.New("acknowledged checkpoint is not signed by the log key")
)

// file is the acknowledgement file, strict JSON.
type file struct {
	Version int `json:"version"`
	// Checkpoint is the log's signed checkpoint with the witness's
	// tlog-cosignature/v1 line added.
	Checkpoint string `json:"checkpoint"`
	// Statement is a signed note by the same witness key: the
	// statementHeader line, the checkpoint's three body lines, "opened N"
	// and N log indexes in increasing order, one a line.
	Statement string `json:"statement"`
}

// Ack is an acknowledgement that verified.
type Ack struct {
	// Checkpoint is the checkpoint the witness cosigned, and
	// CheckpointNote its note text with the log's signature and the
	// cosignature.
	Checkpoint     intakelog.Checkpoint
	CheckpointNote []byte
	// Witness is the verifier key that signed it, from the list given
	// to Open.
	Witness *Verifier
	// Time is the cosignature's time (whole seconds, as the witness's
	// clock said).
	Time time.Time
	// Indexes are the log indexes the witness opened, in increasing order.
	Indexes []int64
}

// Sign makes an acknowledgement by key of the checkpoint in checkpointNote
// (signed by the log key logKey) and of the log indexes opened, all below
// the checkpoint's size. It returns the file's bytes.
func Sign(key *Key, checkpointNote []byte, logKey string, opened []int64, now time.Time) ([]byte, error) {
	cp, err := intakelog.OpenCheckpoint(checkpointNote, logKey)
	if err != nil {
		return nil, fmt.Errorf("failed to acknowledge: %w", err)
	}
	lv, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, fmt.Errorf("failed to acknowledge: log key: %w", err)
	}
	n, err := note.Open(checkpointNote, note.VerifierList(lv))
	if err != nil {
		return nil, fmt.Errorf("failed to acknowledge: %w", err)
	}
	indexes := slices.Clone(opened)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)
	if len(indexes) > MaxIndexes {
		return nil, fmt.Errorf("failed to acknowledge: %d indexes, at most %d in one acknowledgement", len(indexes), MaxIndexes)
	}
	for _, i := range indexes {
		if i < 0 || i >= cp.Size {
			return nil, fmt.Errorf("failed to acknowledge: index %d is not in the checkpoint of size %d", i, cp.Size)
		}
	}
	// Only the log's own signature is kept: other cosignatures in the
	// input are not this witness's to repeat.
	n.Sigs = n.Sigs[:1]
	cosigned, err := note.Sign(n, key.cosigner(now))
	if err != nil {
		return nil, fmt.Errorf("failed to cosign the checkpoint: %w", err)
	}
	stmt, err := note.Sign(&note.Note{Text: statementText(cp, indexes)}, key.statementSigner())
	if err != nil {
		return nil, fmt.Errorf("failed to sign the acknowledgement: %w", err)
	}
	data, err := json.MarshalIndent(&file{Version: Version, Checkpoint: string(cosigned), Statement: string(stmt)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode the acknowledgement: %w", err)
	}
	return append(data, '\n'), nil
}

func statementText(cp intakelog.Checkpoint, indexes []int64) string {
	var b strings.Builder
	b.WriteString(statementHeader + "\n")
	b.Write(cp.Body())
	b.WriteString("opened " + strconv.Itoa(len(indexes)) + "\n")
	for _, i := range indexes {
		b.WriteString(strconv.FormatInt(i, 10) + "\n")
	}
	return b.String()
}

// Open parses an acknowledgement and verifies it: the checkpoint must be
// signed by the log key logKey and cosigned by one of witnesses, and the
// statement signed by that same witness, naming that very checkpoint and
// only indexes below its size. It does not check that the log holds that
// checkpoint: the caller compares it with its own tree.
func Open(data []byte, logKey string, witnesses []*Verifier) (*Ack, error) {
	if len(data) > MaxAckSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxAckSize)
	}
	var f file
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%w: version %d, this program reads version %d", ErrMalformed, f.Version, Version)
	}
	cp, err := intakelog.OpenCheckpoint([]byte(f.Checkpoint), logKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogKey, err)
	}
	w, t, err := cosignedBy([]byte(f.Checkpoint), witnesses)
	if err != nil {
		return nil, err
	}
	if len(f.Statement) > MaxAckSize {
		return nil, fmt.Errorf("%w: statement too large", ErrMalformed)
	}
	n, err := note.Open([]byte(f.Statement), note.VerifierList(w.statement()))
	if err != nil {
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("%w: statement of witness %q", ErrBadSignature, w.Name())
		}
		return nil, fmt.Errorf("%w: the statement is not signed by witness %q, who cosigned the checkpoint", ErrMalformed, w.Name())
	}
	indexes, err := parseStatement(n.Text, cp)
	if err != nil {
		return nil, err
	}
	return &Ack{Checkpoint: cp, CheckpointNote: []byte(f.Checkpoint), Witness: w, Time: t, Indexes: indexes}, nil
}

// cosignedBy returns the first of witnesses whose cosignature is on the
// checkpoint note msg, and the cosignature's time.
func cosignedBy(msg []byte, witnesses []*Verifier) (*Verifier, time.Time, error) {
	for _, w := range witnesses {
		cv := w.Cosignature()
		_, err := note.Open(msg, note.VerifierList(cv))
		var invalid *note.InvalidSignatureError
		switch {
		case err == nil:
			return w, cv.Time, nil
		case errors.As(err, &invalid):
			return nil, time.Time{}, fmt.Errorf("%w: cosignature of witness %q", ErrBadSignature, w.Name())
		}
	}
	return nil, time.Time{}, ErrUnknownWitness
}

// parseStatement checks a statement's text against the checkpoint and
// returns its indexes.
func parseStatement(text string, cp intakelog.Checkpoint) ([]int64, error) {
	want := statementHeader + "\n" + string(cp.Body())
	rest, ok := strings.CutPrefix(text, want)
	if !ok {
		return nil, fmt.Errorf("%w: the statement does not name the cosigned checkpoint (size %d)", ErrMalformed, cp.Size)
	}
	lines := strings.Split(rest, "\n")
	if lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("%w: statement does not end with a newline", ErrMalformed)
	}
	lines = lines[:len(lines)-1]
	count, ok := strings.CutPrefix(lines[0], "opened ")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || strconv.Itoa(n) != count || n != len(lines)-1 || n > MaxIndexes {
		return nil, fmt.Errorf("%w: statement must say \"opened N\" followed by N indexes", ErrMalformed)
	}
	indexes := make([]int64, 0, n)
	for _, l := range lines[1:] {
		i, err := strconv.ParseInt(l, 10, 64)
		switch {
		case err != nil || strconv.FormatInt(i, 10) != l || i < 0:
			return nil, fmt.Errorf("%w: statement index %q is not a decimal number", ErrMalformed, truncate(l, 24))
		case i >= cp.Size:
			return nil, fmt.Errorf("%w: statement index %d is not below the checkpoint size %d", ErrMalformed, i, cp.Size)
		case len(indexes) > 0 && i <= indexes[len(indexes)-1]:
			return nil, fmt.Errorf("%w: statement indexes must increase strictly", ErrMalformed)
		}
		indexes = append(indexes, i)
	}
	return indexes, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
