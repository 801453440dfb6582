package server

import (
	"fmt"
	"time"
)

// retentionWarning returns a warning if submissions received more than
// s.retain ago are still uncollected, and "" otherwise (or when no
// -retain-uncollected is set). It never deletes anything: nobody has that
// testimony yet. Received dates are UTC days, so the age is counted from
// the end of the day a submission arrived.
func (s *Server) retentionWarning() (string, error) {
	if s.retain <= 0 {
		return "", nil
	}
	subs, err := s.db.Submissions(true)
	if err != nil {
		return "", err
	}
	cutoff := s.now().Add(-s.retain)
	n := 0
	var oldest time.Time
	for _, sub := range subs {
		if sub.Received.Add(24 * time.Hour).Before(cutoff) {
			if n == 0 || sub.Received.Before(oldest) {
				oldest = sub.Received
			}
			n++
		}
	}
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d submission(s) received %s or later are uncollected for longer than -retain-uncollected %s; collect them (testimony collect) and have a reviewer acknowledge them",
		n, oldest.UTC().Format(time.DateOnly), s.retain), nil
}

// logRetention writes the retention warning, if any, to the server log.
func (s *Server) logRetention() {
	w, err := s.retentionWarning()
	switch {
	case err != nil:
		s.log.Error("failed to check uncollected submissions", "error", err)
	case w != "":
		s.log.Warn("uncollected ciphertext is old", "detail", w)
	}
}

// healthStatus is GET /v1/health's answer; Warnings only for a valid
// collect token.
type healthStatus struct {
	Status   string   `json:"status"`
	Warnings []string `json:"warnings,omitempty"`
}

// GET /v1/health: "ok" to anyone; with a collect token, also what needs
// the collector's attention.
func (s *Server) health(c *call) (any, int, error) {
	h := &healthStatus{Status: "ok"}
	if c.r.Header.Get("Authorization") == "" || s.retain <= 0 {
		return h, 200, nil
	}
	if _, err := s.authenticate(c.r, RoleCollect); err != nil {
		return h, 200, nil
	}
	w, err := s.retentionWarning()
	if err != nil {
		return nil, 0, err
	}
	if w != "" {
		h.Warnings = []string{w}
	}
	return h, 200, nil
}
