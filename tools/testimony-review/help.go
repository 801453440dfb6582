package main

import "github.com/testimony-ngo/testimony/internal/cmdline"

// commandPages are the pages "testimony-review COMMAND -h" prints, one per
// top-level command; a subcommand's -h prints its command's page. A command
// without a page here gets the general usage text.
var commandPages = map[string]string{
	"keygen":      keygenPage,
	"org":         orgPage,
	"recipients":  recipientsPage,
	"log":         logPage,
	"caseworkers": caseworkersPage,
	"open":        openPage,
	"index":       indexUsage,
	"waive":       waivePage,
	"ack":         ackPage,
	"version":     cmdline.VersionPage(prog),
}

const ackPage = `Usage:
    testimony-review ack -o ACK BUNDLE

Writes ACK, a signed acknowledgement of the submissions of the bundle
directory BUNDLE that opened on this machine (as opened.json records them:
the very log leaf, by index and leaf hash). Submissions that failed to open,
waived or not, are left out. This machine's witness key (see "log
witness-key") cosigns the newest log checkpoint it verified, in the C2SP
tlog-cosignature format, and signs the list of log indexes. ACK holds no
secret. The collector carries it to the server with "testimony ack", and
the server then deletes the ciphertext of exactly those submissions; their
log leaves stay. ACK is never overwritten.

Example:
    $ testimony-review ack -o /media/usb/reviewed.ack /media/usb/bundle-2026-11-27
`

const keygenPage = `Usage:
    testimony-review keygen -o FILE [-x25519] [-passphrase]

Creates a new identity file FILE (mode 0600; an existing file is never
overwritten) and prints its recipient on standard output, one line, to be
appended to the recipients file with >>. Never use >: it empties the file
before keygen starts, wiping the other reviewers' recipients.

    -o FILE        the identity file to create
    -passphrase    encrypt FILE with a passphrase (age scrypt), asked twice
                   on the terminal, or read from the first line of standard
                   input when that is not a terminal
    -x25519        make a classic X25519 identity (age1…) instead of the
                   default hybrid post-quantum one (age1pq1…)

Example:
    $ testimony-review keygen -passphrase -o alice.key >> recipients.txt
`

const orgPage = `Usage:
    testimony-review org init -o FILE [-name NAME] [-passphrase]

Creates the organisation's signing key FILE (mode 0600, never overwritten)
and prints its verifier key, which caseworkers pin with
"testimony init -org-key". Whoever holds FILE decides whom caseworkers
encrypt to: keep it on the air-gapped machine and in offline backups.

    -o FILE        the key file to create
    -passphrase    encrypt FILE with a passphrase (age scrypt), as keygen
                   -passphrase does; recipients sign then asks for it
    -name NAME     the key's name (default testimony-org)

Example:
    $ testimony-review org init -passphrase -o /media/safe/org.key > org.pub
`

const recipientsPage = `Usage:
    testimony-review recipients sign -org FILE -version N RECIPIENTS

Prints, on standard output, a note signed with the organisation key FILE
listing the recipients in the file RECIPIENTS (one age1pq1… or age1… line
per reviewer), their type and version N. Every new list needs a higher N.
A passphrase-protected FILE asks for its passphrase. The operator installs
the note with "testimony-server recipients set".

    -org FILE      the organisation key made by org init
    -version N     1 for the first list, higher for every new one

Example:
    $ testimony-review recipients sign -org /media/safe/org.key -version 1 recipients.txt > recipients.note
`

const logPage = `Usage:
    testimony-review log trust [-replace] KEY
    testimony-review log verify [-log-key KEY] BUNDLE
    testimony-review log witness-key [-passphrase] [-name NAME]

log trust pins the intake log's verifier key KEY, printed by
"testimony-server init". -replace replaces a different pinned key and
forgets the verified checkpoint: a new key is a new log.

log verify checks the bundle directory BUNDLE (log checkpoints, proofs,
every leaf accounted for, every ciphertext matching its leaf) without
decrypting it, without an identity and without changing anything on this
machine. -log-key KEY checks with KEY instead of a pinned key.

log witness-key prints this machine's witness verifier key, for the
operator's "testimony-server witness add". The first time, it makes the key
(witness.key in the state directory, mode 0600) named NAME (default
testimony-witness); -passphrase encrypts it, asked twice on the terminal or
read from standard input, and ack then asks for it.

Examples:
    $ testimony-review log trust testimony-log-0a1b2c3d+5055fc05+AWsok8…
    $ testimony-review log verify /media/usb/bundle-2026-11-27
    $ testimony-review log witness-key -passphrase
`

const caseworkersPage = `Usage:
    testimony-review caseworkers add NAME KEY
    testimony-review caseworkers remove NAME
    testimony-review caseworkers list

add registers a caseworker's device key (tdk1…, printed by "testimony init"
on their laptop) under NAME; open then names who signed each submission.
remove forgets one, at once when a laptop is lost or seized. list prints
the registered keys.

Example:
    $ testimony-review caseworkers add "Kim Ji-won" tdk1q3Vh…
`

const openPage = `Usage:
    testimony-review open -i IDENTITY [-i IDENTITY...] -o OUTDIR [-log-key KEY] [-lang ko|en] BUNDLE

Verifies the bundle directory BUNDLE as a whole and refuses it entirely if
anything fails; then decrypts every submission into OUTDIR/<id>/: the
files, manifest.json and the chain-of-custody record custody.json and
custody.txt. Nothing is written for a submission unless its decryption,
envelope and caseworker signature check out. A submission whose
OUTDIR/<id> holds its own custody record is skipped as already open; any
other folder there fails it and is left alone. A submission that failed to
open is listed by every later open, which fails until it is opened (from
the bundle that carried it, e.g. with another -i) or waived. On a
terminal, progress is shown on standard error. Then it writes the case
view, OUTDIR/index.html: open it in a web browser to read every submission
by case and play its recordings (see "testimony-review index -h").

    -i IDENTITY    an identity file made by keygen on this machine; repeat
                   it for several. A passphrase-protected one asks for its
                   passphrase on the terminal, or reads one line of standard
                   input per protected file when that is not a terminal
    -o OUTDIR      the output directory, created if needed
    -log-key KEY   the log's verifier key, pinned if none is pinned yet
    -lang ko|en    the case view's language (default: from LC_ALL, LC_MESSAGES or LANG)

Example:
    $ testimony-review open -i alice.key -o cases /media/usb/bundle-2026-11-27
`

const waivePage = `Usage:
    testimony-review waive -by NAME -reason TEXT ID

Records that the submission ID, which failed to open, will not be opened:
who decided, when and why, kept in failed.json and printed as a custody
record. open then stops listing it and failing. Opening it later (from the
bundle that carried it) still works and replaces the waiver.

    -by NAME       the reviewer who decides
    -reason TEXT   why it will not be opened

Example:
    $ testimony-review waive -by "Lee Min-ho" -reason "damaged before upload; sent again as 5c1f…" 0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d
`
