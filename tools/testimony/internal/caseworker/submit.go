package caseworker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/url"
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
// into the outbox and sends it. It returns the submission id. The CLI's
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
	e, err := ob.Create(outbox.Meta{Server: u.String(), CAPEM: string(tlsOpt.CAPEM), TLSPin: tlsOpt.Pin, OrgKey: keys.orgKey, RecipientsVersion: keys.version}, c.Now(), func(w io.Writer) error {
		pw := &countWriter{ctx: ctx, w: w, fn: func(n int64) { c.progress("encrypting", n, -1) }}
		aw, err := age.Encrypt(pw, ageRecipients...)
		if err != nil {
			return fmt.Errorf("failed to encrypt: %w", err)
		}
		if err := build(aw, signer); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return fmt.Errorf("failed to encrypt: %w", err)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", cmdline.Errorf("%v", err)
	}
	c.emit(Encrypted{Name: e.Name})
	return c.send(ctx, h, cl, u, keys.logKey, e, o.RateLimit)
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
	f.Close()
	if err := ob.Remove(e); err != nil {
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
