package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

const receiptsUsage = `Usage:
    testimony receipts verify -server URL [-ca FILE | -pin SHA256] [-token-file FILE] [-log-key VKEY]

Re-checks every saved receipt of this server's log against the log's
newest checkpoint: the checkpoint must be signed by the pinned log key and
consistent with the checkpoint in each receipt (the server proves that its
log only grew since), and must still include each submission. A server
that dropped, swapped or rewrote a submission after acknowledging it
cannot pass. The newest verified checkpoint is kept, so the next run also
catches a server that rolls its log back or shows another history; it is
the same record 'testimony collect' keeps, in logs/<host>_<port> in the
state directory.

Any access token (submit or collect) may read the log.

-ca or -pin is remembered for the server (https://host:port) after the
first successful connection, so later commands need neither; a server
whose certificate no longer matches is refused, and so is a -pin or -ca
that differs from the remembered one, unless -replace-pin is given.

Options:
    -server URL        The intake server (https://…, also for a .onion).
    -ca FILE           Trust only this PEM CA or self-signed certificate.
    -pin SHA256        Trust only the certificate with this SHA-256 fingerprint
                       (64 hex digits, colons allowed: AB:CD:…).
    -replace-pin       Replace the -pin or -ca remembered for this server, after
                       the operator confirmed the new certificate out of band.
    -token-file FILE   Read the access token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL         Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                       for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -log-key VKEY      The log's verifier key, as given by your organisation
                       (pinned in trust.json if none is yet).

Example:
    $ testimony receipts verify -server https://intake.example.org
    ok      7c0e2c5f8f3a4b0d9e1a6b2c3d4e5f60  leaf 41, received 2026-11-27
    verified 1 receipt(s) against the log's checkpoint of size 57
`

func (c *cli) receiptsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing receipts command").Hint("the only one is 'testimony receipts verify'")
	}
	switch args[0] {
	case "verify":
		return c.receiptsVerify(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, receiptsUsage)
		return flag.ErrHelp
	}
	return usageErrorf("unknown receipts command %q", args[0]).Hint("the only one is 'testimony receipts verify'")
}

func (c *cli) receiptsVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receipts verify", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var tf trustFlags
	fs.StringVar(&tf.logKey, "log-key", "", "")
	if err := c.parseFlags(fs, receiptsUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("receipts verify takes no arguments")
	}
	sess, err := c.connect(cf, tf)
	if err != nil {
		return err
	}
	u, h, t, cl := sess.u, sess.h, sess.t, sess.cl
	keys, err := c.fetchKeys(ctx, h, t, cl, u, nil, false, true)
	if err != nil {
		return err
	}
	list, broken, err := h.receipts()
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(broken)) {
		c.notef("warning: skipping unreadable receipt %s: %v", name, broken[name])
	}

	const again = "run 'testimony receipts verify' again"
	lc, f, err := c.logState(ctx, h, u, keys.logKey, cl, again, false)
	if err != nil {
		return err
	}
	newest, raw, err := lc.Checkpoint(ctx)
	if err != nil && !intakelog.IsLogError(err) {
		return explain(err, u, again)
	}
	if err := c.connected(sess); err != nil {
		return err
	}
	if err != nil {
		return errorf("the server's newest checkpoint does not verify: %v", err).
			Hint(serverSuspect)
	}
	if err := checkWitness(ctx, lc, f, u, newest); err != nil {
		return err
	}

	lv := &logVerifier{lc: lc, u: u, newest: newest, proofs: map[int64][]tlog.Hash{}}
	verified, failed, other := 0, 0, 0
	for _, r := range list {
		if err := ctx.Err(); err != nil {
			return err
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
			var ce *cliError
			if errors.As(err, &ce) || errors.Is(err, context.Canceled) {
				return err // the network or the user, not the receipt
			}
			fmt.Fprintf(c.stdout, "FAILED  %s  leaf %d, received %s: %v\n", r.ID, r.Index, r.Received, err)
			failed++
			continue
		}
		fmt.Fprintf(c.stdout, "ok      %s  leaf %d, received %s\n", r.ID, r.Index, r.Received)
		verified++
	}
	if failed > 0 {
		return errorf("%d receipt(s) are not proven by the server's log any more: it dropped, altered or rewrote what it acknowledged", failed).
			Hint("keep the receipts in %s and this output: they are evidence; report this to your organisation through another channel than this server", h.receiptsDir())
	}
	if err := lc.Accept(ctx, newest, raw); err != nil {
		if intakelog.IsLogError(err) {
			return errorf("the server's checkpoint of size %d is not consistent with the one another command saved meanwhile: %v", newest.Size, err).
				Hint(serverSuspect)
		}
		return explain(err, u, again)
	}
	msg := fmt.Sprintf("verified %d receipt(s) against the log's checkpoint of size %d", verified, newest.Size)
	if other > 0 {
		msg += fmt.Sprintf(" (%d receipt(s) of other logs skipped)", other)
	}
	fmt.Fprintln(c.stdout, msg)
	return nil
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
		return errorf("the server sent a malformed consistency proof: %v", err).Hint(serverSuspect)
	case intakelog.IsLogError(err):
		return errorf("the server's log is not consistent with the checkpoint of size %d verified before: %v", old.Size, err).
			Hint(serverSuspect)
	}
	return explain(err, u, "run 'testimony receipts verify' again")
}

// logVerifier checks receipts against the newest checkpoint, fetching
// each consistency proof once.
type logVerifier struct {
	lc     *intakelog.Client
	u      *url.URL
	newest intakelog.Checkpoint
	proofs map[int64][]tlog.Hash
}

// check returns a plain error if the log does not prove r, and a *cliError
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
		return prefixed("", explain(err, lv.u, "run 'testimony receipts verify' again"))
	}
	// The server refused to prove this receipt (an index or size it says
	// it does not have): that is the receipt's failure.
	return err
}
