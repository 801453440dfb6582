// Package strictjson decodes small JSON documents whose bytes are signed,
// hashed or shown to a reviewer, so any leniency is a way to smuggle a
// second meaning past a check.
//
// encoding/json on its own matches keys case-insensitively, keeps the last
// of two duplicate keys, accepts null for any field and ignores trailing
// data. Unmarshal refuses all of these before it hands the document to
// encoding/json with DisallowUnknownFields, so a document that decodes has
// exactly one reading.
//
// Decode is the lighter rule for files a program wrote itself and reads
// back (state files, outbox metadata, bundle.json after its own checks),
// whose types may hold maps and raw messages: unknown fields and anything
// after the document are refused, the rest is encoding/json's.
//
// Both take the document as bytes: read it with a size bound first
// (internal/bounded), so a decoder never sees more than its format allows.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Unmarshal decodes data into v, which must be a pointer to a struct whose
// fields are strings, numbers, booleans, structs or slices of those. Every
// key must be spelled exactly as its field's json tag, appear at most once
// and hold a value of the field's kind; null, unknown keys and anything after
// the document are errors.
func Unmarshal(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return errors.New("strictjson: Unmarshal needs a non-nil pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, t.Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Decode decodes one JSON document into v, refusing unknown fields and
// anything but white space after the document.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

// walk consumes one JSON value from dec and checks it against t. The
// recursion is bounded by the depth of t, because a value nested deeper
// than its type allows is refused as a kind mismatch.
func walk(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			if t.Kind() != reflect.Struct {
				return kindError(path, t)
			}
			return walkObject(dec, t, path)
		case '[':
			if t.Kind() != reflect.Slice {
				return kindError(path, t)
			}
			for i := 0; dec.More(); i++ {
				if err := walk(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err := dec.Token() // the closing ']'
			return syntaxError(err)
		}
		return fmt.Errorf("unexpected %q", tok.String())
	case nil:
		return fmt.Errorf("%s: null is not allowed", describe(path))
	case string:
		if t.Kind() != reflect.String {
			return kindError(path, t)
		}
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
		default:
			return kindError(path, t)
		}
	case bool:
		if t.Kind() != reflect.Bool {
			return kindError(path, t)
		}
	}
	return nil
}

func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		ft, ok := fields[key]
		if !ok {
			return fmt.Errorf("unknown field %q", join(path, key))
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", join(path, key))
		}
		seen[key] = true
		if err := walk(dec, ft, join(path, key)); err != nil {
			return err
		}
	}
	_, err := dec.Token() // the closing '}'
	return syntaxError(err)
}

// jsonFields maps the exact json names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(path string) string {
	if path == "" {
		return "document"
	}
	return fmt.Sprintf("field %q", path)
}

func kindError(path string, t reflect.Type) error {
	want := "a " + t.Kind().String()
	switch t.Kind() {
	case reflect.Struct:
		want = "an object"
	case reflect.Slice:
		want = "an array"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Float64:
		want = "a number"
	}
	return fmt.Errorf("%s must be %s", describe(path), want)
}

func syntaxError(err error) error {
	if err == nil {
		return nil
	}
	if err == io.EOF {
		return errors.New("unexpected end of JSON document")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}
