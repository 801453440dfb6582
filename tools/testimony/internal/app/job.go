package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"filippo.io/age"
	"golang.org/x/text/message"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/internal/ids"
)

type jobPhase int

const (
	jobReceiving  jobPhase = iota // the browser is sending the files
	jobQueued                     // received, waiting for the sender
	jobEncrypting                 // being encrypted into the outbox
	jobUploading                  // in the outbox, being uploaded
	jobWaiting                    // waiting for the network
	jobSent                       // receipt saved
	jobFailed                     // stopped with an error
)

// job is one testimony sent from the page, followed by its status.
type job struct {
	key   string // random, names the job in /status?job=
	phase jobPhase
	meta  envelope.Meta
	label string
	files []*jobFile
	notes []byte
	ident *age.X25519Identity

	encrypted int64  // bytes of ciphertext written so far
	entry     string // outbox name once encrypted
	id        string // submission id once sent
	errKey    string // catalogue key of the error, for jobFailed
	errDetail string
	retried   bool // a network failure happened during the last attempt
}

type jobFile struct {
	name           string
	size, received int64
	spool          string
}

func (j *job) state() jobPhase { return j.phase }

// queued returns the jobs waiting for the sender, oldest first.
func (a *App) queued() []*job {
	a.mu.Lock()
	defer a.mu.Unlock()
	var q []*job
	for _, j := range a.jobs {
		if j.phase == jobQueued || j.phase == jobWaiting && j.entry == "" {
			q = append(q, j)
		}
	}
	return q
}

// runJob encrypts and sends j; called by the sender with a.work held.
func (a *App) runJob(ctx context.Context, j *job) {
	server := a.state.get().Server
	a.mu.Lock()
	j.phase, j.retried, j.encrypted = jobEncrypting, false, 0
	a.mu.Unlock()
	ev := a.events(j)
	retrying := ev.Retrying
	ev.Retrying = func(err error, wait time.Duration) {
		a.mu.Lock()
		j.retried = true
		if j.entry == "" || j.phase == jobUploading {
			j.phase = jobWaiting
		}
		a.mu.Unlock()
		retrying(err, wait)
	}
	progress := ev.Progress
	ev.Progress = func(label string, done, total int64) {
		progress(label, done, total)
		if label == "uploading" {
			a.mu.Lock()
			j.phase = jobUploading
			a.mu.Unlock()
		}
	}
	id, err := a.submit(ctx, server, j.meta, j.sources(), ev)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sending = ""
	switch {
	case err == nil:
		j.phase, j.id = jobSent, id
		j.dropSpool()
	case ctx.Err() != nil && j.entry == "":
		// The app is stopping before the files were encrypted for the
		// reviewers: they must be added again after the restart.
		j.phase, j.errKey = jobFailed, "The app stopped before the files were encrypted. Add them again."
		j.dropSpool()
	case j.entry != "":
		// Safe in the outbox: the resume loop finishes it.
		j.phase = jobWaiting
		j.dropSpool()
	case j.retried:
		j.phase = jobWaiting
	default:
		j.phase, j.errKey, j.errDetail = jobFailed, "The testimony could not be encrypted or sent.", err.Error()
		j.dropSpool()
	}
}

// handleSubmit receives a testimony from the page and queues it.
func (a *App) handleSubmit(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	if a.state.get().Server == "" {
		writeJSON(w, http.StatusConflict, map[string]string{"error": tr(p, "This laptop is not set up yet. Open Settings and enrol first.")})
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": tr(p, "The page sent an incomplete testimony. Reload the page and add the files again.")})
		return
	}
	key := r.Header.Get("X-Job")
	if !ids.LowerHex(key, 32) {
		key = randomHex(16)
	}
	j := &job{key: key, phase: jobReceiving}
	a.mu.Lock()
	for _, x := range a.jobs {
		if x.key == key {
			a.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]string{"error": tr(p, "The page sent an incomplete testimony. Reload the page and add the files again.")})
			return
		}
	}
	a.jobs = append(a.jobs, j)
	a.mu.Unlock()
	if err := a.receive(mr, j); err != nil {
		a.mu.Lock()
		j.phase = jobFailed
		var ie *inputError
		if errors.As(err, &ie) {
			j.errKey = ie.key
		} else {
			j.errKey, j.errDetail = "The testimony could not be encrypted or sent.", err.Error()
		}
		j.dropSpool()
		msg := p.Sprintf(j.errKey)
		a.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	a.mu.Lock()
	j.phase = jobQueued
	a.mu.Unlock()
	a.poke()
	writeJSON(w, http.StatusAccepted, map[string]string{"job": j.key})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// jobStatus is what the page polls while a testimony is sent.
type jobStatus struct {
	Phase   string       `json:"phase"` // receiving, queued, encrypting, uploading, waiting, sent, failed
	Text    string       `json:"text"`  // the state in words
	Detail  string       `json:"detail,omitempty"`
	Percent int          `json:"percent"`
	Summary string       `json:"summary,omitempty"` // bytes, rate, time left
	Files   []fileStatus `json:"files"`
	Receipt string       `json:"receipt,omitempty"` // link to the receipt page
	Done    bool         `json:"done"`
}

type fileStatus struct {
	Name    string `json:"name"`
	Percent int    `json:"percent"`
	Text    string `json:"text"`
}

var phaseNames = map[jobPhase]string{
	jobReceiving: "receiving", jobQueued: "queued", jobEncrypting: "encrypting",
	jobUploading: "uploading", jobWaiting: "waiting", jobSent: "sent", jobFailed: "failed",
}

// handleStatus reports one job's progress as JSON.
func (a *App) handleStatus(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	lang := a.lang(r)
	key := r.URL.Query().Get("job")
	a.mu.Lock()
	var j *job
	for _, x := range a.jobs {
		if x.key == key {
			j = x
		}
	}
	if j == nil {
		a.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"error": tr(p, "This testimony is no longer followed here. Its state is in the outbox.")})
		return
	}
	st := jobStatus{Phase: phaseNames[j.phase]}
	var total, received int64
	for _, f := range j.files {
		total += f.size
		received += f.received
		fs := fileStatus{Name: f.name, Percent: percent(f.received, f.size)}
		fs.Text = tr(p, "%s of %s", formatSize(lang, f.received), formatSize(lang, f.size))
		st.Files = append(st.Files, fs)
	}
	switch j.phase {
	case jobReceiving:
		st.Text = tr(p, "Reading the files from this browser. Keep this page open until they are all read.")
		st.Percent = percent(received, total)
		st.Summary = tr(p, "%s of %s", formatSize(lang, received), formatSize(lang, total))
	case jobQueued:
		st.Text = tr(p, "All files are read. Encryption starts in a moment.")
	case jobEncrypting:
		st.Text = tr(p, "Encrypting for your organisation's reviewers. You can close this page now.")
		st.Summary = tr(p, "%s encrypted", formatSize(lang, j.encrypted))
	case jobUploading:
		st.Text = tr(p, "Uploading the encrypted testimony. You can close this page; the app keeps sending.")
		st.Percent = percent(a.sendDone, a.sendTotal)
		st.Summary = a.rateSummary(p, lang)
	case jobWaiting:
		st.Text = tr(p, "Waiting for the network. The app tries again by itself; keep it running.")
		if j.entry == "" {
			st.Detail = tr(p, "The files are not encrypted for the reviewers yet: if the app is closed now, add them again.")
		} else {
			st.Detail = tr(p, "The encrypted testimony is safe in the outbox and will be sent when the server can be reached.")
		}
	case jobSent:
		st.Text = tr(p, "Sent. The server's receipt was checked and saved.")
		st.Percent = 100
		st.Receipt = "/receipt?id=" + j.id
		st.Done = true
	case jobFailed:
		st.Text = tr(p, j.errKey)
		st.Detail = j.errDetail
		st.Done = true
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(done * 100 / total)
}

// rateSummary says bytes sent, rate and time left of the current upload;
// called with a.mu held.
func (a *App) rateSummary(p *message.Printer, lang string) string {
	rate := a.rate.perSecond()
	if rate <= 0 || a.sendTotal <= 0 {
		return tr(p, "%s of %s", formatSize(lang, a.sendDone), formatSize(lang, a.sendTotal))
	}
	left := time.Duration(float64(a.sendTotal-a.sendDone)/rate) * time.Second
	return tr(p, "%s of %s, %s per second, about %s left",
		formatSize(lang, a.sendDone), formatSize(lang, a.sendTotal), formatSize(lang, int64(rate)), formatDuration(p, left))
}

// rateMeter estimates a transfer rate over the last few seconds.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	t time.Time
	n int64
}

func (m *rateMeter) add(n int64) {
	now := time.Now()
	m.samples = append(m.samples, rateSample{now, n})
	for len(m.samples) > 2 && now.Sub(m.samples[0].t) > 10*time.Second {
		m.samples = m.samples[1:]
	}
}

func (m *rateMeter) perSecond() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	d := b.t.Sub(a.t).Seconds()
	if d <= 0 || b.n <= a.n {
		return 0
	}
	return float64(b.n-a.n) / d
}
