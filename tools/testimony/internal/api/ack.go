package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// maxAckResponse bounds the server's answers to the acknowledgement routes:
// GET /v1/log/ack carries an acknowledgement file of up to 2 MiB.
const maxAckResponse = 3 << 20

// AckResult is the server's answer to POST /v1/ack.
type AckResult struct {
	Witness        string `json:"witness"`
	CheckpointSize int64  `json:"checkpoint_size"`
	Acknowledged   int    `json:"acknowledged"`
	Deleted        int    `json:"deleted"`
	Date           string `json:"date"`
}

// PostAck sends a reviewer's acknowledgement file as it is.
func (c *Client) PostAck(ctx context.Context, ack []byte) (*AckResult, error) {
	req, err := c.request(ctx, http.MethodPost, "/v1/ack", bytes.NewReader(ack))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to send the acknowledgement: %w", netError(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to send the acknowledgement: %w", statusError(resp))
	}
	var r AckResult
	if err := readJSON(resp, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// LogAck is the server's answer to GET /v1/log/ack: the acknowledgement
// that deleted the submission at Index, and the witness key the server
// has registered for its signer. Nothing in it is trusted until checked.
type LogAck struct {
	Index      int64           `json:"index"`
	Deleted    string          `json:"deleted"`
	Witness    string          `json:"witness"`
	WitnessKey string          `json:"witness_key"`
	Ack        json.RawMessage `json:"ack"`
}

// ErrNoAck means the server has no acknowledgement for that log index.
var ErrNoAck = errors.New("no acknowledgement for this log index")

// LogAck asks for the acknowledgement by which the submission at log
// index was deleted after review; ErrNoAck if there is none.
func (c *Client) LogAck(ctx context.Context, index int64) (*LogAck, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/log/ack?index="+strconv.FormatInt(index, 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, netError(err)
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, ErrNoAck
	default:
		return nil, statusError(resp)
	}
	var a LogAck
	if err := readJSON(resp, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// IsGone reports whether err is the server's 410 for a submission whose
// ciphertext was deleted after review.
func IsGone(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusGone
}

func readJSON(resp *http.Response, v any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAckResponse+1))
	if err != nil {
		return fmt.Errorf("failed to read response: %w", err)
	}
	if len(data) > maxAckResponse {
		return fmt.Errorf("response larger than %d bytes", maxAckResponse)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed response from server: %v", err)
	}
	return nil
}
