package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("RECEIPT_KEY", fixture.PublicKeyString(fixture.SigningKey()))
			env.Setenv("OTHER_KEY", fixture.PublicKeyString(fixture.OtherKey()))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkbundle": cmdMkbundle,
			"perm":     cmdPerm,
			"lsdir":    cmdLsdir,
		},
	})
}

// cmdMkbundle adds one submission to a bundle directory, as the collector
// would have written it. Submissions get the ids 000…001, 000…002, … in the
// order they are added.
//
//	mkbundle [-corrupt] [-badsig] [-othersigner] -r RECIPIENTS BUNDLE KIND ARGS...
//
//	envelope CASE FILE...     an envelope built by crypto/envelope
//	tar NAME...               a plain tar (no manifest) of the named files
//	entry NAME [BODY]         a plain tar with one regular entry named NAME
//	symlink NAME TARGET       a plain tar with one symlink entry
//	hardlink NAME TARGET      a plain tar with one hard link entry
func cmdMkbundle(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkbundle")
	}
	var d fixture.Damage
	var recipientsFile string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-corrupt":
			d.Corrupt = true
		case "-badsig":
			d.BadSignature = true
		case "-othersigner":
			d.Signer = fixture.OtherKey()
		case "-r":
			if len(args) < 2 {
				ts.Fatalf("usage: -r RECIPIENTS")
			}
			recipientsFile = args[1]
			args = args[1:]
		default:
			ts.Fatalf("unknown mkbundle flag %s", args[0])
		}
		args = args[1:]
	}
	if recipientsFile == "" || len(args) < 3 {
		ts.Fatalf("usage: mkbundle [-corrupt] [-badsig] [-othersigner] -r RECIPIENTS BUNDLE KIND ARGS...")
	}
	rf, err := os.Open(ts.MkAbs(recipientsFile))
	ts.Check(err)
	defer rf.Close()
	recipients, err := age.ParseRecipients(rf)
	ts.Check(err)

	dir, kind, rest := ts.MkAbs(args[0]), args[1], args[2:]
	var pt fixture.Plaintext
	switch kind {
	case "envelope":
		paths := make([]string, 0, len(rest)-1)
		for _, p := range rest[1:] {
			paths = append(paths, ts.MkAbs(p))
		}
		pt = fixture.Envelope(envelope.Meta{Case: rest[0], Language: "ko", Consent: "review"}, paths...)
	case "tar":
		var entries []fixture.Entry
		for _, name := range rest {
			entries = append(entries, fixture.Entry{Name: name, Body: ts.ReadFile(name)})
		}
		pt = fixture.Tar(entries...)
	case "entry":
		e := fixture.Entry{Name: rest[0], Body: "planted\n"}
		if len(rest) > 1 {
			e.Body = rest[1]
		}
		pt = fixture.Tar(e)
	case "symlink":
		pt = fixture.Tar(fixture.Entry{Name: rest[0], Typeflag: tar.TypeSymlink, Linkname: rest[1]})
	case "hardlink":
		pt = fixture.Tar(fixture.Entry{Name: rest[0], Typeflag: tar.TypeLink, Linkname: rest[1]})
	default:
		ts.Fatalf("unknown mkbundle kind %q", kind)
	}

	n := 1
	if data, err := os.ReadFile(filepath.Join(dir, "bundle.json")); err == nil {
		var b struct{ Submissions []json.RawMessage }
		ts.Check(json.Unmarshal(data, &b))
		n += len(b.Submissions)
	}
	id := fmt.Sprintf("%032x", n)
	ts.Check(fixture.Add(dir, id, recipients, pt, d))
	fmt.Fprintln(ts.Stdout(), id)
}

// cmdPerm checks a file's permission bits: perm FILE 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (uint64(got) == want) == neg {
		ts.Fatalf("%s has mode %#o, want %s%#o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdLsdir prints the names in a directory, hidden ones included, one per
// line, sorted; symlinks are marked with " -> target".
func cmdLsdir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lsdir DIR")
	}
	// Taken first, so an empty listing still replaces the previous stdout.
	out := ts.Stdout()
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(filepath.Join(ts.MkAbs(args[0]), name))
			ts.Check(err)
			name += " -> " + target
		} else if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(out, n)
	}
}

// TestNoNetworking proves security invariant 3: the reviewer's binary links
// no networking package, so it cannot leak testimony even if compromised
// code ran inside it. Dependencies differ by platform, so each platform an
// air-gapped machine typically runs is checked. Windows is not among them:
// golang.org/x/sys/windows, which golang.org/x/term needs there, imports net.
func TestNoNetworking(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found:", err)
	}
	for _, goos := range []string{"linux", "darwin", "freebsd", "openbsd"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command(goTool, "list", "-deps", ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			deps := strings.Fields(string(out))
			// A vacuous list (wrong directory, empty output) must not pass.
			for _, want := range []string{"filippo.io/age", "github.com/testimony-ngo/testimony/tools/testimony-review/internal/review"} {
				if !slices.Contains(deps, want) {
					t.Fatalf("go list -deps output lacks %s; is the test running in the package directory?\n%s", want, out)
				}
			}
			for _, d := range deps {
				if d == "net" || d == "crypto/tls" || d == "net/http" || strings.HasPrefix(d, "net/http/") {
					t.Errorf("testimony-review links the networking package %s", d)
				}
			}
		})
	}
}

func TestDisplayText(t *testing.T) {
	for in, want := range map[string]string{
		"NK-2026-001":           "NK-2026-001",
		"탈북 증언":                 "탈북 증언",
		"\x1b[31mred\x1b[0m":    "?[31mred?[0m",
		"tab\there":             "tab?here",
		"rtl\u202eoverride":     "rtl?override",
		"bad\xffutf8":           "bad?utf8",
		strings.Repeat("x", 40): strings.Repeat("x", maxCaseWidth) + "…",
	} {
		if got := displayText(in); got != want {
			t.Errorf("displayText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0:        "0 B",
		1023:     "1023 B",
		1024:     "1.0 KiB",
		1536:     "1.5 KiB",
		41 << 20: "41.0 MiB",
		16 << 30: "16.0 GiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPassphraseLines(t *testing.T) {
	u := &ui{stdin: strings.NewReader("first\r\nsecond\nthird")}
	for _, want := range []string{"first", "second", "third"} {
		got, err := u.passphrase("prompt", true)
		if err != nil || got != want {
			t.Fatalf("passphrase() = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := u.passphrase("prompt", false); err == nil {
		t.Fatal("passphrase() after the end of input succeeded")
	}
	long := &ui{stdin: bytes.NewReader(bytes.Repeat([]byte("a"), maxPassphraseLine+1))}
	if _, err := long.passphrase("prompt", false); err == nil {
		t.Fatal("over-long passphrase line accepted")
	}
}
