package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

func TestPrintError(t *testing.T) {
	var buf bytes.Buffer
	cmdline.Print(&buf, "testimony", "submit", cmdline.Errorf("no files to submit").Hint("list the files").Usage(""))
	want := "testimony: error: no files to submit\n" +
		"testimony: hint: list the files\n" +
		"testimony: hint: run \"testimony submit -h\" for its usage\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	cmdline.Print(&buf, "testimony", "", cmdline.Errorf("outbox entry %s: %w", "x", errors.New("failed to open: denied")))
	if buf.String() != "testimony: error: outbox entry x: failed to open: denied\n" {
		t.Errorf("got %q", buf.String())
	}
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	c := &cli{stderr: &buf}
	c.progress("uploading", 5<<20, 10<<20)
	c.progressClear()
	if buf.Len() != 0 {
		t.Errorf("progress drawn without a terminal: %q", buf.String())
	}
	c.terminal = true
	c.progress("uploading", 5<<20, 10<<20)
	if s := buf.String(); !strings.Contains(s, "uploading [============            ]  50% 5.0 MiB / 10.0 MiB") {
		t.Errorf("progress line %q", s)
	}
	c.notef("retrying")
	if s := buf.String(); !strings.HasSuffix(s, "\r\x1b[Ktestimony: retrying\n") {
		t.Errorf("a note does not clear the progress line first: %q", s)
	}
}
