package app

// The device key is shown as a QR code next to the copyable text, so that
// a reviewer can take it from the screen with a phone instead of having it
// sent by mail. The image is made here and served by the app itself, under
// the session cookie like every page: the Content-Security-Policy allows
// images from the app only.

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"

	"rsc.io/qr"
)

const (
	// qrScale is the number of image pixels per module: large enough to
	// stay sharp on a screen at the size the page shows it.
	qrScale = 8
	// qrQuiet is the white border, in modules, that readers need.
	qrQuiet = 4
)

// qrPNG encodes text as a QR code (error correction level M) in a PNG.
func qrPNG(text string) ([]byte, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, err
	}
	side := (code.Size + 2*qrQuiet) * qrScale
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y := range code.Size {
		for x := range code.Size {
			if !code.Black(x, y) {
				continue
			}
			for dy := range qrScale {
				row := (y+qrQuiet)*qrScale + dy
				for dx := range qrScale {
					img.SetColorIndex((x+qrQuiet)*qrScale+dx, row, 1)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// handleDeviceKeyQR serves the device key as a QR code.
func (a *App) handleDeviceKeyQR(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Client.Setup(a.state.get().Server)
	if err != nil || s.DeviceKey == "" {
		a.notFound(w, r)
		return
	}
	img, err := qrPNG(s.DeviceKey)
	if err != nil {
		a.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(img)
}
