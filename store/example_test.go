package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/testimony-ngo/testimony/store"
)

// A resumable upload: chunks may arrive in any order and be retried, and
// finishing turns the upload into a submission that a collector can stream.
func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "testimony.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ciphertext := []byte("age-encryption.org/v1 ... (opaque to the store)")
	id := "6f1c9a8e2b7d40a3958c1e2f3a4b5c6d"
	now := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	err = db.CreateUpload(store.Upload{ID: id, Size: int64(len(ciphertext)), Created: now, Expires: now.Add(7 * 24 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	// Small enough for one chunk; a retry of the same bytes is harmless.
	for range 2 {
		if err := db.PutChunk(id, 0, ciphertext); err != nil {
			log.Fatal(err)
		}
	}
	stored, _ := db.ChunkIndexes(id)
	fmt.Println("stored chunks:", stored)

	sum := sha256.Sum256(ciphertext)
	// The server encodes the log leaf (package intakelog); it is opaque
	// here.
	leaf := []byte("testimony leaf v1\n" + id + "\n" + hex.EncodeToString(sum[:]) + "\n47\n2026-11-27\n")
	index, err := db.FinishUpload(id, store.Submission{
		Size:     int64(len(ciphertext)),
		SHA256:   hex.EncodeToString(sum[:]),
		Chunks:   1,
		Received: now.Truncate(24 * time.Hour),
	}, leaf)
	if err != nil {
		log.Fatal(err)
	}
	size, _ := db.LogSize()
	fmt.Printf("log leaf %d, log size %d\n", index, size)
	if err := db.PutChunk(id, 0, ciphertext); err != nil {
		fmt.Println("after finishing:", err)
	}

	pending, _ := db.Submissions(true)
	for _, s := range pending {
		r, err := db.NewReader(s.ID)
		if err != nil {
			log.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %d bytes: %s\n", s.ID, s.Size, data)
		if err := db.MarkCollected(s.ID); err != nil {
			log.Fatal(err)
		}
	}
	pending, _ = db.Submissions(true)
	fmt.Println("pending:", len(pending))
	// Output:
	// stored chunks: [0]
	// log leaf 0, log size 1
	// after finishing: failed to put chunk 0 of upload 6f1c9a8e2b7d40a3958c1e2f3a4b5c6d: upload already finished
	// 6f1c9a8e2b7d40a3958c1e2f3a4b5c6d 47 bytes: age-encryption.org/v1 ... (opaque to the store)
	// pending: 0
}
