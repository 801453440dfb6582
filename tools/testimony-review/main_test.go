package main

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
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
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/testenv"
	"github.com/testimony-ngo/testimony/internal/version"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/fixture"
	"github.com/testimony-ngo/testimony/tools/testimony-review/internal/state"
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
			_, logKey := fixture.LogKey()
			_, otherLogKey := fixture.OtherLogKey()
			env.Setenv("LOG_KEY", logKey)
			env.Setenv("OTHER_LOG_KEY", otherLogKey)
			env.Setenv("CASEWORKER_KEY", deviceKey(caseworkerSeed))
			env.Setenv("STRANGER_KEY", deviceKey(strangerSeed))
			env.Setenv(state.EnvHome, filepath.Join(env.WorkDir, "home"))
			env.Setenv("VERSION", version.Version)
			env.Values[scriptStateKey{}] = &scriptState{
				logs:    map[string]*fixture.Log{"main": fixture.NewLog()},
				bundled: map[string]int64{},
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mksub":      cmdMksub,
			"mkbundle":   cmdMkbundle,
			"forklog":    cmdForklog,
			"newlog":     cmdNewlog,
			"tamper":     cmdTamper,
			"verifynote": cmdVerifynote,
			"perm":       cmdPerm,
			"lsdir":      cmdLsdir,
			"checkack":   cmdCheckack,
		},
	})
}

// Seeds of the fixture caseworker device keys the scripts use.
const (
	caseworkerSeed = 0x21
	strangerSeed   = 0x22
)

func deviceKey(seed byte) string {
	return envelope.DeviceKeyString(fixture.DeviceKey(seed).Public().(ed25519.PublicKey))
}

// scriptState is the server side of one script: its intake logs (a lying
// server may keep more than one) and where each log's last bundle ended.
type scriptState struct {
	logs    map[string]*fixture.Log
	bundled map[string]int64
	next    int
}

type scriptStateKey struct{}

func getState(ts *testscript.TestScript) *scriptState {
	return ts.Value(scriptStateKey{}).(*scriptState)
}

func (s *scriptState) log(ts *testscript.TestScript, name string) *fixture.Log {
	l, ok := s.logs[name]
	if !ok {
		ts.Fatalf("no log %q", name)
	}
	return l
}

// cmdMksub encrypts a submission and appends it to a log, as the server
// would on receiving it, and prints its id. Ids are 000…001, 000…002, … in
// the order of mksub calls, whatever the log.
//
//	mksub [-log NAME] [-id ID] [-sign caseworker|stranger] [-altered] [-truncate] -r RECIPIENTS KIND ARGS...
//
//	envelope CASE FILE...     an envelope built by crypto/envelope
//	tar NAME...               a plain tar (no manifest) of the named files
//	entry NAME [BODY]         a plain tar with one regular entry named NAME
//	symlink NAME TARGET       a plain tar with one symlink entry
//	hardlink NAME TARGET      a plain tar with one hard link entry
//
// -sign signs an envelope with the fixture key of $CASEWORKER_KEY or
// $STRANGER_KEY; -altered then changes its manifest after signing.
// -truncate cuts the end off the ciphertext before it is logged. -id logs
// it under ID instead of the next id, as a server that reuses ids would.
func cmdMksub(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mksub")
	}
	const usage = "usage: mksub [-log NAME] [-id ID] [-sign caseworker|stranger] [-altered] [-truncate] -r RECIPIENTS KIND ARGS..."
	logName, recipientsFile, reuse := "main", "", ""
	var signer ed25519.PrivateKey
	var altered, truncate bool
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		flag := args[0]
		switch flag {
		case "-altered":
			altered = true
		case "-truncate":
			truncate = true
		case "-log", "-id", "-r", "-sign":
			if len(args) < 2 {
				ts.Fatalf("%s", usage)
			}
			switch flag {
			case "-log":
				logName = args[1]
			case "-id":
				reuse = args[1]
			case "-r":
				recipientsFile = args[1]
			case "-sign":
				signer = fixture.DeviceKey(map[string]byte{"caseworker": caseworkerSeed, "stranger": strangerSeed}[args[1]])
			}
			args = args[1:]
		default:
			ts.Fatalf("unknown mksub flag %s", flag)
		}
		args = args[1:]
	}
	if recipientsFile == "" || len(args) < 2 {
		ts.Fatalf("%s", usage)
	}
	rf, err := os.Open(ts.MkAbs(recipientsFile))
	ts.Check(err)
	defer rf.Close()
	recipients, err := age.ParseRecipients(rf)
	ts.Check(err)

	kind, rest := args[0], args[1:]
	var pt fixture.Plaintext
	switch kind {
	case "envelope":
		paths := make([]string, 0, len(rest)-1)
		for _, p := range rest[1:] {
			paths = append(paths, ts.MkAbs(p))
		}
		meta := envelope.Meta{Case: rest[0], Language: "ko", Consent: "review"}
		pt = fixture.Envelope(meta, signer, paths...)
		if altered {
			pt = fixture.AlteredAfterSigning(meta, signer, paths...)
		}
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
		ts.Fatalf("unknown mksub kind %q", kind)
	}
	ct, err := fixture.Encrypt(recipients, pt, truncate)
	ts.Check(err)
	st := getState(ts)
	l := st.log(ts, logName)
	id := reuse
	if id == "" {
		st.next++
		id = fmt.Sprintf("%032x", st.next)
	}
	l.Append(id, ct)
	fmt.Fprintln(ts.Stdout(), id)
}

// cmdMkbundle writes a bundle of a log into DIR, as the collector would:
// from where the previous bundle of that log ended (or -from) to the log's
// current size (or -to). -othersigner signs its checkpoints with a key that
// has the log's name but is not the log's ($OTHER_LOG_KEY).
//
//	mkbundle [-log NAME] [-from N] [-to N] [-othersigner] DIR
func cmdMkbundle(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkbundle")
	}
	const usage = "usage: mkbundle [-log NAME] [-from N] [-to N] [-othersigner] DIR"
	st := getState(ts)
	logName := "main"
	from, to := int64(-1), int64(-1)
	var opt fixture.BundleOptions
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-othersigner":
			opt.Signer, _ = fixture.OtherLogKey()
		case "-log", "-from", "-to":
			if len(args) < 2 {
				ts.Fatalf("%s", usage)
			}
			switch args[0] {
			case "-log":
				logName = args[1]
			case "-from":
				from = atoi(ts, args[1])
			case "-to":
				to = atoi(ts, args[1])
			}
			args = args[1:]
		default:
			ts.Fatalf("unknown mkbundle flag %s", args[0])
		}
		args = args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("%s", usage)
	}
	l := st.log(ts, logName)
	if from < 0 {
		from = st.bundled[logName]
	}
	if to < 0 {
		to = l.Size()
	}
	ts.Check(l.WriteBundle(ts.MkAbs(args[0]), from, to, opt))
	st.bundled[logName] = to
}

// cmdForklog makes log DST a copy of the first SIZE leaves of log SRC:
// the second history of a lying server.
//
//	forklog SRC SIZE DST
func cmdForklog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: forklog SRC SIZE DST")
	}
	st := getState(ts)
	st.logs[args[2]] = st.log(ts, args[0]).Fork(atoi(ts, args[1]))
	st.bundled[args[2]] = st.bundled[args[0]]
}

// cmdNewlog makes NAME an empty log signed with $OTHER_LOG_KEY: the log
// of a new deployment, after the operator replaced the log key.
//
//	newlog NAME
func cmdNewlog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: newlog NAME")
	}
	getState(ts).logs[args[0]] = fixture.NewOtherLog()
}

// cmdTamper changes a bundle after it was written.
//
//	tamper DIR drop ID          remove a submission (entry and ciphertext), keep its leaf
//	tamper DIR dropleaf INDEX   remove a leaf, its submission and ciphertext
//	tamper DIR swap ID ID       exchange two ciphertexts
//	tamper DIR alter ID         flip a bit in a ciphertext
//	tamper DIR proof INDEX      flip a bit in a leaf's inclusion proof
//	tamper DIR from LOG SIZE    make the bundle claim to continue from LOG's checkpoint of SIZE
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: tamper DIR drop|dropleaf|swap|alter|proof|from ARGS...")
	}
	dir, what, rest := ts.MkAbs(args[0]), args[1], args[2:]
	switch {
	case what == "drop" && len(rest) == 1:
		ts.Check(fixture.DropSubmission(dir, rest[0]))
	case what == "dropleaf" && len(rest) == 1:
		ts.Check(fixture.DropLeaf(dir, atoi(ts, rest[0])))
	case what == "swap" && len(rest) == 2:
		ts.Check(fixture.SwapCiphertexts(dir, rest[0], rest[1]))
	case what == "alter" && len(rest) == 1:
		ts.Check(fixture.AlterCiphertext(dir, rest[0]))
	case what == "proof" && len(rest) == 1:
		ts.Check(fixture.AlterProof(dir, atoi(ts, rest[0])))
	case what == "from" && len(rest) == 2:
		l := getState(ts).log(ts, rest[0])
		ts.Check(fixture.SetFromCheckpoint(dir, l.SignedCheckpoint(atoi(ts, rest[1]), nil)))
	default:
		ts.Fatalf("unknown tamper %q with %d arguments", what, len(rest))
	}
}

// cmdVerifynote verifies a signed recipients note with an organisation
// verifier key, as the caseworker's client does, and prints its version and
// recipients.
//
//	verifynote NOTE VKEYFILE
func cmdVerifynote(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: verifynote NOTE VKEYFILE")
	}
	s, err := recipients.VerifyNote([]byte(ts.ReadFile(args[0])), strings.TrimSpace(ts.ReadFile(args[1])))
	if neg {
		if err == nil {
			ts.Fatalf("note verified")
		}
		return
	}
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "version %d\n", s.Version)
	for _, r := range s.Set.Strings {
		fmt.Fprintln(ts.Stdout(), r)
	}
}

func atoi(ts *testscript.TestScript, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	ts.Check(err)
	return n
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
	goTool := testenv.GoTool(t)
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
