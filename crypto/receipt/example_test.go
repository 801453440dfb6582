package receipt_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/testimony-ngo/testimony/crypto/receipt"
)

func ExampleSign() {
	// A fixed seed makes the example reproducible; a server generates its
	// key once with ed25519.GenerateKey and keeps it.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	sum := sha256.Sum256([]byte("age ciphertext"))
	r, err := receipt.Sign(priv, "00112233445566778899aabbccddeeff", 14, sum,
		time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))

	parsed, err := receipt.Parse(out)
	if err != nil {
		panic(err)
	}
	fmt.Println(parsed.Verify(priv.Public().(ed25519.PublicKey)))
	// Output:
	// {
	//   "version": 1,
	//   "id": "00112233445566778899aabbccddeeff",
	//   "size": 14,
	//   "sha256": "e3069bbfde62c42b334b7e141a87d34506c5ff70df074f7311ae7ee87c25251a",
	//   "received": "2026-11-27",
	//   "key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=",
	//   "signature": "5ZJsmVBGk4JXd+kCZvP1Sg3BeJnotYsW7AEtKnA6poXSUyFwKVfTKVldSnt1b6dgWrMpfI42yywzvppG1nqnBQ=="
	// }
	// <nil>
}
