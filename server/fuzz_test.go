package server

import (
	"encoding/base64"
	"math"
	"strings"
	"testing"
)

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer tm1_" + strings.Repeat("A", 32))
	f.Add("bearer tm1_" + strings.Repeat("_-", 16))
	f.Add("Bearer tm1_" + strings.Repeat("A", 31) + "=")
	f.Add("Basic dXNlcjpwdw==")
	f.Add("Bearer  tm1_")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		token, err := bearerToken(header)
		if err != nil {
			if !isAuthError(err) {
				t.Fatalf("%q: error %v is not an authentication error", header, err)
			}
			return
		}
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(token, tokenPrefix))
		if !strings.HasPrefix(token, tokenPrefix) || derr != nil || len(raw) != tokenRandomBytes ||
			tokenPrefix+base64.RawURLEncoding.EncodeToString(raw) != token {
			t.Fatalf("%q accepted as token %q", header, token)
		}
	})
}

// FuzzJSONRoutes sends arbitrary bodies to the routes that parse JSON: the
// answer is always a client error or success, never a server error.
func FuzzJSONRoutes(f *testing.F) {
	// Every input that parses creates an upload under the one submit
	// token; the per-token limit would soon answer 429 to all of them
	// and leave the parser untested.
	e := newTestEnv(f, func(c *Config) { c.Limits.OpenUploads = math.MaxInt })
	file := e.testFile(100)
	id := e.createUpload(file, false)
	if w := e.putChunk(id, 0, file); w.Code != 204 {
		f.Fatalf("setup: %d", w.Code)
	}
	for _, s := range []string{`{"size":100}`, `{"size":100,"sha256":"` + sha(file) + `"}`, `{"sha256":"` + sha(file) + `"}`,
		`{"size":1e3}`, `{"size":-1}`, `[]`, `null`, `{"size":100}{}`, `{"size":9223372036854775807}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := e.in(t)
		for _, path := range []string{"/v1/uploads", "/v1/uploads/" + id + "/finish"} {
			w := e.do(req{method: "POST", path: path, token: e.submit, body: []byte(body)})
			// 404: an earlier input may have finished the upload with
			// a wrong hash, which deletes it.
			switch w.Code {
			case 201, 400, 404, 409, 413, 422:
			default:
				t.Fatalf("POST %s with %q: status %d %s", path, body, w.Code, w.Body.String())
			}
		}
	})
}
