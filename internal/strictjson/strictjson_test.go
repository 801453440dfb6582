package strictjson

import (
	"strings"
	"testing"
)

type inner struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type doc struct {
	Version int     `json:"version"`
	Note    string  `json:"note,omitempty"`
	OK      bool    `json:"ok"`
	Items   []inner `json:"items"`
	Skipped string  `json:"-"`
	Plain   string
}

func TestDecode(t *testing.T) {
	type state struct {
		Version int            `json:"version"`
		Seen    map[string]int `json:"seen"`
	}
	tests := []struct {
		in      string
		wantErr string
	}{
		{`{"version":1,"seen":{"a":1}}`, ""},
		{"{\"version\":1}\n", ""},
		{`{"Version":1}`, ""}, // encoding/json's case folding stays
		{`{"version":1,"extra":2}`, `unknown field "extra"`},
		{`{"version":1}{}`, "unexpected data after"},
		{`{"version":1}}`, "unexpected data after"},
		{`{"version":1} x`, "unexpected data after"},
		{`{"version":1`, "unexpected EOF"},
		{``, "EOF"},
	}
	for _, tt := range tests {
		var s state
		err := Decode([]byte(tt.in), &s)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Decode(%s): %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{`{"version":1,"ok":true,"items":[{"name":"a","size":2}],"Plain":"p"}`, ""},
		{` {"items":[]} `, ""},
		{`{"version":1,"version":2}`, `duplicate field "version"`},
		{`{"items":[{"name":"a","name":"b"}]}`, `duplicate field "items[0].name"`},
		{`{"Version":1}`, `unknown field "Version"`},
		{`{"items":[{"Name":"a"}]}`, `unknown field "items[0].Name"`},
		{`{"Skipped":"x"}`, `unknown field "Skipped"`},
		{`{"-":"x"}`, `unknown field "-"`},
		{`{"version":null}`, `field "version": null is not allowed`},
		{`null`, `document: null is not allowed`},
		{`{"version":"1"}`, `field "version" must be a number`},
		{`{"ok":1}`, `field "ok" must be a bool`},
		{`{"items":{}}`, `field "items" must be an array`},
		{`{"items":[1]}`, `field "items[0]" must be an object`},
		{`{"note":["x"]}`, `field "note" must be a string`},
		{`{"version":1.5}`, `cannot unmarshal`},
		{`{"version":1}{}`, "unexpected data after"},
		{`{"version":1} x`, "unexpected data after"},
		{`{"version":1`, "unexpected end"},
		{`{"items":[`, "unexpected end"},
		{``, "unexpected end"},
		{`{"version" 1}`, "invalid JSON"},
		{`[`, "must be an object"},
	}
	for _, tt := range tests {
		var d doc
		err := Unmarshal([]byte(tt.in), &d)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Unmarshal(%s): %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Unmarshal(%s) = %v, want error containing %q", tt.in, err, tt.wantErr)
		}
	}
	var d doc
	if err := Unmarshal([]byte(`{"version":3,"items":[{"name":"x","size":9}]}`), &d); err != nil || d.Version != 3 || d.Items[0].Size != 9 {
		t.Errorf("decoded %+v, %v", d, err)
	}
	if err := Unmarshal([]byte(`{}`), d); err == nil {
		t.Error("Unmarshal into a non-pointer succeeded")
	}
}
