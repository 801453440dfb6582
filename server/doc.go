// Package server is testimony's intake server: the HTTPS API that caseworkers
// upload ciphertext to and collectors download it from, the admin socket that
// the operator's commands use while the server runs, and the set-up of a
// data directory.
//
// The server only ever holds public keys, and one signing key of its own:
// the intake log key. It checks that what it stores is an age v1 file
// encrypted to the deployment's recipient type, hashes it, appends a leaf
// for it to the intake log (in the same transaction), and answers with a
// receipt: a signed checkpoint and an inclusion proof. It never parses an
// age identity and never sees plaintext.
//
// # Intake log
//
// Checkpoints are derived from the stored log on demand and signed with the
// log key; the newest is cached in memory (intakelog.go). Nothing about
// them is stored, so a crash between committing a submission and signing a
// checkpoint leaves nothing to repair. The recipients served may be
// replaced by an organisation-signed note (recipients set); the server
// cannot forge one, and with init -org-key it refuses notes that key did
// not sign.
//
// # Data directory
//
//	testimony.db    the bbolt store (see package store), mode 0600
//	admin.sock      the admin socket while serve runs, mode 0600
//	tls/cert.pem    the self-signed certificate (-tls-self-signed), mode 0600
//	tls/key.pem     its private key, mode 0600
//
// The directory itself is kept at mode 0700: the socket's own mode is not
// honoured everywhere, and the directory is what keeps other users out.
//
// # Requests
//
// Routes are declared in one place (routes.go). Each handler is a function
// that returns (response, status, error); one function, errorStatus, turns
// errors into status codes, so 5xx responses carry a generic message and the
// detail goes only to the log. Logs name the route template, never the
// client's address, User-Agent, token or any body.
//
// # Caveats
//
// A failed-authentication budget is kept in memory for the whole server,
// because recording client addresses is not an option. It slows down
// guessing and keeps logs quiet; it never locks out a valid token, so an
// attacker cannot use it to stop caseworkers from submitting.
//
// The limits per submit token (quota.go) are counted in memory too: nothing
// on disk may link a submission to its token, so they start from zero at
// each start.
//
// # Maintenance
//
// maintenance.go compacts a stopped server's database (swapping the copy in
// and overwriting the old file), streams a backup over the admin socket
// while the server runs (GET /admin/backup, a plain handler because its
// body is the file), and checks a database or backup: bbolt's page check
// and the intake log's tree recomputed from its leaves.
package server
