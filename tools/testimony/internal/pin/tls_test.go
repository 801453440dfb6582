package pin

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSStore(t *testing.T) {
	s := TLSStore{Dir: filepath.Join(t.TempDir(), "tls")}
	const pin = "82853bbf763b5d3cc83611300c15f1ca51f89fdce1d7cc4ba742c755406551e5"
	if _, err := s.Load("h_443"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.Save("h_443", &TLS{Server: "https://h:443", Pin: pin, Remembered: "2026-12-03"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load("h_443"); err != nil || got.Pin != pin {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	if err := s.Save("h_443", &TLS{Pin: pin, CA: "x"}); err == nil {
		t.Error("saved a pin and a CA at once")
	}
	for name, body := range map[string]string{
		"neither":     `{"version":1,"server":"s","remembered":"d"}`,
		"both":        `{"version":1,"server":"s","pin":"` + pin + `","ca":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n","remembered":"d"}`,
		"upper pin":   `{"version":1,"server":"s","pin":"` + strings.ToUpper(pin) + `","remembered":"d"}`,
		"short pin":   `{"version":1,"server":"s","pin":"8285","remembered":"d"}`,
		"not PEM":     `{"version":1,"server":"s","ca":"hello","remembered":"d"}`,
		"version":     `{"version":2,"server":"s","pin":"` + pin + `","remembered":"d"}`,
		"unknown key": `{"version":1,"server":"s","pin":"` + pin + `","remembered":"d","x":1}`,
	} {
		os.WriteFile(s.Path("bad_443"), []byte(body), 0o600)
		if _, err := s.Load("bad_443"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
