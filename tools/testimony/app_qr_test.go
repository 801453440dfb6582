package main

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// TestAppDeviceKeyQR: the settings page shows the device key as a QR code
// that the app serves itself, only within a session, and that a QR reader
// reads back as exactly the key "testimony init" printed.
func TestAppDeviceKeyQR(t *testing.T) {
	cw := newUser(t, "tm1_x")
	cw.home = filepath.Join(t.TempDir(), "state")
	cw.env["TESTIMONY_HOME"] = cw.home
	stdout, stderr, code := cw.run("init")
	if code != 0 {
		t.Fatal(stderr)
	}
	key := strings.TrimSpace(stdout)
	// The settings page shows the keys once a server is chosen.
	writeFile(t, filepath.Join(cw.home, "app.json"), []byte(`{"version":1,"server":"https://intake.example.org:443","entries":{},"confirmed":{}}`))
	ra := startApp(t, cw.home, nil)

	// Without the session cookie: refused, like every page.
	resp, err := http.Get(ra.base + "/device-key.png")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("without a session: %s, %q", resp.Status, body[:min(len(body), 16)])
	}

	cl, _ := appSession(t, ra)
	resp, err = cl.Get(ra.base + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte(`<img class="qr" src="/device-key.png"`)) {
		t.Errorf("the settings page shows no QR code:\n%s", page)
	}
	resp, err = cl.Get(ra.base + "/device-key.png")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("with a session: %s, %v", resp.Status, resp.Header)
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := readQR(t, img); got != key {
		t.Errorf("the QR code reads %q, want the device key %q", got, key)
	}
}

// readQR decodes the QR code in img with a reader written independently
// of the encoder the app uses.
func readQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the image is not a readable QR code: %v", err)
	}
	return res.GetText()
}
