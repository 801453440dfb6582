package server

import (
	"encoding/hex"
	"net/http"
	"testing"
)

// TestFinishReadsNothingBack: an upload sent in order is hashed by the
// store as its chunks are committed, so the finish reads only chunk 0 (to
// check the age header again) whatever the size, and answers in the same
// time for 16 GiB as for 3 MiB.
func TestFinishReadsNothingBack(t *testing.T) {
	e := newTestEnv(t)
	for _, size := range []int{100, 3*ChunkSize + 17} {
		file := e.testFile(size)
		id := e.createUpload(file, true)
		for i := range chunkCount(int64(len(file))) {
			expect(t, e.putChunk(id, i, chunkOf(file, i)), http.StatusNoContent, "")
		}
		sum, read, err := e.db.UploadSHA256(id, int64(len(file)))
		if err != nil || read != 0 || hex.EncodeToString(sum[:]) != sha(file) {
			t.Fatalf("UploadSHA256 of a %d-byte upload: read %d bytes back, %v; want the file's SHA-256 and 0 bytes read", len(file), read, err)
		}
		w := e.do(req{method: "POST", path: "/v1/uploads/" + id + "/finish", token: e.submit})
		expect(t, w, http.StatusCreated, sha(file))
	}
}
