package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

// chunkSize is the server's chunk size (docs/api.md).
const chunkSize = 1 << 20

// parallelChunks is how many chunk requests testimony keeps on the wire on
// a fast link (upload.DefaultParallel).
const parallelChunks = 2

// uploadChunked sends the file at path with the chunked protocol — create
// the upload, PUT each chunk from Upload-Offset 0, two side by side,
// finish — as testimony's uploader does on a fast link with a file already
// encrypted.
func uploadChunked(c *http.Client, url, token, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"size": size, "sha256": hex.EncodeToString(h.Sum(nil))})
	var created struct {
		ID string `json:"id"`
	}
	if err := call(c, http.MethodPost, url+"/v1/uploads", token, body, nil, http.StatusCreated, &created); err != nil {
		return err
	}
	n := int((size + chunkSize - 1) / chunkSize)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	errs := make(chan error, parallelChunks)
	for range parallelChunks {
		go func() {
			buf := make([]byte, chunkSize)
			for i := range next {
				chunk := buf[:min(chunkSize, size-int64(i)*chunkSize)]
				if _, err := f.ReadAt(chunk, int64(i)*chunkSize); err != nil {
					errs <- err
					return
				}
				cs := sha256.Sum256(chunk)
				header := map[string]string{"Chunk-SHA256": hex.EncodeToString(cs[:]), "Upload-Offset": "0"}
				u := url + "/v1/uploads/" + created.ID + "/chunks/" + strconv.Itoa(i)
				if err := call(c, http.MethodPut, u, token, chunk, header, http.StatusNoContent, nil); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range parallelChunks {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	return call(c, http.MethodPost, url+"/v1/uploads/"+created.ID+"/finish", token, nil, nil, http.StatusCreated, nil)
}

// call makes one request and decodes a JSON answer into out if it is set.
func call(c *http.Client, method, url, token string, body []byte, header map[string]string, want int, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, msg)
	}
	if out != nil {
		return json.Unmarshal(msg, out)
	}
	return nil
}
