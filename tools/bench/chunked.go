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

// uploadChunked sends the file at path with the chunked protocol — create
// the upload, PUT each chunk, finish — as a client that already holds the
// age file does.
func uploadChunked(c *http.Client, url, token, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	body, _ := json.Marshal(map[string]any{"size": len(data), "sha256": hex.EncodeToString(sum[:])})
	var created struct {
		ID string `json:"id"`
	}
	if err := call(c, http.MethodPost, url+"/v1/uploads", token, body, nil, http.StatusCreated, &created); err != nil {
		return err
	}
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(len(data), off+chunkSize)]
		cs := sha256.Sum256(chunk)
		header := map[string]string{"Chunk-SHA256": hex.EncodeToString(cs[:])}
		u := url + "/v1/uploads/" + created.ID + "/chunks/" + strconv.Itoa(off/chunkSize)
		if err := call(c, http.MethodPut, u, token, chunk, header, http.StatusNoContent, nil); err != nil {
			return err
		}
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
