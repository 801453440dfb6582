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

// reviewed says, for the line of a receipt that verified, whether a
// reviewer's witness acknowledged the submission (and the server deleted
// its ciphertext). It shows "reviewed" only if the acknowledgement the
// server serves verifies with the witness key the server lists, names
// this log index, and cosigns a checkpoint of the very history this
// device verified (consistent with the newest checkpoint). What that
// proves is in docs/caseworker.md: the witness key comes from the server.
func (lv *logVerifier) reviewed(ctx context.Context, cl *api.Client, logKey string, index int64) string {
	la, err := cl.LogAck(ctx, index)
	switch {
	case errors.Is(err, api.ErrNoAck):
		return ""
	case err != nil:
		return "; whether it was reviewed could not be asked"
	}
	const bad = "; the server says a reviewer acknowledged it, but the acknowledgement does not verify"
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
	return fmt.Sprintf("; reviewed (acknowledged by witness %s on %s)", api.Sanitize(la.Witness, 64), a.Time.UTC().Format(time.DateOnly))
}
