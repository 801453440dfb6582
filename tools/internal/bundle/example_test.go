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

	b := bundle.New("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", time.Now())
	b.Add(bundle.NewEntry("0123456789abcdef0123456789abcdef", 1234,
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))
	if err := b.Write(dir); err != nil {
		panic(err)
	}

	got, err := bundle.Read(dir)
	if err != nil {
		panic(err)
	}
	for _, e := range got.Submissions {
		fmt.Println(e.File, e.Size)
	}
	// Output: 0123456789abcdef0123456789abcdef.age 1234
}
