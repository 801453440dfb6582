package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

const submitUsage = `Usage:
    testimony submit -server URL [-ca FILE | -pin SHA256] [options] FILE...

Encrypts FILE... into one submission on this device, keeps the ciphertext
in the outbox, uploads it and saves the server's receipt after checking it
against the intake log's key. The submission id is the last line of
standard output. Over a bad link the upload goes on through cuts and
stalls, continuing where the server's copy ends, and prints a line before
each wait; it stops only after -give-up-after without progress. If it is
interrupted, run "testimony resume".

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

With your organisation's key pinned ("testimony init -org-key KEY"), only
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
	fs := cmdline.NewFlagSet("submit")
	var cf caseworker.Conn
	registerConn(fs, &cf)
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
		tf             caseworker.TrustKeys
	)
	fs.Var(&rate, "limit-rate", "")
	c.link.register(fs)
	fs.StringVar(&tf.OrgKey, "org-key", "", "")
	fs.StringVar(&tf.LogKey, "log-key", "", "")
	if err := c.parseFlags(fs, submitUsage, args); err != nil {
		return err
	}
	meta, files, err := c.submitInput(fs, *metaFile, envelope.Meta{Case: *caseRef, InterviewDate: *date, Language: *lang, Consent: *consent})
	if err != nil {
		return err
	}
	// Flag mistakes are reported before any file is read.
	if _, err := cf.URL(true); err != nil {
		return err
	}
	if err := c.checkFiles(files, *allowEmpty); err != nil {
		return err
	}
	var local *recipients.Set
	if *recipientsFile != "" {
		f, err := os.Open(*recipientsFile)
		if err != nil {
			return cmdline.Errorf("cannot read recipients file %v", pathError(err))
		}
		local, err = recipients.Parse(f)
		f.Close()
		if err != nil {
			return cmdline.Errorf("recipients file %s: %v", *recipientsFile, err).
				Hint("the file lists age public keys (age1…), one per line, as your organisation publishes them")
		}
	}
	id, err := c.client().Submit(ctx, caseworker.SubmitOptions{Conn: cf, Keys: tf, Recipients: local, AcceptNew: *accept, RateLimit: int64(rate)},
		func(w io.Writer, signer ed25519.PrivateKey) error {
			_, err := envelope.Build(w, meta, files, signer)
			return err
		})
	if err != nil {
		return err
	}
	c.progressClear()
	fmt.Fprintln(c.stdout, id)
	return nil
}

// pathError drops the operation from a *fs.PathError: "open x: no such
// file" reads better as "x: no such file" in a CLI message.
func pathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
