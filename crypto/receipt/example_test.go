package receipt_test

import (
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/receipt"
)

func Example() {
	// The server's log key; it is made once by testimony-server init.
	skey, vkey, err := intakelog.NewLogKey("testimony-log-0a1b2c3d")
	if err != nil {
		panic(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}

	// A log holding one submission (the server keeps the hashes in bbolt).
	leaf := intakelog.Leaf{
		ID:     "00112233445566778899aabbccddeeff",
		SHA256: "e3069bbfde62c42b334b7e141a87d34506c5ff70df074f7311ae7ee87c25251a",
		Size:   14,
		Date:   "2026-11-27",
	}
	var hashes []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = hashes[x]
		}
		return out, nil
	})
	stored, _ := tlog.StoredHashes(0, leaf.Bytes(), reader)
	hashes = append(hashes, stored...)
	root, _ := tlog.TreeHash(1, reader)
	cp, err := intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: signer.Name(), Size: 1, Root: root}, signer)
	if err != nil {
		panic(err)
	}
	proof, _ := tlog.ProveRecord(1, 0, reader)

	// The receipt the caseworker receives and checks with the pinned log key.
	r := receipt.New(leaf, 0, cp, proof)
	checkpoint, err := r.Verify(vkey)
	fmt.Println(err, checkpoint.Size)
	// Output:
	// <nil> 1
}
