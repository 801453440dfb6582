package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"

	"filippo.io/age"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/devicekey"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/upload"
)

const submitUsage = `Usage:
    testimony submit -server URL [-ca FILE | -pin SHA256] [options] FILE...

Encrypts FILE... into one submission on this device, keeps the ciphertext
in the outbox, uploads it and saves the server's receipt after checking it
against the intake log's key. The submission id is the last line of
standard output. Over a bad link the upload goes on through cuts and
stalls, continuing where the server's copy ends, and prints a line before
each wait; it stops only after -give-up-after without progress. If it is
interrupted, run 'testimony resume'.

The manifest inside the envelope (metadata and every file's SHA-256) is
signed with this device's key (device.key, created on first use), so the
reviewer can tell which device packed the testimony and that nothing
changed since.

Options:
    -server URL              The intake server (https://…, also for a .onion).
    -ca FILE                 Trust only this PEM CA or self-signed certificate.
    -pin SHA256              Trust only the certificate with this SHA-256 fingerprint
                             (64 hex digits, colons allowed: AB:CD:…).
    -replace-pin             Replace the -pin or -ca remembered for this server,
                             after the operator confirmed the new certificate
                             out of band.
    -token-file FILE         Read the submit token from FILE (default: $TESTIMONY_TOKEN).
    -proxy URL               Connect through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050
                             for Tor and .onion servers (default: $TESTIMONY_PROXY).
    -recipients FILE         Encrypt to the age recipients in FILE, not the server's list.
    -meta FILE               Read the metadata and the file names from FILE, which
                             only you may read (mode 0600); - reads standard input.
    -case REF                Case reference, stored inside the encrypted manifest.
    -lang CODE               Language of the testimony, like ko or en.
    -date YYYY-MM-DD         Interview date.
    -consent TEXT            The consent given, and for what use.
    -allow-empty             Send a file of 0 bytes (refused without it: a failed
                             recording is the usual cause).
    -limit-rate RATE         Upload at most RATE bytes per second on average
                             (like 64K or 2M), to spare a slow or watched link.
    -give-up-after DURATION  Stop when the upload made no progress for this
                             long (default 24h; 0: keep trying while running).
    -stall-timeout DURATION  Abandon and retry a request on which nothing
                             moved for this long (default 60s).
    -org-key VKEY            Your organisation's verifier key (pinned if none is yet).
    -log-key VKEY            The intake log's verifier key (pinned if none is yet).
    -accept-new-recipients   Accept server keys that differ from the pinned ones,
                             after verifying them with your organisation.

Other users of this computer can see a command line while it runs, and
the shell keeps it in its history: -case, -lang, -date, -consent and the
file names (often people's names) are better put in a -meta file, one
"key: value" per line with the keys case, lang, date, consent and file
(once per file), or a JSON object with case, lang, date, consent and
files. Unknown or repeated keys are refused; so is a meta file that
others can read. The flags still work, with a warning.

-ca or -pin is remembered for the server (https://host:port) after the
first successful connection, so later commands need neither; a server
whose certificate no longer matches is refused, and so is a -pin or -ca
that differs from the remembered one, unless -replace-pin is given.

With your organisation's key pinned ('testimony init -org-key KEY'), only
recipients your organisation signed are used: a server that offers others,
none, or an older version of the list is refused. Without it, the first
connection to a server pins its recipients and log key, and a later change
is refused, because it may mean the server was compromised.

Example:
    $ cat interview.meta
    case: NK-2026-041
    lang: ko
    date: 2026-11-27
    consent: research and publication
    file: interview.m4a
    $ testimony submit -server https://intake.example.org -meta interview.meta
`

func (c *cli) submit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var (
		recipientsFile = fs.String("recipients", "", "")
		caseRef        = fs.String("case", "", "")
		lang           = fs.String("lang", "", "")
		date           = fs.String("date", "", "")
		consent        = fs.String("consent", "", "")
		accept         = fs.Bool("accept-new-recipients", false, "")
		metaFile       = fs.String("meta", "", "")
		allowEmpty     = fs.Bool("allow-empty", false, "")
		rate           rateFlag
		tf             trustFlags
	)
	fs.Var(&rate, "limit-rate", "")
	c.link.register(fs)
	fs.StringVar(&tf.orgKey, "org-key", "", "")
	fs.StringVar(&tf.logKey, "log-key", "", "")
	if err := c.parseFlags(fs, submitUsage, args); err != nil {
		return err
	}
	meta, files, err := c.submitInput(fs, *metaFile, envelope.Meta{Case: *caseRef, InterviewDate: *date, Language: *lang, Consent: *consent})
	if err != nil {
		return err
	}
	// Flag mistakes are reported before any file is read.
	if _, err := cf.serverURL(true); err != nil {
		return err
	}
	if err := c.checkFiles(files, *allowEmpty); err != nil {
		return err
	}
	var local *recipients.Set
	if *recipientsFile != "" {
		f, err := os.Open(*recipientsFile)
		if err != nil {
			return errorf("cannot read recipients file %v", pathError(err))
		}
		local, err = recipients.Parse(f)
		f.Close()
		if err != nil {
			return errorf("recipients file %s: %v", *recipientsFile, err).
				Hint("the file lists age public keys (age1…), one per line, as your organisation publishes them")
		}
	}
	id, err := c.submitTo(ctx, submitOptions{cf: cf, tf: tf, local: local, accept: *accept, rate: int64(rate)},
		func(w io.Writer, signer ed25519.PrivateKey) error {
			_, err := envelope.Build(w, meta, files, signer)
			return err
		})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, id)
	return nil
}

// submitOptions say where and how submitTo sends.
type submitOptions struct {
	cf     connFlags
	tf     trustFlags
	local  *recipients.Set
	accept bool
	rate   int64
}

// submitTo connects, checks the server's keys, encrypts what build writes
// (the envelope, signed with the device key it is given) into the outbox
// and sends it. It returns the submission id. The CLI's submit builds
// from file paths, the caseworker's app from the files its browser page
// sends.
func (c *cli) submitTo(ctx context.Context, o submitOptions, build func(w io.Writer, signer ed25519.PrivateKey) error) (string, error) {
	sess, err := c.connect(o.cf, o.tf)
	if err != nil {
		return "", err
	}
	u, h, t, cl, tlsOpt := sess.u, sess.h, sess.t, sess.cl, sess.tls
	unlock, err := h.lockOutbox()
	if err != nil {
		return "", err
	}
	defer unlock()
	keys, err := c.fetchKeys(ctx, h, t, cl, u, o.local, o.accept, false)
	if err != nil {
		return "", err
	}
	if err := c.connected(sess); err != nil {
		return "", err
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
	e, err := ob.Create(outbox.Meta{Server: u.String(), CAPEM: string(tlsOpt.CAPEM), TLSPin: tlsOpt.Pin, OrgKey: keys.orgKey, RecipientsVersion: keys.version}, c.now(), func(w io.Writer) error {
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
	c.progressClear()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", errorf("%v", err)
	}
	if c.hooks.encrypted != nil {
		c.hooks.encrypted(e.Name)
	}
	return c.send(ctx, h, cl, u, keys.logKey, e, o.rate)
}

// send uploads an outbox entry (at most rate bytes per second if rate > 0),
// verifies and saves its receipt and removes the entry. It returns the
// submission id.
func (c *cli) send(ctx context.Context, h *home, cl *api.Client, u *url.URL, logKey string, e *outbox.Entry, rate int64) (string, error) {
	ob := h.outbox()
	f, err := ob.Open(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if c.hooks.sending != nil {
		c.hooks.sending(e.Name)
	}
	up := c.uploader(cl, rate)
	id, raw, err := up.Run(ctx, upload.Job{
		File:         f,
		Size:         e.Meta.Size,
		SHA256:       e.Meta.SHA256,
		UploadID:     e.Meta.UploadID,
		SaveUploadID: func(id string) error { return ob.SetUploadID(e, id) },
	})
	c.progressClear()
	if err != nil {
		return "", explain(err, u, "run 'testimony resume'; the encrypted submission stays in the outbox")
	}
	r, err := verifyReceipt(raw, logKey, id, e.Meta.Size, e.Meta.SHA256)
	if err != nil {
		return "", errorf("%v", err).
			Hint("the submission stays in the outbox; report this to your organisation, as the server may be misbehaving")
	}
	if err := h.saveReceipt(r); err != nil {
		return "", err
	}
	f.Close()
	if err := ob.Remove(e); err != nil {
		return "", err
	}
	if c.hooks.sent != nil {
		c.hooks.sent(e.Name, id)
	}
	return id, nil
}

// deviceKey loads the device's signing key, creating it on first use.
func (c *cli) deviceKey(h *home) (ed25519.PrivateKey, error) {
	priv, created, err := devicekey.LoadOrCreate(h.deviceKeyPath())
	if errors.Is(err, devicekey.ErrExposed) {
		c.notef("warning: %v", err)
		c.hintf("restrict it with: chmod 600 %s", h.deviceKeyPath())
		err = nil
	}
	if err != nil {
		return nil, errorf("%v", err).
			Hint("if %s is damaged, move it away and run 'testimony init' to make a new key; then register the new key with your reviewers", h.deviceKeyPath())
	}
	if created {
		pub := priv.Public().(ed25519.PublicKey)
		c.notef("created this device's signing key %s", envelope.DeviceKeyString(pub))
		c.hintf("give that line to your reviewers, who register it with 'testimony-review caseworkers add NAME KEY'")
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

// pathError drops the operation from a *fs.PathError: "open x: no such
// file" reads better as "x: no such file" in a CLI message.
func pathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
