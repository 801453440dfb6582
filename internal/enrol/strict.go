package enrol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// strictUnmarshal decodes a flat JSON object into the struct *v, whose
// fields are strings and ints. encoding/json alone would match keys case
// insensitively, keep the last of two duplicate keys, accept null and
// ignore what follows the object; this refuses all of those first.
func strictUnmarshal(data []byte, v any) error {
	t := reflect.TypeOf(v).Elem()
	kinds := make(map[string]reflect.Kind)
	for f := range t.Fields() {
		name, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
		kinds[string(name)] = f.Type.Kind()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		key, _ := tok.(string)
		kind, ok := kinds[key]
		if !ok {
			return fmt.Errorf("unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		val, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		switch val.(type) {
		case string:
			if kind != reflect.String {
				return fmt.Errorf("field %q must be a number", key)
			}
		case json.Number:
			if kind != reflect.Int {
				return fmt.Errorf("field %q must be a string", key)
			}
		default:
			return fmt.Errorf("field %q must be a string or a number", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
