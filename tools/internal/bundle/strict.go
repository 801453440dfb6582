package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

var (
	bundleKeys = []string{"version", "created", "receipt_key", "submissions"}
	entryKeys  = []string{"id", "size", "sha256", "file", "receipt"}
)

// checkKeys walks the JSON tokens of data and refuses what encoding/json
// would silently accept: duplicate keys (last one wins), keys that differ
// only in case from a field name, nesting deeper than the format has, and
// trailing data after the document. Without it two readers of the same
// bundle.json could disagree about its content.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, 0, bundleKeys); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// walk consumes one JSON value. keys is the set of allowed object keys if
// the value is an object at this level; nil means any object here is an
// error.
func walk(dec *json.Decoder, depth int, keys []string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxDepth {
		return errors.New("JSON nested too deeply")
	}
	switch d {
	case '{':
		if keys == nil {
			return errors.New("unexpected JSON object")
		}
		seen := make(map[string]bool, len(keys))
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("malformed JSON: %v", err)
			}
			k := tok.(string) // the decoder only yields strings as object keys
			if !slices.Contains(keys, k) {
				return fmt.Errorf("unknown field %q", k)
			}
			if seen[k] {
				return fmt.Errorf("duplicate field %q", k)
			}
			seen[k] = true
			var next []string
			if k == "submissions" {
				next = entryKeys
			}
			if err := walk(dec, depth+1, next); err != nil {
				return err
			}
		}
	case '[':
		n := 0
		for dec.More() {
			if n++; n > MaxEntries {
				return fmt.Errorf("more than %d submissions", MaxEntries)
			}
			if err := walk(dec, depth+1, keys); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("malformed JSON: %v", err)
	}
	return nil
}
