// Package review verifies and opens collection bundles on the reviewer's
// air-gapped machine, which acts as a witness of the server's intake log.
//
// Verify checks a bundle without decrypting anything: the log checkpoints'
// signatures, that the bundle continues exactly from the checkpoint this
// machine verified last, the consistency and inclusion proofs, that every
// log leaf is accounted for and that every ciphertext matches its leaf. Any
// failure refuses the whole bundle with a RefusedError that names the
// attack it reveals: a dropped submission, a swapped or altered ciphertext,
// a rewritten or forked history, an unknown signing key, a submission id
// reused by a second leaf, a bundle replayed out of order or one missing.
// The log itself is checked by intakelog.Client, the same client the
// caseworker's tool uses online, with bundle.json as its Ops; Verify adds
// the bundle's rules (where it must start, what it must list) and names
// the attacks.
//
// Open then decrypts each submission of a verified bundle, extracts the
// envelope into a private temporary directory, checks the caseworker's
// signature over the manifest, writes the chain-of-custody record
// (custody.json and custody.txt) and, once every submission got that far,
// renames the directories to OUTDIR/<id>.
//
// # Output layout
//
// An opened submission is the directory OUTDIR/<id> (mode 0700) holding the
// submitted files at top level, manifest.json (if the envelope had one),
// custody.json and custody.txt. Work in progress is
// OUTDIR/.tmp-<id>-<random>; it is removed when the submission fails and, if
// a crash left one behind, the next Open removes it before trying the
// submission again.
//
// A submission whose OUTDIR/<id> exists is reported as already open only if
// that directory's custody.json records the same log, leaf index and leaf
// hash; any other directory there fails the submission, so that nothing
// logged is ever skipped because its id is taken.
//
// # Caveats
//
// Two Opens must not run on the same output directory at once: each removes
// the other's leftover-looking temporary directories.
//
// The final rename checks that OUTDIR/<id> still does not exist just before
// renaming; on a multi-user machine another account with write access to
// OUTDIR could race that check, so OUTDIR should be private to the reviewer
// (Open creates it 0700).
//
// Verify reads every ciphertext once and Open reads it again while
// decrypting, comparing the hash, so a file changed in between is caught
// but a large bundle is read twice. With Witness.HashInOpen, Verify leaves
// the hashing to Open, which reads each ciphertext once: it then decrypts
// and extracts a ciphertext before knowing that it is the logged one (into
// its work directory, which the extraction's limits protect from hostile
// archives as they must anyway, since a caseworker's device can send one
// with a logged hash), and moves nothing into OUTDIR until every ciphertext
// matched.
package review
