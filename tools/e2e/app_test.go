package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/testimony-ngo/testimony/internal/ids"
	"github.com/testimony-ngo/testimony/tools/internal/browsertest"
)

// appProc is the real 'testimony app' binary running.
type appProc struct {
	cmd    *exec.Cmd
	url    string
	stderr bytes.Buffer
}

// startApp runs 'testimony app -no-browser' and reads the address it prints.
func (e *env) startApp(args ...string) *appProc {
	e.t.Helper()
	cmd := exec.Command(bin("testimony"), append([]string{"app", "-no-browser"}, args...)...)
	cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+e.home)
	p := &appProc{cmd: cmd}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		e.t.Fatalf("testimony app printed %q (%v)", line, err)
	}
	p.url = strings.TrimSpace(line)
	return p
}

// kill kills the app as a crash or a pulled plug would.
func (p *appProc) kill() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (e *env) certPin() string {
	data, err := os.ReadFile(e.certFile())
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// TestAppWithRealBinaries: the caseworker's app as shipped, driven in
// chromium: enrolment, a testimony with notes and three files (a Korean
// name, a larger file, a PNG) by picker and drop; the intake server killed
// mid-upload and restarted, and the app finishes without a click; then
// the app itself killed mid-upload and started again, and it resumes; and
// 'testimony-review open' gives back every file byte for byte and the
// notes.
func TestAppWithRealBinaries(t *testing.T) {
	e := newOrgEnv(t)
	app := e.startApp("-limit-rate", "1M")
	b := browsertest.New(t, "ko-KR")
	b.Open(t, app.url, `input[name=server]`)
	b.Do(t, chromedp.SetValue(`input[name=server]`, e.url()),
		chromedp.SetValue(`input[name=pin]`, e.certPin()),
		chromedp.SetValue(`input[name=token]`, e.submitTok),
		chromedp.SetValue(`input[name=org_key]`, e.orgPub),
		chromedp.SetValue(`input[name=log_key]`, e.logKey))
	b.ClickAndLoad(t, `main form button`, `.keyname.big`)
	b.ClickAndLoad(t, `main form button`, `.checks`)
	if n := browsertest.Eval[int](t, b, `document.querySelectorAll('.checks li.bad').length`); n != 0 {
		t.Fatalf("enrolment: %d red checks:\n%s", n, b.Text(t, "main"))
	}

	src := t.TempDir()
	size := 3 << 20
	if os.Getenv("TESTIMONY_BIG") != "" {
		size = 50 << 20
	}
	files := map[string][]byte{
		"면담 녹음.m4a": randomBytes(t, 200<<10),
		"video.mp4": randomBytes(t, size),
		"map.png":   pngImage(t),
	}
	paths := map[string]string{}
	for name, data := range files {
		paths[name] = writeFile(t, filepath.Join(src, name), data)
	}
	notes := "면담 메모: 국경을 밤에 건넜습니다.\n"
	b.Open(t, b.Base(t)+"/new", `#testimony`)
	b.Do(t, chromedp.SetValue(`input[name=case]`, "NK-E2E-1"),
		chromedp.SetValue(`textarea[name=notes]`, notes),
		chromedp.SetUploadFiles(`#files`, []string{paths["면담 녹음.m4a"], paths["map.png"]}))
	b.Drop(t, "drop", paths["video.mp4"])
	b.Wait(t, `document.querySelectorAll('#filelist li button').length === 3`)
	b.Do(t, chromedp.Click(`#send`))

	// The server dies while the upload runs, and comes back.
	waitForUploadInFlight(t, filepath.Join(e.home, "outbox"))
	e.kill()
	b.Wait(t, `document.getElementById('progress').getAttribute('data-phase') === 'waiting'`)
	e.start()
	b.WaitFor(t, 10*time.Minute, `document.getElementById('progress').getAttribute('data-phase') === 'sent'`)
	b.ClickAndLoad(t, `#p-receipt`, `dd.mono`)
	id1 := strings.TrimSpace(b.Text(t, "dd.mono"))
	if !ids.ValidSubmission(id1) {
		t.Fatalf("receipt page shows %q", id1)
	}

	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", app.cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM") {
				t.Logf("the app's peak resident memory after sending %d MiB: %s", (size+(200<<10))>>20, strings.Join(strings.Fields(l)[1:], " "))
			}
		}
	}

	// A second testimony; the app is killed while it uploads.
	second := randomBytes(t, 3<<20)
	secondPath := writeFile(t, filepath.Join(src, "second.bin"), second)
	b.Open(t, b.Base(t)+"/new", `#testimony`)
	b.Do(t, chromedp.SetUploadFiles(`#files`, []string{secondPath}))
	b.Wait(t, `document.querySelectorAll('#filelist li button').length === 1`)
	b.Do(t, chromedp.Click(`#send`))
	waitForUploadInFlight(t, filepath.Join(e.home, "outbox"))
	app.kill()
	if got := len(receiptFiles(t, e.home)); got != 1 {
		t.Fatalf("%d receipts before the restart; the upload finished before the kill", got)
	}
	app = e.startApp()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("restarted app:\n%s", app.stderr.String())
		}
	})
	b.Do(t, chromedp.Navigate(app.url), chromedp.WaitVisible(`nav`))
	b.Do(t, chromedp.Navigate(b.Base(t)+"/outbox"))
	b.Wait(t, `document.querySelectorAll('a[href^="/receipt?id="]').length === 2 && document.querySelector('#refresh') === null`)
	var id2 string
	for _, r := range receiptFiles(t, e.home) {
		if id := strings.TrimSuffix(r, ".json"); id != id1 {
			id2 = id
		}
	}

	bundleDir := filepath.Join(e.dir, "bundle")
	// The collector is another person, with a state directory of their own.
	e.run([]string{"TESTIMONY_TOKEN=" + e.collTok, "TESTIMONY_HOME=" + filepath.Join(e.dir, "collector")},
		bin("testimony"), "collect", "-server", e.url(), "-ca", e.certFile(), "-o", bundleDir)
	out := filepath.Join(e.dir, "out")
	e.open(bundleDir, out)
	for name, data := range files {
		sameFile(t, filepath.Join(out, id1, name), data)
	}
	sameFile(t, filepath.Join(out, id1, "notes.txt"), []byte(notes))
	sameFile(t, filepath.Join(out, id2, "second.bin"), second)
}
