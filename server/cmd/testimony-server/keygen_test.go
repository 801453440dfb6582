package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/testimony-ngo/testimony/internal/testenv"
)

// keyMaking matches the symbols of filippo.io/age that make, parse or print
// a private key: GenerateHybridIdentity, GenerateX25519Identity, their
// helpers, ParseIdentities and friends, and the String methods that encode
// an identity as AGE-SECRET-KEY-….
var keyMaking = regexp.MustCompile(`^filippo\.io/age\.(Generate|new[A-Za-z0-9]*Identity|[Pp]arse[A-Za-z0-9]*Identit|\(\*(Hybrid|X25519)Identity\)\.String$)`)

// TestNoKeyGeneration proves that the operator's binary, which runs on an
// exposed server, cannot make a reviewer's private key: the linker leaves
// out every function nothing calls, so none of age's key-making functions
// may be in the built binary. (age itself is linked: the server parses age
// headers and recipients. ML-KEM key generation in the standard library
// stays too, as crypto/tls links it.) The module's own packages are built
// without inlining, so that a call to age from our code always leaves age's
// symbol behind. The demo's key generation lives in testimony-dev.
func TestNoKeyGeneration(t *testing.T) {
	goTool := testenv.GoTool(t)
	exe := filepath.Join(t.TempDir(), "testimony-server")
	build := exec.Command(goTool, "build", "-gcflags=github.com/testimony-ngo/testimony/...=-l", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(goTool, "tool", "nm", exe).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// "ADDRESS TYPE NAME"; the name may contain spaces.
		f := strings.SplitN(strings.TrimSpace(sc.Text()), " ", 3)
		if len(f) == 3 {
			have[f[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// A listing without age's symbols (a changed nm format, a stripped
	// binary) must not pass.
	for _, want := range []string{"filippo.io/age.ExtractHeader", "filippo.io/age.ParseHybridRecipient", "main.main"} {
		if !have[want] {
			t.Fatalf("go tool nm lists no %s; the check below would prove nothing", want)
		}
	}
	for name := range have {
		if keyMaking.MatchString(name) {
			t.Errorf("testimony-server links %s", name)
		}
	}
}
