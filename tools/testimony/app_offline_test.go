package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/testimony-ngo/testimony/tools/internal/browsertest"
)

// TestAppOfflineTestimonySurvivesRestart: a testimony sent while the
// server cannot be reached is encrypted into the outbox all the same (to
// the reviewers' keys verified at enrolment), so closing the app before
// the network is back loses nothing; the next start sends it.
func TestAppOfflineTestimonySurvivesRestart(t *testing.T) {
	d := newDeployment(t)
	o := newOrg(t, "example-org")
	d.setNote(o.sign(t, 1, d.identity))
	home := filepath.Join(t.TempDir(), "state")
	ra := startApp(t, home, nil)
	b := browsertest.New(t, "en-US")
	b.Open(t, ra.url, `input[name=server]`)
	enrolInBrowser(t, b, d, o, "offline")
	d.ts.CloseClientConnections()
	d.ts.Close()
	files := makeFiles(t, "marker-offline")
	fillTestimony(t, b, files, "notes written offline")
	b.Do(t, chromedp.Click(`#send`))
	b.Wait(t, `['waiting', 'failed'].includes(document.getElementById('progress').getAttribute('data-phase'))`)
	if phase := b.Text(t, `#progress`); strings.Contains(b.Text(t, "main"), "could not be encrypted") {
		t.Fatalf("offline, the testimony failed instead of waiting in the outbox: %s", phase)
	}
	ra.stop()
	var ages []string
	des, _ := os.ReadDir(filepath.Join(home, "outbox"))
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".age") {
			ages = append(ages, de.Name())
		}
	}
	if len(ages) != 1 {
		t.Fatalf("after the app was closed offline, the outbox holds %v", des)
	}

	d.restart()
	ra2 := startApp(t, home, nil)
	b.Do(t, chromedp.Navigate(ra2.url), chromedp.WaitVisible(`nav`), chromedp.Navigate(ra2.base+"/outbox"))
	b.Wait(t, `document.querySelectorAll('a[href^="/receipt?id="]').length === 1 && document.body.textContent.indexOf('Nothing is waiting') >= 0`)
	href, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.querySelector('a[href^="/receipt?id="]').getAttribute('href')`))
	if err != nil {
		t.Fatal(err)
	}
	_, got := openSubmission(t, d, strings.TrimPrefix(href, "/receipt?id="))
	if string(got["notes.txt"]) != "notes written offline" {
		t.Errorf("notes.txt = %q", got["notes.txt"])
	}
	for name, data := range files.data {
		if string(got[name]) != string(data) {
			t.Errorf("%s differs after the offline submission", name)
		}
	}
}
