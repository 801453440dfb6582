package intakelog_test

import (
	"fmt"

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
