package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetainUncollectedWarns(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RetainUncollected = 30 * 24 * time.Hour })
	subs, _ := e.submitted(2, 100)
	warnings := func(token string) []string {
		t.Helper()
		w := e.do(req{method: "GET", path: "/v1/health", token: token})
		expect(t, w, http.StatusOK, `"status":"ok"`)
		var h healthStatus
		if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		return h.Warnings
	}
	if w := warnings(e.collect); len(w) != 0 {
		t.Fatalf("warnings for fresh submissions: %q", w)
	}
	e.clock.advance(32 * 24 * time.Hour)
	w := warnings(e.collect)
	if len(w) != 1 || !strings.Contains(w[0], "2 submission(s) received 2026-11-27 or later are uncollected") {
		t.Fatalf("warnings after 32 days: %q", w)
	}
	// Only a collect token learns about it.
	for _, tok := range []string{"", e.submit, "tm1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if w := warnings(tok); len(w) != 0 {
			t.Fatalf("warnings shown with token %q: %q", tok, w)
		}
	}
	e.srv.logRetention()
	if !strings.Contains(e.logs.String(), "uncollected ciphertext is old") {
		t.Fatalf("no warning in the server log:\n%s", e.logs.String())
	}
	// Nothing was deleted; once collected, the warning goes.
	for _, sub := range subs {
		expect(t, e.do(req{method: "GET", path: "/v1/submissions/" + sub.ID, token: e.collect}), http.StatusOK, "")
		expect(t, e.do(req{method: "POST", path: "/v1/submissions/" + sub.ID + "/collected", token: e.collect}), http.StatusNoContent, "")
	}
	if w := warnings(e.collect); len(w) != 0 {
		t.Fatalf("warnings after collection: %q", w)
	}
}
