package intakelog_test

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
)

func ExampleLeaf_Bytes() {
	leaf := intakelog.Leaf{
		ID:     "00112233445566778899aabbccddeeff",
		SHA256: "e3069bbfde62c42b334b7e141a87d34506c5ff70df074f7311ae7ee87c25251a",
		Size:   14,
		Date:   "2026-11-27",
	}
	fmt.Printf("%s", leaf.Bytes())
	fmt.Println(leaf.Hash())
	// Output:
	// testimony leaf v1
	// 00112233445566778899aabbccddeeff
	// e3069bbfde62c42b334b7e141a87d34506c5ff70df074f7311ae7ee87c25251a
	// 14
	// 2026-11-27
	// pB4uciJLJ9mgIi9QYC2GMHZdxrmNm+6qUjzJNuGQplM=
}

func ExampleCheckpoint_Body() {
	leaf := intakelog.Leaf{
		ID:     "00112233445566778899aabbccddeeff",
		SHA256: "e3069bbfde62c42b334b7e141a87d34506c5ff70df074f7311ae7ee87c25251a",
		Size:   14,
		Date:   "2026-11-27",
	}
	// A one-leaf tree's root is the leaf's hash.
	c := intakelog.Checkpoint{Origin: "testimony-log-0a1b2c3d", Size: 1, Root: leaf.Hash()}
	fmt.Printf("%s", c.Body())
	// Output:
	// testimony-log-0a1b2c3d
	// 1
	// pB4uciJLJ9mgIi9QYC2GMHZdxrmNm+6qUjzJNuGQplM=
}

// logOps serves an in-memory log as intakelog.Ops. A real Ops makes HTTPS
// requests, or reads a bundle.json; the client cannot tell.
type logOps struct {
	signer note.Signer
	leaves []intakelog.Leaf
	hashes []tlog.Hash
}

func (l *logOps) add(leaf intakelog.Leaf) {
	hs, err := tlog.StoredHashes(int64(len(l.leaves)), leaf.Bytes(), l)
	if err != nil {
		panic(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.leaves = append(l.leaves, leaf)
}

func (l *logOps) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *logOps) Checkpoint(context.Context) ([]byte, error) {
	n := int64(len(l.leaves))
	root, err := tlog.TreeHash(n, l)
	if err != nil {
		return nil, err
	}
	return intakelog.SignCheckpoint(intakelog.Checkpoint{Origin: l.signer.Name(), Size: n, Root: root}, l.signer)
}

func (l *logOps) Consistency(_ context.Context, oldSize, newSize int64) ([]tlog.Hash, error) {
	return tlog.ProveTree(newSize, oldSize, l)
}

func (l *logOps) Inclusion(_ context.Context, index, size int64) ([]tlog.Hash, error) {
	return tlog.ProveRecord(size, index, l)
}

func (l *logOps) Leaves(_ context.Context, start, end int64) ([]intakelog.Leaf, error) {
	return l.leaves[start:end], nil
}

func ExampleClient() {
	skey, vkey, err := intakelog.NewLogKey("testimony-log-0a1b2c3d")
	if err != nil {
		panic(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	ops := &logOps{signer: s}
	leaf := func(i int) intakelog.Leaf {
		return intakelog.Leaf{ID: fmt.Sprintf("%032x", i), SHA256: fmt.Sprintf("%064x", i), Size: 100, Date: "2026-11-27"}
	}
	ops.add(leaf(0))
	ops.add(leaf(1))

	// The store remembers the newest verified checkpoint between runs.
	store := intakelog.NewMemStore(nil)
	client, err := intakelog.NewClient(vkey, ops, store)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	cp, _, err := client.Update(ctx)
	fmt.Println("verified size", cp.Size, err)

	// The log grows; the client checks that it only grew, and that the
	// new leaf is in it.
	ops.add(leaf(2))
	cp, _, err = client.Update(ctx)
	fmt.Println("verified size", cp.Size, err)
	leaves, _ := client.Leaves(ctx, 2, 3)
	_, err = client.Included(ctx, cp, 2, leaves[0])
	fmt.Println("leaf 2 included:", err == nil)

	// A server that rolls its log back is caught.
	ops.leaves, ops.hashes = nil, nil
	ops.add(leaf(0))
	_, _, err = client.Update(ctx)
	fmt.Println(errors.Is(err, intakelog.ErrRollback))
	// Output:
	// verified size 2 <nil>
	// verified size 3 <nil>
	// leaf 2 included: true
	// true
}
