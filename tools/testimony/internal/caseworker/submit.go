package caseworker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/devicekey"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/upload"
)

// SubmitOptions say where and how Submit sends.
type SubmitOptions struct {
	Conn Conn
	// Keys are -org-key and -log-key: pinned if none is yet.
	Keys TrustKeys
	// Recipients, if set, replace the server's (-recipients FILE).
	Recipients *recipients.Set
	// AcceptNew accepts server keys that differ from the pinned ones
	// (-accept-new-recipients).
	AcceptNew bool
	// RateLimit is the most bytes per second to upload; 0 for no limit.
	RateLimit int64
	// EncryptOffline encrypts into the outbox when the server cannot be
	// reached for its keys, to the keys verified on this device before
	// (the newest organisation-signed list, else those pinned for the
	// server), and then waits for the network to upload. The app sets it:
	// what it holds of a testimony before encryption dies with it.
	// Resume refuses to upload an entry whose list has been replaced
	// since, as for any other.
	EncryptOffline bool
}

// BuildFunc writes the plaintext envelope to w, its manifest signed with
// signer, the device key.
type BuildFunc func(w io.Writer, signer ed25519.PrivateKey) error

// Submit connects, checks the server's keys, encrypts what build writes
// into the outbox and sends it. It returns the submission id. If build
// announces the envelope's size (as envelope.Build does), the upload runs
// while the ciphertext is written, each chunk sent once it is in the
// outbox file; it is finished only after the entry is complete. The CLI's
// submit builds from file paths, the caseworker's app from the files its
// browser page sends.
func (c *Client) Submit(ctx context.Context, o SubmitOptions, build BuildFunc) (string, error) {
	sess, err := c.connect(o.Conn, o.Keys)
	if err != nil {
		return "", err
	}
	u, h, cl, tlsOpt := sess.u, sess.h, sess.cl, sess.tls
	unlock, err := h.lockOutbox()
	if err != nil {
		return "", err
	}
	defer unlock()
	keys, err := c.fetchKeys(ctx, sess, keyOptions{local: o.Recipients, accept: o.AcceptNew})
	var unreachable unreachableError
	switch {
	case errors.As(err, &unreachable) && o.EncryptOffline && o.Recipients == nil:
		var ok bool
		if keys, ok = c.verifiedKeys(h, sess.t, u); !ok {
			return "", err
		}
		c.notef("%s cannot be reached: encrypting to the reviewers' keys verified on this device before; the upload waits for the network", u.Host)
	case err != nil:
		return "", err
	default:
		if err := c.connected(sess); err != nil {
			return "", err
		}
	}
	signer, err := c.deviceKey(h)
	if err != nil {
		return "", err
	}
	ageRecipients, err := keys.recipients.AgeRecipients()
	if err != nil {
		return "", err
	}
	ob := h.outbox()
	p, err := ob.Begin(outbox.Meta{Server: u.String(), CAPEM: string(tlsOpt.CAPEM), TLSPin: tlsOpt.Pin, OrgKey: keys.orgKey, RecipientsVersion: keys.version})
	if err != nil {
		return "", cmdline.Errorf("%v", err)
	}
	defer p.Close()
	// The upload reports from its own goroutine while build writes.
	c = c.serialized()
	ov := &overlap{c: c, p: p, cl: cl, rate: o.RateLimit}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e, err := c.encrypt(ctx, p, ageRecipients, signer, build, func(size int64) { ov.start(uctx, size) })
	if err != nil {
		p.Abort(err)
		cancel()
		ov.wait()
		ov.abandon(ctx)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", cmdline.Errorf("%v", err)
	}
	c.emit(Encrypted{Name: e.Name})
	if !ov.started {
		p.Close()
		return c.send(ctx, h, cl, u, keys.logKey, e, o.RateLimit)
	}
	ov.wait()
	if errors.Is(ov.err, errMispredicted) {
		// Never expected: the envelope checks the size it announced.
		// The entry is complete; send it again on its own.
		ov.abandon(ctx)
		if err := ob.SetUploadID(e, ""); err != nil {
			return "", cmdline.Errorf("%v", err)
		}
		p.Close()
		return c.send(ctx, h, cl, u, keys.logKey, e, o.RateLimit)
	}
	return c.sent(h, u, keys.logKey, e, p.Close, ov.id, ov.receipt, ov.err)
}

// encrypt writes the age encryption of what build writes into p and
// commits it. When build announces the envelope's size (envelope's
// SizeSetter), it calls start with the ciphertext's size, so the upload
// can begin while the ciphertext is written.
func (c *Client) encrypt(ctx context.Context, p *outbox.Pending, to []age.Recipient, signer ed25519.PrivateKey, build BuildFunc, start func(size int64)) (*outbox.Entry, error) {
	var started atomic.Bool
	pw := &countWriter{ctx: ctx, w: p, fn: func(n int64) {
		// Once the upload runs, its progress (which trails this) is
		// the one shown.
		if !started.Load() {
			c.progress("encrypting", n, -1)
		}
	}}
	aw, err := age.Encrypt(pw, to...)
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt: %w", err)
	}
	sw := &sizedWriter{w: aw, setSize: func(n int64) {
		started.Store(true)
		start(recipients.CiphertextSize(pw.n, n))
	}}
	if err := build(sw, signer); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("failed to encrypt: %w", err)
	}
	return p.Commit(c.Now())
}

// sizedWriter passes the envelope's size, announced before its first
// byte, to setSize.
type sizedWriter struct {
	w       io.Writer
	setSize func(int64)
	set     bool
}

func (s *sizedWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *sizedWriter) SetSize(n int64) error {
	if s.set {
		return errors.New("failed to encrypt: the envelope's size was announced twice")
	}
	s.set = true
	s.setSize(n)
	return nil
}

// errMispredicted means the ciphertext's size differs from the one its
// overlapping upload was created with.
var errMispredicted = errors.New("the encrypted submission's size differs from the size predicted for its upload")

// overlap is the upload of an outbox entry that runs while the entry is
// still being encrypted: chunk by chunk, each once it is written to the
// outbox file, and finished only once the entry is complete.
type overlap struct {
	c    *Client
	p    *outbox.Pending
	cl   *api.Client
	rate int64

	started bool
	done    chan struct{}
	// Set by the upload's goroutine before done is closed.
	created string // the upload id, once the upload was created
	id      string
	receipt []byte
	err     error
}

func (o *overlap) start(ctx context.Context, size int64) {
	o.started = true
	o.done = make(chan struct{})
	go func() {
		defer close(o.done)
		o.c.emit(Sending{Name: o.p.Name()})
		o.id, o.receipt, o.err = o.c.uploader(o.cl, o.rate).Run(ctx, upload.Job{
			File:    o.p,
			Size:    size,
			Written: o.p.WaitFor,
			Sum: func(ctx context.Context) (string, error) {
				e, err := o.p.Committed(ctx)
				if err != nil {
					return "", err
				}
				if e.Meta.Size != size {
					return "", fmt.Errorf("%w (%d bytes, %d predicted)", errMispredicted, e.Meta.Size, size)
				}
				return e.Meta.SHA256, nil
			},
			SaveUploadID: func(id string) error {
				o.created = id
				return o.p.SetUploadID(id)
			},
		})
	}()
}

// abandon deletes the upload after the encryption failed: it can never be
// finished. It tries briefly, also after an interrupt: the server deletes
// the upload anyway when it expires.
func (o *overlap) abandon(ctx context.Context) {
	if !o.started || o.created == "" {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonedDeleteTimeout/6)
	defer cancel()
	o.cl.DeleteUpload(dctx, o.created)
}

// wait waits for the upload to end, if it started.
func (o *overlap) wait() {
	if o.started {
		<-o.done
	}
}

// send uploads an outbox entry (at most rate bytes per second if rate > 0),
// verifies and saves its receipt and removes the entry. It returns the
// submission id.
func (c *Client) send(ctx context.Context, h *home, cl *api.Client, u *url.URL, logKey string, e *outbox.Entry, rate int64) (string, error) {
	ob := h.outbox()
	f, err := ob.Open(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	c.emit(Sending{Name: e.Name})
	up := c.uploader(cl, rate)
	id, raw, err := up.Run(ctx, upload.Job{
		File:         f,
		Size:         e.Meta.Size,
		SHA256:       e.Meta.SHA256,
		UploadID:     e.Meta.UploadID,
		SaveUploadID: func(id string) error { return ob.SetUploadID(e, id) },
	})
	return c.sent(h, u, logKey, e, f.Close, id, raw, err)
}

// sent completes the upload of e that ended with (id, raw, err): it
// verifies and saves the receipt, closes e's file and removes e from the
// outbox. It returns the submission id.
func (c *Client) sent(h *home, u *url.URL, logKey string, e *outbox.Entry, closeFile func() error, id string, raw []byte, err error) (string, error) {
	if err != nil {
		return "", explain(err, u, `run "testimony resume"; the encrypted submission stays in the outbox`)
	}
	r, err := verifyReceipt(raw, logKey, id, e.Meta.Size, e.Meta.SHA256)
	if err != nil {
		return "", cmdline.Errorf("%v", err).
			Hint("the submission stays in the outbox; report this to your organisation, as the server may be misbehaving")
	}
	if err := h.saveReceipt(r); err != nil {
		return "", err
	}
	closeFile()
	if err := h.outbox().Remove(e); err != nil {
		return "", err
	}
	c.emit(Sent{Name: e.Name, ID: id})
	return id, nil
}

// deviceKey loads the device's signing key, creating it on first use.
func (c *Client) deviceKey(h *home) (ed25519.PrivateKey, error) {
	priv, created, err := devicekey.LoadOrCreate(h.deviceKeyPath())
	if errors.Is(err, devicekey.ErrExposed) {
		c.notef("warning: %v", err)
		c.hintf("restrict it with: chmod 600 %s", h.deviceKeyPath())
		err = nil
	}
	if err != nil {
		return nil, cmdline.Errorf("%v", err).
			Hint(`if %s is damaged, move it away and run "testimony init" to make a new key; then register the new key with your reviewers`, h.deviceKeyPath())
	}
	if created {
		pub := priv.Public().(ed25519.PublicKey)
		c.notef("created this device's signing key %s", envelope.DeviceKeyString(pub))
		c.hintf(`give that line to your reviewers, who register it with "testimony-review caseworkers add NAME KEY"`)
	}
	return priv, nil
}

// countWriter reports the bytes written so far, and stops the writing
// when ctx is cancelled, so an interrupt during a long encryption takes
// effect at once.
type countWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
	fn  func(int64)
}

func (cw *countWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	cw.fn(cw.n)
	return n, err
}

// serialized returns a copy of c whose Events are called one at a time,
// for an operation that reports from more than one goroutine.
func (c *Client) serialized() *Client {
	if c.Events == nil {
		return c
	}
	var mu sync.Mutex
	fn := c.Events
	return c.WithEvents(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	})
}

// uploader returns the uploader of submit and resume for the server cl, at
// most rate bytes per second if rate > 0.
func (c *Client) uploader(cl *api.Client, rate int64) *upload.Uploader {
	pol := c.UploadRetry
	if pol.Initial == 0 {
		// Tests that build a client by hand give only the short policy.
		pol = c.Retry
	}
	giveUp := c.GiveUpAfter
	if giveUp == 0 {
		giveUp = -1 // keep trying as long as the program runs
	}
	return &upload.Uploader{
		Server:       cl,
		Retry:        pol,
		GiveUpAfter:  giveUp,
		StallTimeout: c.StallTimeout,
		Now:          c.Now,
		Sleep:        c.Sleep,
		RateLimit:    rate,
		Progress:     func(done, total int64) { c.progress("uploading", done, total) },
		Retrying: func(err error, wait time.Duration, held, total int64) {
			c.emit(UploadWait{Err: err, Wait: wait, Held: held, Total: total})
		},
	}
}
