// Package review opens collection bundles on the reviewer's air-gapped
// machine: for every submission it verifies the server's signed receipt and
// the ciphertext's size and SHA-256, decrypts it, extracts the envelope into
// a private temporary directory, and only when everything checked out
// renames that directory to OUTDIR/<id>.
//
// # Output layout
//
// An opened submission is the directory OUTDIR/<id> (mode 0700) holding the
// submitted files at top level, manifest.json (if the envelope had one) and
// receipt.json (the server's signed receipt, byte for byte as in the bundle).
// Work in progress is OUTDIR/.tmp-<id>-<random>; it is removed when the
// submission fails and, if a crash left one behind, the next Open removes it
// before trying the submission again.
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
package review
