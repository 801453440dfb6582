package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// shape describes what a JSON value may be: a nil *shape is a scalar, a
// shape with fields is an object with exactly those allowed keys, and a
// shape with elem is an array of at most max elements.
type shape struct {
	fields map[string]*shape
	elem   *shape
	max    int
	what   string // what an array holds, for the limit message
}

var (
	proofShape = &shape{elem: nil, max: MaxProof, what: "proof hashes"}
	leafShape  = &shape{fields: map[string]*shape{
		"index": nil, "id": nil, "sha256": nil, "size": nil, "date": nil, "proof": proofShape,
	}}
	entryShape = &shape{fields: map[string]*shape{
		"id": nil, "size": nil, "sha256": nil, "file": nil, "index": nil,
	}}
	bundleShape = &shape{fields: map[string]*shape{
		"version": nil, "created": nil, "log_key": nil, "from_size": nil, "from_checkpoint": nil,
		"checkpoint": nil, "consistency": proofShape,
		"leaves":      {elem: leafShape, max: MaxEntries, what: "leaves"},
		"submissions": {elem: entryShape, max: MaxEntries, what: "submissions"},
	}}
)

// checkKeys walks the JSON tokens of data and refuses what encoding/json
// would silently accept: duplicate keys (last one wins), keys that differ
// only in case from a field name, objects or arrays where the format has
// none, oversized arrays, and trailing data after the document. Without it
// two readers of the same bundle.json could disagree about its content.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, bundleShape); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// walk consumes one JSON value, which must have shape s. The recursion depth
// is bounded by the shapes, not by the input.
func walk(dec *json.Decoder, s *shape) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch {
	case d == '{' && s != nil && s.fields != nil:
		seen := make(map[string]bool, len(s.fields))
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("malformed JSON: %v", err)
			}
			k := tok.(string) // the decoder only yields strings as object keys
			next, ok := s.fields[k]
			if !ok {
				return fmt.Errorf("unknown field %q", k)
			}
			if seen[k] {
				return fmt.Errorf("duplicate field %q", k)
			}
			seen[k] = true
			if err := walk(dec, next); err != nil {
				return err
			}
		}
	case d == '[' && s != nil && s.fields == nil:
		n := 0
		for dec.More() {
			if n++; n > s.max {
				return fmt.Errorf("more than %d %s", s.max, s.what)
			}
			if err := walk(dec, s.elem); err != nil {
				return err
			}
		}
	case d == '{':
		return errors.New("unexpected JSON object")
	default:
		return errors.New("unexpected JSON array")
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("malformed JSON: %v", err)
	}
	return nil
}
