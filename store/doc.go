// Package store keeps testimony's server state in a single bbolt file:
// small metadata values, token hashes, unfinished uploads, finished
// submissions, the ciphertext itself, split into chunks, and the intake log:
// an append-only Merkle tree (RFC 6962, via golang.org/x/mod/sumdb/tlog)
// with one leaf per submission.
//
// Ciphertext is opaque here. The package never imports age and never looks
// inside a chunk; the server validates age headers and hashes before it calls
// FinishUpload. The store does hash what it stores: every transaction that
// stores a chunk or a piece also advances the upload's running SHA-256 over
// the bytes that became contiguous from the start, and saves its state
// (crypto/sha256's MarshalBinary) in the hashes bucket, so the state always
// matches what is committed and UploadSHA256 need not read an upload that
// arrived in order back. Older files without the bucket's entries are
// hashed by reading them.
//
// A DB is safe for concurrent use by multiple goroutines. Every method that
// changes state commits one bbolt write transaction (DeleteUpload,
// ExpireUploads and DeleteReviewed several small ones), so a method that
// returned nil has been fsynced and survives a crash or kill -9. Values are always copied
// out of transactions, and no read transaction is held while the caller does
// I/O: NewReader opens one short read transaction per chunk.
//
// # Layout
//
// The file holds these buckets:
//
//	meta         key string        -> value bytes (GetMeta, PutMeta)
//	tokens       sha256 of token   -> JSON record (id, name, role, created, revoked)
//	uploads      id (32 hex chars) -> JSON record of an unfinished upload
//	submissions  id (32 hex chars) -> JSON record of a finished submission
//	chunks       id (16 raw bytes) || uint32 big-endian index -> bucket: "data" -> 1..ChunkSize bytes,
//	             or while the chunk arrives: "p" || uint32 big-endian offset -> bucket:
//	             "data" -> 1..PieceSize bytes, "sha256" -> their 32-byte SHA-256
//	logleaves    uint64 big-endian leaf index   -> leaf bytes (encoded by the caller)
//	loghashes    uint64 big-endian stored-hash index (tlog.StoredHashIndex) -> 32-byte hash
//	acks         uint64 big-endian sequence -> acknowledgement file (DeleteReviewed, AckFile)
//	witnesses    name              -> JSON record (verifier key, date added)
//	deleting     16-byte raw id    -> 1, while a reviewed submission's chunks are being deleted (FinishDeletions)
//	byindex      uint64 big-endian log index -> id of its submission (SubmissionsPage)
//	pending      uint64 big-endian log index -> id, for submissions not yet collected
//	hashes       id (32 hex chars) -> JSON record: the running SHA-256 of an unfinished upload
//	             (bytes hashed, MarshalBinary state, state at the start of that chunk)
//	store        "schema"          -> layout version, so a different layout is refused
//	             "logsize"         -> uint64 big-endian number of log leaves
//
// # Layout versions
//
// The "schema" key holds the layout version, now 3, and Open refuses any
// other, so that a binary never writes to a file whose buckets it does not
// maintain. Layout 3 added byindex, pending and hashes, which every write
// keeps in step with the submissions and chunks. A binary of layout 2
// refuses a file of layout 3 ("unsupported store layout"). Open migrates a
// file of layout 2 in one transaction, then records layout 3: it drops
// byindex, pending and hashes, since a binary of layout 2 may have written
// to the file without maintaining them, builds the two indexes from the
// submissions, and lets an unfinished upload's running hash start again
// from its stored chunks (UploadSHA256 reads back what it cannot resume).
// A read-only Open (testimony-server check of a backup) reads a file of
// layout 2 without migrating it; its indexes may then be stale, which
// nothing read-only relies on.
//
// Chunk i of an upload covers bytes [i*ChunkSize, (i+1)*ChunkSize) of the
// ciphertext. Each chunk sits alone in a nested bucket so that writing one
// never rewrites its neighbours (see chunkData in upload.go for the
// measurements). A chunk cut off half way is kept as pieces (PutPieces),
// each alone in a nested bucket of the chunk's for the same reason, and
// replaced by its "data" when its last byte arrives (PutChunkUntil).
// FinishUpload moves an upload's record to submissions in one
// transaction and leaves the chunks where they are. SubmitWhole stores a
// submission of one chunk, its record and its log leaf in a single
// transaction shared with concurrent calls (bbolt's Batch), for small
// one-shot submissions.
//
// In that same transaction FinishUpload appends the submission's leaf to
// the intake log and stores the tree hashes that tlog.StoredHashes derives
// for it, so the log and the submissions can never disagree, even after
// kill -9. The log size lives in the store bucket rather than in meta so
// that PutMeta cannot change it. Checkpoints (signed tree heads) are not
// state: they are computed from the size and the stored hashes on demand
// (LogHashReader, tlog.TreeHash), so there is nothing that a crash could
// leave behind half written.
//
// # Caveats
//
// bbolt takes an exclusive lock on the file, so only one process can have it
// open. Admin commands (issuing tokens, listing submissions) must therefore
// talk to the running server over its admin socket instead of opening the
// file; a second Open waits Options.Timeout and then fails with ErrTimeout.
//
// Deleting an upload only returns its pages to bbolt's freelist: the file
// does not shrink, and the old ciphertext stays on disk until a later write
// reuses those pages. To physically drop deleted data, stop the server,
// copy the file into a new one without the freed pages, then replace the old
// file (and remember that on flash storage even that does not guarantee the
// old blocks are erased). Compact makes that copy; the server package's
// Compact (testimony-server compact) swaps it in and overwrites the old
// file. Backup streams a consistent copy while the server runs, and
// CheckLog recomputes the intake log's tree from its leaves
// (testimony-server backup and check).
//
// Chunks are at most ChunkSize (1 MiB) because bbolt builds a whole value
// in memory when it commits; one value per file would make memory grow with
// the submission. Writing 512 MiB through PutChunk peaked at about 6 MiB of
// Go heap (BenchmarkWrite512MiB), and the figure does not grow with the
// submission size. Each PutChunk is one fsynced commit, so many small chunks
// are slower than few full ones.
//
// The freelist is kept in memory as a hash map and is not written to disk on
// each commit (bbolt's FreelistMapType and NoFreelistSync). Deleting a 4 GiB
// upload frees about a million pages; with the freelist written on every
// commit, each later chunk write also wrote those page ids, and writing
// 64 MiB afterwards took 1.07s instead of 0.07s (4 GiB written fresh: 45s
// instead of 8s). Close writes the freelist once, in a last commit, and the
// next Open reads it back. Every commit made without it marks the file as
// having no freelist, the first one already during Open, so after a crash
// (no Close) the next Open rebuilds the freelist by walking the tree: about
// 0.1 ms per stored chunk with a warm page cache, some seconds for a store
// of 100 GiB, more from a cold disk. A crash can never leave a stale
// freelist behind.
//
// Open tightens the file's permission bits to 0600 if they allow group or
// other access, because the meta bucket holds the log signing key.
package store
