package app

import (
	"context"
	"crypto/ed25519"
	"io"
	"time"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// The app runs the caseworker package's operations, the ones the command
// line runs: enrolment, submit, resume, status and receipts. These are
// its configuration and enrolment types.
type (
	Setup     = caseworker.Setup
	Enrolment = caseworker.Enrolment
	Check     = caseworker.Check
)

// Enrolment steps, in order.
const (
	StepInput     = caseworker.StepInput
	StepOrgKey    = caseworker.StepOrgKey
	StepLogKey    = caseworker.StepLogKey
	StepDeviceKey = caseworker.StepDeviceKey
	StepServer    = caseworker.StepServer
)

// Events follow a submit or resume; any may be nil.
type Events struct {
	// Progress: label is "encrypting" or "uploading"; total < 0 is unknown.
	Progress func(label string, done, total int64)
	// Encrypted: outbox entry name was written.
	Encrypted func(name string)
	// Sending: outbox entry name is being uploaded.
	Sending func(name string)
	// Retrying: a network failure that will be retried after wait.
	Retrying func(err error, wait time.Duration)
	// Sent: name's receipt was verified and saved as id.
	Sent func(name, id string)
}

// handle passes the caseworker package's events to ev.
func (ev Events) handle(e caseworker.Event) {
	switch e := e.(type) {
	case caseworker.Progress:
		if ev.Progress != nil {
			ev.Progress(e.Label, e.Done, e.Total)
		}
	case caseworker.Encrypted:
		if ev.Encrypted != nil {
			ev.Encrypted(e.Name)
		}
	case caseworker.Sending:
		if ev.Sending != nil {
			ev.Sending(e.Name)
		}
	case caseworker.UploadWait:
		if ev.Retrying != nil {
			ev.Retrying(e.Err, e.Wait)
		}
	case caseworker.Sent:
		if ev.Sent != nil {
			ev.Sent(e.Name, e.ID)
		}
	}
}

// Outbox is the outbox and the receipts.
type Outbox struct {
	Pending []Pending
	Sent    []Sent
}

// Pending is an outbox entry.
type Pending struct {
	Name          string // local name, 16 hex digits
	Created       string // YYYY-MM-DD
	Size          int64
	UploadStarted bool
}

// Sent is a saved receipt.
type Sent struct {
	ID         string
	Received   string // as the receipt says
	Size       int64
	Index      int64
	Checkpoint string // the checkpoint note of the receipt
}

// Verification is the outcome of verifyReceipts.
type Verification struct {
	OK     []string // ids the log still proves
	Failed []string // ids it does not
	Err    error    // why the check could not run or failed
	// Of the ids in OK: Reviewed maps those a reviewer's witness
	// acknowledged to the date it signed; Unproven are those the server
	// says were acknowledged but whose acknowledgement does not verify;
	// Unasked are those whose review the server could not be asked.
	Reviewed map[string]string
	Unproven []string
	Unasked  []string
}

// appError is an error of the caseworker package as the app shows it:
// the message with its hints.
type appError struct{ msg string }

func (e appError) Error() string { return e.msg }

func shown(err error) error {
	if err == nil {
		return nil
	}
	return appError{caseworker.Message(err)}
}

// outbox lists what waits in the outbox and the saved receipts.
func (a *App) outbox() (Outbox, error) {
	var o Outbox
	st, err := a.cfg.Client.Status()
	if err != nil {
		return o, err
	}
	for _, e := range st.Outbox.Entries {
		o.Pending = append(o.Pending, Pending{Name: e.Name, Created: e.Meta.Created, Size: e.Meta.Size, UploadStarted: e.Meta.UploadID != ""})
	}
	for _, r := range st.Receipts {
		o.Sent = append(o.Sent, Sent{ID: r.ID, Received: r.Received, Size: r.Size, Index: r.Index, Checkpoint: r.Checkpoint})
	}
	return o, nil
}

// submit encrypts the envelope of meta and sources into the outbox and
// sends it to server, with the token kept for it; it returns the
// submission id. ev.Encrypted is called once the ciphertext is safe in
// the outbox: an error after it leaves the entry there for resume.
func (a *App) submit(ctx context.Context, server string, meta envelope.Meta, sources []envelope.Source, ev Events) (string, error) {
	// Offline, the files are encrypted into the outbox all the same: the
	// spool's key dies with the app, the outbox survives it.
	o := caseworker.SubmitOptions{Conn: a.cfg.Client.StoredConn(server), RateLimit: a.cfg.RateLimit, EncryptOffline: true}
	id, err := a.cfg.Client.WithEvents(ev.handle).Submit(ctx, o, func(w io.Writer, signer ed25519.PrivateKey) error {
		_, err := envelope.BuildSources(w, meta, sources, signer)
		return err
	})
	return id, shown(err)
}

// resume sends every entry waiting in the outbox.
func (a *App) resume(ctx context.Context, ev Events) error {
	return shown(a.cfg.Client.WithEvents(ev.handle).Resume(ctx, caseworker.ResumeOptions{RateLimit: a.cfg.RateLimit}))
}

// verifyReceipts re-checks every saved receipt of server's log against its
// newest checkpoint, as "testimony receipts verify" does.
func (a *App) verifyReceipts(ctx context.Context, server string) Verification {
	v := Verification{Reviewed: map[string]string{}}
	cw := a.cfg.Client.WithEvents(func(e caseworker.Event) {
		rc, ok := e.(caseworker.ReceiptChecked)
		if !ok {
			return
		}
		id := rc.Receipt.ID
		if rc.Err != nil {
			v.Failed = append(v.Failed, id)
			return
		}
		v.OK = append(v.OK, id)
		switch rc.Review.State {
		case caseworker.Reviewed:
			v.Reviewed[id] = rc.Review.Date
		case caseworker.ReviewUnproven:
			v.Unproven = append(v.Unproven, id)
		case caseworker.ReviewUnasked:
			v.Unasked = append(v.Unasked, id)
		}
	})
	_, err := cw.VerifyReceipts(ctx, caseworker.VerifyOptions{Conn: a.cfg.Client.StoredConn(server)})
	v.Err = shown(err)
	return v
}
