package caseworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/logclient"
)

// errBadReceipt wraps every way a receipt can fail to prove what the
// client sent.
var errBadReceipt = errors.New("the server's receipt does not prove this submission")

// verifyReceipt checks that raw is a receipt for exactly the ciphertext
// id, size and sha256Hex, whose checkpoint is signed by the log key and
// includes the submission's leaf.
func verifyReceipt(raw []byte, logKey string, id string, size int64, sha256Hex string) (*receipt.Receipt, error) {
	r, err := receipt.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReceipt, err)
	}
	switch {
	case r.ID != id:
		return nil, fmt.Errorf("%w: it names submission %s, not %s", errBadReceipt, r.ID, id)
	case r.Size != size:
		return nil, fmt.Errorf("%w: it says %d bytes, not %d", errBadReceipt, r.Size, size)
	case r.SHA256 != sha256Hex:
		return nil, fmt.Errorf("%w: it names ciphertext sha256 %s, not %s", errBadReceipt, r.SHA256, sha256Hex)
	}
	if _, err := r.Verify(logKey); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReceipt, err)
	}
	return r, nil
}

// saveReceipt writes receipts/<id>.json.
func (h *home) saveReceipt(r *receipt.Receipt) error {
	if !ids.ValidSubmission(r.ID) {
		return fmt.Errorf("%w: malformed id", errBadReceipt)
	}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to encode receipt: %w", err)
	}
	if err := os.MkdirAll(h.receiptsDir(), 0o700); err != nil {
		return fmt.Errorf("failed to save receipt: %w", err)
	}
	return safefile.Write(filepath.Join(h.receiptsDir(), r.ID+".json"), append(data, '\n'), 0o600)
}

// receipts lists the saved receipts, oldest first; unreadable files are
// returned by name with the reason.
func (h *home) receipts() ([]*receipt.Receipt, map[string]error, error) {
	des, err := os.ReadDir(h.receiptsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read receipts: %w", err)
	}
	var list []*receipt.Receipt
	broken := map[string]error{}
	for _, de := range des {
		name := de.Name()
		if safefile.IsTemp(name) || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := readSmall(filepath.Join(h.receiptsDir(), name), receipt.MaxSize)
		if err == nil {
			var r *receipt.Receipt
			if r, err = receipt.Parse(data); err == nil {
				list = append(list, r)
				continue
			}
		}
		broken[name] = err
	}
	slices.SortStableFunc(list, func(a, b *receipt.Receipt) int {
		if c := strings.Compare(a.Received, b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, broken, nil
}

func readSmall(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return data, nil
}

// VerifyOptions are what "testimony receipts verify" is given.
type VerifyOptions struct {
	Conn Conn
	// LogKey is -log-key: pinned in trust.json if none is yet.
	LogKey string
}

// Verification is what VerifyReceipts checked.
type Verification struct {
	// Verified receipts are still proven by the log; Other receipts are
	// of other logs, not checked.
	Verified, Other int
	// Size is the size of the log's newest checkpoint, now saved.
	Size int64
}

// VerifyReceipts re-checks every saved receipt of the server's log against
// its newest checkpoint, which must extend the one verified before. Each
// receipt checked is a ReceiptChecked event; if any failed, the error
// says how many.
func (c *Client) VerifyReceipts(ctx context.Context, o VerifyOptions) (*Verification, error) {
	cf, tf := o.Conn, TrustKeys{LogKey: o.LogKey}
	sess, err := c.connect(cf, tf)
	if err != nil {
		return nil, err
	}
	u, h, cl := sess.u, sess.h, sess.cl
	keys, err := c.fetchKeys(ctx, sess, keyOptions{logOnly: true})
	if err != nil {
		return nil, err
	}
	list, broken, err := h.receipts()
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(broken)) {
		c.notef("warning: skipping unreadable receipt %s: %v", name, broken[name])
	}

	const again = `run "testimony receipts verify" again`
	lc, f, err := c.logState(ctx, h, u, keys.logKey, cl, again, false)
	if err != nil {
		return nil, err
	}
	newest, raw, err := lc.Checkpoint(ctx)
	if err != nil && !intakelog.IsLogError(err) {
		return nil, explain(err, u, again)
	}
	if err := c.connected(sess); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, cmdline.Errorf("the server's newest checkpoint does not verify: %v", err).
			Hint(serverSuspect)
	}
	if err := checkWitness(ctx, lc, f, u, newest); err != nil {
		return nil, err
	}

	lv := &logVerifier{lc: lc, u: u, newest: newest, proofs: map[int64][]tlog.Hash{}}
	verified, failed, other := 0, 0, 0
	for _, r := range list {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cp, err := intakelog.OpenCheckpoint([]byte(r.Checkpoint), keys.logKey)
		if errors.Is(err, intakelog.ErrUnknownKey) {
			// A receipt from another server's log.
			other++
			continue
		}
		if err == nil {
			_, err = r.Verify(keys.logKey)
		}
		if err == nil {
			err = lv.check(ctx, r, cp)
		}
		if err != nil {
			var ce *cmdline.Error
			if errors.As(err, &ce) || errors.Is(err, context.Canceled) {
				return nil, err // the network or the user, not the receipt
			}
			c.emit(ReceiptChecked{Receipt: r, Err: err})
			failed++
			continue
		}
		rv := lv.reviewed(ctx, cl, keys.logKey, r.Index)
		c.emit(ReceiptChecked{Receipt: r, Review: rv, Reviewed: rv.clause()})
		verified++
	}
	if failed > 0 {
		return nil, cmdline.Errorf("%d receipt(s) are not proven by the server's log any more: it dropped, altered or rewrote what it acknowledged", failed).
			Hint("keep the receipts in %s and this output: they are evidence; report this to your organisation through another channel than this server", h.receiptsDir())
	}
	if err := lc.Accept(ctx, newest, raw); err != nil {
		if intakelog.IsLogError(err) {
			return nil, cmdline.Errorf("the server's checkpoint of size %d is not consistent with the one another command saved meanwhile: %v", newest.Size, err).
				Hint(serverSuspect)
		}
		return nil, explain(err, u, again)
	}
	return &Verification{Verified: verified, Other: other, Size: newest.Size}, nil
}

// serverSuspect is the hint for any proof of misbehaviour by the server.
const serverSuspect = "the server may be compromised or misbehaving; keep this output and report it to your organisation through another channel than this server"

// checkWitness checks newest against the checkpoint saved by the last
// run: the log may only have grown since.
func checkWitness(ctx context.Context, lc *intakelog.Client, f *logclient.File, u *url.URL, newest intakelog.Checkpoint) error {
	old, _, ok, err := lc.Latest()
	if err != nil {
		return storedError(f, err)
	}
	if !ok {
		return nil
	}
	_, err = lc.Consistent(ctx, old, newest)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, intakelog.ErrMalformed):
		return cmdline.Errorf("the server sent a malformed consistency proof: %v", err).Hint(serverSuspect)
	case intakelog.IsLogError(err):
		return cmdline.Errorf("the server's log is not consistent with the checkpoint of size %d verified before: %v", old.Size, err).
			Hint(serverSuspect)
	}
	return explain(err, u, `run "testimony receipts verify" again`)
}

// logVerifier checks receipts against the newest checkpoint, fetching
// each consistency proof once.
type logVerifier struct {
	lc     *intakelog.Client
	u      *url.URL
	newest intakelog.Checkpoint
	proofs map[int64][]tlog.Hash
}

// check returns a plain error if the log does not prove r, and a *cmdline.Error
// if the server could not be asked.
func (lv *logVerifier) check(ctx context.Context, r *receipt.Receipt, cp intakelog.Checkpoint) error {
	if cp.Size > lv.newest.Size {
		return fmt.Errorf("its checkpoint has size %d, but the server's newest has size %d: %w", cp.Size, lv.newest.Size, intakelog.ErrRollback)
	}
	if proof, ok := lv.proofs[cp.Size]; ok {
		if err := intakelog.VerifyConsistency(cp, lv.newest, proof); err != nil {
			return err
		}
	} else {
		proof, err := lv.lc.Consistent(ctx, cp, lv.newest)
		if err != nil {
			return lv.fetchError(ctx, err)
		}
		lv.proofs[cp.Size] = proof
	}
	_, err := lv.lc.Included(ctx, lv.newest, r.Index, r.Leaf())
	return lv.fetchError(ctx, err)
}

// fetchError tells the network's failures from the receipt's.
func (lv *logVerifier) fetchError(ctx context.Context, err error) error {
	switch {
	case err == nil, intakelog.IsLogError(err):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case api.Retryable(err), api.IsStatus(err, http.StatusUnauthorized), api.IsStatus(err, http.StatusForbidden):
		return cmdline.Errorf("%w", explain(err, lv.u, `run "testimony receipts verify" again`))
	}
	// The server refused to prove this receipt (an index or size it says
	// it does not have): that is the receipt's failure.
	return err
}
