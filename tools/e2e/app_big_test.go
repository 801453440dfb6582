package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appRSSLimit is the peak resident memory the app may reach while a file
// of several GiB goes through it (issue: 150 MiB for 2 GiB).
const appRSSLimit = 150 << 20

// TestAppBigFile is the app's long mode: with TESTIMONY_E2E_BIG=<bytes>
// (for example 2147483648) it sends one file of that size through the
// real 'testimony app', the way its page does (one streamed multipart
// request), waits until the receipt is saved, and checks the app's peak
// resident memory stays under appRSSLimit. Opt-in: it takes minutes and
// four times the file's size in disk.
func TestAppBigFile(t *testing.T) {
	sizeStr := os.Getenv("TESTIMONY_E2E_BIG")
	if sizeStr == "" {
		t.Skip("set TESTIMONY_E2E_BIG=<bytes> to run the app's big-file measurement")
	}
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if err != nil || size <= 0 {
		t.Fatalf("TESTIMONY_E2E_BIG=%q is not a positive byte count", sizeStr)
	}
	e := newOrgEnv(t)
	enrolFile := filepath.Join(e.dir, "laptop.enrol")
	e.run(nil, bin("testimony-server"), "token", "create", "-data", e.data, "-role", "submit", "-name", "app-laptop", "-enrol", enrolFile, "-url", e.url())
	e.run([]string{"TESTIMONY_HOME=" + e.home, "TESTIMONY_TOKEN="}, bin("testimony"), "init", "-enrol", enrolFile, "-org-key", e.orgPub, "-delete-enrol")
	// What the app's enrolment page keeps: the server it sends to.
	state, _ := json.Marshal(map[string]any{"version": 1, "server": e.url(), "entries": map[string]any{}, "confirmed": map[string]any{}})
	writeFile(t, filepath.Join(e.home, "app.json"), state)
	src := filepath.Join(t.TempDir(), "recording.bin")
	writePseudoRandom(t, src, size)

	app := e.startApp()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	base := app.url[:strings.Index(app.url, "/launch")]
	get := func(path string) []byte {
		t.Helper()
		resp, err := cl.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	get(app.url[len(base):])
	page := get("/")
	i := bytes.Index(page, []byte(`name="csrf" content="`))
	if i < 0 {
		t.Fatalf("no session:\n%s", page)
	}
	csrf := string(page[i+len(`name="csrf" content="`):])
	csrf = csrf[:strings.IndexByte(csrf, '"')]

	// The page's request: meta, notes, then the file, streamed.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		meta, _ := json.Marshal(map[string]any{"case": "NK-BIG", "files": []map[string]any{{"name": "recording.bin", "size": size}}})
		w, _ := mw.CreateFormField("meta")
		w.Write(meta)
		w, _ = mw.CreateFormField("notes")
		w.Write([]byte("notes"))
		w, _ = mw.CreateFormFile("file", "recording.bin")
		f, err := os.Open(src)
		if err == nil {
			_, err = io.Copy(w, f)
			f.Close()
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	job := "0123456789abcdef0123456789abcdef"
	req, _ := http.NewRequest("POST", base+"/submit", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", csrf)
	req.Header.Set("Origin", base)
	req.Header.Set("X-Job", job)
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %s %s", resp.Status, body)
	}
	received := time.Since(start)
	for {
		var st struct{ Phase, Text, Detail string }
		if err := json.Unmarshal(get("/status?job="+job), &st); err != nil {
			t.Fatal(err)
		}
		if st.Phase == "sent" {
			break
		}
		if st.Phase == "failed" {
			t.Fatalf("the app failed: %s %s\n%s", st.Text, st.Detail, app.stderr.String())
		}
		time.Sleep(time.Second)
	}
	hwm := vmHWM(app.cmd.Process.Pid)
	if hwm < 0 {
		t.Skip("no /proc on this system to read the app's peak memory from")
	}
	t.Logf("%d MiB through the app: read in %.0fs, sent after %.0fs; the app's peak RSS %d MiB", size>>20, received.Seconds(), time.Since(start).Seconds(), hwm>>20)
	if hwm > appRSSLimit {
		t.Errorf("the app's peak RSS was %d MiB, over %d MiB", hwm>>20, appRSSLimit>>20)
	}
	if n := len(receiptFiles(t, e.home)); n != 1 {
		t.Errorf("%d receipts saved", n)
	}
}
