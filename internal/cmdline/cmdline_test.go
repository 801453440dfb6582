package cmdline

import (
	"errors"
	"flag"
	"io/fs"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/version"
)

func TestPrint(t *testing.T) {
	inner := Errorf("no token has this name").Hint("list the tokens with: testimony-server token list -data %s", "d")
	tests := []struct {
		name string
		cmd  string
		err  error
		want string
	}{
		{"plain", "init", errors.New("failed to open x"), "p: error: failed to open x\n"},
		{"hints in order", "", Errorf("bad %d", 1).Hint("first").Hint("second"),
			"p: error: bad 1\np: hint: first\np: hint: second\n"},
		{"wrapped hints", "", Errorf("token revoke: %w", inner),
			"p: error: token revoke: no token has this name\np: hint: list the tokens with: testimony-server token list -data d\n"},
		{"usage of the command run", "submit", Errorf("no files").Hint("list the files").Usage(""),
			"p: error: no files\np: hint: list the files\np: hint: run \"p submit -h\" for its usage\n"},
		{"usage of a subcommand", "token", Errorf("missing -data").Usage("token create"),
			"p: error: missing -data\np: hint: run \"p token create -h\" for its usage\n"},
		{"usage without a command", "", Errorf("missing command").Usage(""),
			"p: error: missing command\np: hint: run \"p -h\" for its usage\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		Print(&b, "p", tt.cmd, tt.err)
		if b.String() != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

func TestErrorfWraps(t *testing.T) {
	err := Errorf("reading: %w", fs.ErrNotExist).Hint("h")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("Errorf with %w does not wrap")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		args    []string
		rest    []string
		help    bool
		wantErr string
	}{
		{args: []string{"-data", "d", "x"}, rest: []string{"x"}},
		{args: []string{"-data=d", "x", "y"}, rest: []string{"x", "y"}},
		{args: []string{"x", "-data", "d"}, wantErr: `flag -data comes after the first argument "x"`},
		{args: []string{"x", "y", "--data=d"}, wantErr: `flag -data comes after the first argument "x"`},
		{args: []string{"x", "-v"}, wantErr: `flag -v comes after`},
		{args: []string{"x", "-unknown"}, rest: []string{"x", "-unknown"}}, // not a flag of this command: an argument
		{args: []string{"-data", "d", "--", "-data"}, rest: []string{"-data"}},
		{args: []string{"x", "--", "-data"}, rest: []string{"x", "--", "-data"}},
		{args: []string{"-h"}, help: true},
		{args: []string{"x", "-h"}, help: true},
		{args: []string{"-data", "d", "x", "--help"}, help: true},
		{args: []string{"-bogus"}, wantErr: "flag provided but not defined: -bogus"},
		{args: []string{"-data"}, wantErr: "flag needs an argument: -data"},
	}
	for _, tt := range tests {
		fs := NewFlagSet("token revoke")
		fs.String("data", "", "")
		fs.Bool("v", false, "")
		err := Parse(fs, tt.args)
		switch {
		case tt.help:
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%q: got %v, want flag.ErrHelp", tt.args, err)
			}
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: got %v, want %q", tt.args, err, tt.wantErr)
				continue
			}
			var b strings.Builder
			Print(&b, "p", "", err)
			if !strings.HasSuffix(b.String(), "p: hint: run \"p token revoke -h\" for its usage\n") {
				t.Errorf("%q: no usage hint:\n%s", tt.args, b.String())
			}
		default:
			if err != nil || strings.Join(fs.Args(), " ") != strings.Join(tt.rest, " ") {
				t.Errorf("%q: got %q, %v; want %q", tt.args, fs.Args(), err, tt.rest)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		args    []string
		stdout  string
		wantErr string
	}{
		{args: nil, stdout: version.String("p") + "\n"},
		{args: []string{"-h"}, stdout: VersionPage("p")},
		{args: []string{"--help"}, stdout: VersionPage("p")},
		{args: []string{"extra", "-h"}, stdout: VersionPage("p")},
		{args: []string{"extra"}, wantErr: "p: error: version takes no arguments\np: hint: run \"p version -h\" for its usage\n"},
		{args: []string{"-json"}, wantErr: "p: error: flag provided but not defined: -json\np: hint: run \"p version -h\" for its usage\n"},
	}
	for _, tt := range tests {
		var stdout, stderr strings.Builder
		err := Version(&stdout, "p", tt.args)
		if err != nil {
			Print(&stderr, "p", "", err)
		}
		if stdout.String() != tt.stdout || stderr.String() != tt.wantErr {
			t.Errorf("version %q: stdout %q, stderr %q; want %q, %q", tt.args, stdout.String(), stderr.String(), tt.stdout, tt.wantErr)
		}
	}
}
