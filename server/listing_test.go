package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

type listPage struct {
	Submissions []struct {
		ID    string `json:"id"`
		Index int64  `json:"index"`
	} `json:"submissions"`
	Next *int64 `json:"next"`
}

// listAll follows the pages of GET /v1/submissions with query and returns
// the ids, and how many pages it took.
func (e *testEnv) listAll(query string) ([]string, int) {
	e.t.Helper()
	var ids []string
	path := "/v1/submissions?" + query
	for pages := 1; ; pages++ {
		w := e.do(req{method: "GET", path: path, token: e.collect})
		expect(e.t, w, http.StatusOK, "")
		var p listPage
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			e.t.Fatal(err)
		}
		for _, s := range p.Submissions {
			ids = append(ids, s.ID)
		}
		if p.Next == nil {
			return ids, pages
		}
		path = fmt.Sprintf("/v1/submissions?%s&after=%d", query, *p.Next)
	}
}

func TestListSubmissionsPages(t *testing.T) {
	e := newTestEnv(t)
	var all []string
	for range 5 {
		w := e.do(req{method: "POST", path: "/v1/submissions", token: e.submit, body: e.testFile(100)})
		expect(t, w, http.StatusCreated, "")
		var rc struct {
			ID string `json:"id"`
		}
		json.Unmarshal(w.Body.Bytes(), &rc)
		all = append(all, rc.ID)
	}
	expect(t, e.do(req{method: "POST", path: "/v1/submissions/" + all[1] + "/collected", token: e.collect}), http.StatusNoContent, "")
	pending := slices.Delete(slices.Clone(all), 1, 2)

	for _, tt := range []struct {
		query string
		want  []string
		pages int
	}{
		{"limit=2", all, 3},
		{"limit=5", all, 2},
		{"limit=1000", all, 1},
		{"pending=1&limit=2", pending, 3},
		{"pending=1&limit=3", pending, 2},
	} {
		got, pages := e.listAll(tt.query)
		if !slices.Equal(got, tt.want) || pages != tt.pages {
			t.Errorf("%s: %v in %d pages, want %v in %d", tt.query, got, pages, tt.want, tt.pages)
		}
	}

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=01", "pending=1&pending=1", "cursor=3"} {
		expect(t, e.do(req{method: "GET", path: "/v1/submissions?" + q, token: e.collect}), http.StatusBadRequest, "")
	}
}
