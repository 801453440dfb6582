package caseworker

import (
	"context"
	"errors"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// Ack sends a reviewer's acknowledgement (written by 'testimony-review
// ack') to the server with the collect token. The server verifies it and
// deletes the ciphertext of exactly the submissions it names; sending it
// again is harmless.
func (c *Client) Ack(ctx context.Context, cf Conn, ack []byte) (*api.AckResult, error) {
	sess, err := c.connect(cf, TrustKeys{})
	if err != nil {
		return nil, err
	}
	r, err := sess.cl.PostAck(ctx, ack)
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && (se.Code == 403 || se.Code == 400) {
			return nil, cmdline.Errorf("%v", err).Hint(`nothing was deleted; check that the operator registered the reviewer's key ("testimony-server witness add") and that ACK is the file "testimony-review ack" wrote`)
		}
		return nil, explain(err, sess.u, `run "testimony ack" again; sending it twice is harmless`)
	}
	if err := c.connected(sess); err != nil {
		return nil, err
	}
	return r, nil
}
