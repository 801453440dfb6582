package main

import (
	"bytes"
	"os"
	"slices"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"

	wkey "github.com/testimony-ngo/testimony/crypto/witness"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

// cmdCheckack verifies an acknowledgement file as the server does, with
// the witness key in a file and the fixture's log key, and compares its
// indexes: checkack ACK VKEYFILE INDEX...
func cmdCheckack(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: checkack ACK VKEYFILE INDEX...")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	vkey, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	v, err := wkey.NewVerifier(string(bytes.TrimSpace(vkey)))
	ts.Check(err)
	_, logKey := fixture.LogKey()
	a, err := wkey.Open(data, logKey, []*wkey.Verifier{v})
	ts.Check(err)
	var want []int64
	for _, s := range args[2:] {
		i, err := strconv.ParseInt(s, 10, 64)
		ts.Check(err)
		want = append(want, i)
	}
	if !slices.Equal(a.Indexes, want) {
		ts.Fatalf("acknowledged indexes %v, want %v", a.Indexes, want)
	}
}
