package bundle_test

import (
	"fmt"
	"os"
	"time"

	"github.com/testimony-ngo/testimony/tools/internal/bundle"
)

func Example() {
	dir, err := os.MkdirTemp("", "bundle")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	const id = "0123456789abcdef0123456789abcdef"
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	b := &bundle.Bundle{
		Version: bundle.Version,
		Created: bundle.CreatedAt(time.Now()),
		LogKey:  "testimony-log-0a1b2c3d+5055fc05+AWsok8LKTTjOAzYDPNBLH+v8Co3g3WSKJIAq+/NugsD9",
		// The signed checkpoint of size 1 (its signature is checked by the reviewer).
		Checkpoint: "testimony-log-0a1b2c3d\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" +
			"— testimony-log-0a1b2c3d UFX8BWnFb8Cnc6Yhw3d3cWDCf2uDVkK+koIxeLVbTZx7FKRDnC4njbIeX2L6pJuT8EGrYGFTgdJyyvpVjzV+Be9mTw4=\n",
		Leaves:      []bundle.Leaf{{Index: 0, ID: id, SHA256: sum, Size: 1234, Date: "2026-11-27", Proof: []string{}}},
		Submissions: []bundle.Entry{bundle.NewEntry(id, 1234, sum, 0)},
	}
	if err := b.Write(dir); err != nil {
		panic(err)
	}

	got, err := bundle.Read(dir)
	if err != nil {
		panic(err)
	}
	for _, e := range got.Submissions {
		fmt.Println(e.File, e.Size, e.Index)
	}
	// Output: 0123456789abcdef0123456789abcdef.age 1234 0
}
