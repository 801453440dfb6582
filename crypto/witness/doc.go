// Package witness is the reviewer's side of the intake log's witnessing:
// the reviewer machine's witness key, the C2SP tlog-cosignature/v1
// (https://c2sp.org/tlog-cosignature) it adds to a checkpoint it verified,
// and the acknowledgement that carries that cosignature together with the
// log indexes the reviewer opened.
//
// An acknowledgement file is strict JSON:
//
//	{
//	  "version": 1,
//	  "checkpoint": "<origin>\n<size>\n<root>\n\n— <origin> <log signature>\n— <witness> <cosignature>\n",
//	  "statement": "testimony-ack/v1\n<origin>\n<size>\n<root>\nopened N\n<index>\n…\n\n— <witness> <signature>\n"
//	}
//
// The checkpoint is the log's signed checkpoint with one cosignature line
// by the witness: an Ed25519 cosignature/v1, key id algorithm byte 0x04. The
// statement is a signed note by the same Ed25519 key (key id algorithm byte
// 0x01) naming the same checkpoint and the indexes, in increasing order,
// of the submissions the reviewer decrypted and verified. The two signed
// messages start with different first lines, so neither signature can be
// replayed as the other. Nothing in the file is secret: the log is public
// to every token holder, and an index says nothing about its testimony.
//
// The witness verifier key is a C2SP vkey of type 0x04,
// "NAME+HASH+BASE64(0x04 || public key)". It verifies both signatures.
//
// The package links no networking: the air-gapped reviewer signs with it,
// the server and the caseworker's client verify with it.
package witness
