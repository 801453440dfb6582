package caseworker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// ReviewState is what a receipt check learnt about the review of a
// submission whose receipt verified.
type ReviewState int

const (
	// NotReviewed: the server holds no acknowledgement for it.
	NotReviewed ReviewState = iota
	// Reviewed: a witness acknowledgement for it verified.
	Reviewed
	// ReviewUnasked: the server could not be asked.
	ReviewUnasked
	// ReviewUnproven: the server says a reviewer acknowledged it, but
	// the acknowledgement does not verify.
	ReviewUnproven
)

// Review is the review of one submission as a receipt check found it.
type Review struct {
	State ReviewState
	// Witness and Date are set for Reviewed: the name the server gives
	// the witness (sanitised, untrusted) and the date, UTC, on which the
	// witness signed the acknowledgement.
	Witness string
	Date    string // YYYY-MM-DD
}

// clause is the review as the command line appends it to a receipt's line.
func (r Review) clause() string {
	switch r.State {
	case Reviewed:
		return fmt.Sprintf("; reviewed (acknowledged by witness %s on %s)", r.Witness, r.Date)
	case ReviewUnasked:
		return "; whether it was reviewed could not be asked"
	case ReviewUnproven:
		return "; the server says a reviewer acknowledged it, but the acknowledgement does not verify"
	}
	return ""
}

// reviewed says, for a receipt that verified, whether a reviewer's
// witness acknowledged the submission (and the server deleted its
// ciphertext). It is Reviewed only if the acknowledgement the server
// serves verifies with the witness key the server lists, names this log
// index, and cosigns a checkpoint of the very history this device
// verified (consistent with the newest checkpoint). What that proves is in
// docs/caseworker.md: the witness key comes from the server.
func (lv *logVerifier) reviewed(ctx context.Context, cl *api.Client, logKey string, index int64) Review {
	la, err := cl.LogAck(ctx, index)
	switch {
	case errors.Is(err, api.ErrNoAck):
		return Review{State: NotReviewed}
	case err != nil:
		return Review{State: ReviewUnasked}
	}
	bad := Review{State: ReviewUnproven}
	v, err := witness.NewVerifier(la.WitnessKey)
	if err != nil {
		return bad
	}
	a, err := witness.Open(la.Ack, logKey, []*witness.Verifier{v})
	if err != nil || !slices.Contains(a.Indexes, index) || a.Checkpoint.Size > lv.newest.Size {
		return bad
	}
	if _, err := lv.lc.Consistent(ctx, a.Checkpoint, lv.newest); err != nil {
		return bad
	}
	return Review{State: Reviewed, Witness: api.Sanitize(la.Witness, 64), Date: a.Time.UTC().Format(time.DateOnly)}
}
