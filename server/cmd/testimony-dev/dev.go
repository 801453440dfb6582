package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/server"
)

// devWarning is printed where nobody can miss it.
const devWarning = `
  !!! DEMO ONLY !!!
  !!! This command generated a reviewer PRIVATE KEY on this machine so that
  !!! you can try the whole loop. In real use, private keys NEVER touch the
  !!! server: reviewers make them on an air-gapped machine with
  !!! "testimony-review keygen", and the server gets only public recipients.
  !!! Do not put real testimony into this server.

`

// Files in the demo directory.
const (
	devIdentityFile   = "reviewer.key"
	devRecipientsFile = "recipients.txt"
	devOrgKeyFile     = "org.key"
	devEnrolFile      = "caseworker.enrol"
	devSubmitToken    = "submit.token"
	devCollectToken   = "collect.token"
)

// dev sets up the demo deployment and serves it until c.ctx ends.
func (c *cli) dev(addr, data string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return cmdline.Errorf("testimony-dev listens only on a loopback address, not %q", addr).Hint("use -addr 127.0.0.1:8443; for a real deployment use testimony-server init and serve")
	}

	dataDir, err := devDataDir(data)
	if err != nil {
		return err
	}
	demoDir, err := os.MkdirTemp("", "testimony-dev-keys-")
	if err != nil {
		return fmt.Errorf("failed to create the demo key directory: %w", err)
	}
	if inside(demoDir, dataDir) {
		return fmt.Errorf("failed to set up: the demo key directory %s is inside the data directory %s", demoDir, dataDir)
	}
	demo := func(name string) string { return filepath.Join(demoDir, name) }

	identity, err := age.GenerateHybridIdentity()
	if err != nil {
		return fmt.Errorf("failed to generate the demo reviewer identity: %w", err)
	}
	recipient := identity.Recipient().String()
	key := "# DEMO reviewer identity made by testimony-dev.\n" +
		"# Real reviewer keys are made on an air-gapped machine and never touch a server.\n" +
		"# public key: " + recipient + "\n" + identity.String() + "\n"
	if err := writeSecret(demo(devIdentityFile), key); err != nil {
		return err
	}
	if err := writeSecret(demo(devRecipientsFile), recipient+"\n"); err != nil {
		return err
	}
	// The demo organisation key signs the recipients, as on a real
	// reviewer's machine, so the caseworker pins it as in real use.
	orgSigner, orgVerifier, err := note.GenerateKey(rand.Reader, "testimony-org")
	if err != nil {
		return fmt.Errorf("failed to generate the demo organisation key: %w", err)
	}
	if err := writeSecret(demo(devOrgKeyFile), orgSigner+"\n"); err != nil {
		return err
	}
	set, err := recipients.Parse(strings.NewReader(recipient + "\n"))
	if err != nil {
		return err
	}
	signed, err := recipients.SignNote(set, 1, orgSigner)
	if err != nil {
		return err
	}
	res, err := server.Init(dataDir, strings.NewReader(recipient+"\n"), server.InitOptions{OrgKey: orgVerifier})
	if err != nil {
		return err
	}
	submitToken, err := devTokens(dataDir, signed, demo(devSubmitToken), demo(devCollectToken))
	if err != nil {
		return err
	}
	orgName, err := enrol.KeyName(orgVerifier)
	if err != nil {
		return err
	}

	fmt.Fprint(c.stderr, devWarning)
	fmt.Fprintf(c.stdout, "data directory: %s\n", dataDir)
	fmt.Fprintf(c.stdout, "demo keys and tokens (outside the data directory): %s\n", demoDir)
	ready := func(info server.ReadyInfo) {
		url := "https://" + info.Addr.String()
		// The enrolment file is what an operator hands a caseworker: the
		// server, its certificate pin, the log key and the token. Only now
		// is the certificate known.
		err := enrol.WriteFile(demo(devEnrolFile), &enrol.Enrolment{Server: url, Pin: info.Fingerprint, LogKey: res.LogKey,
			OrgKeyName: orgName, Token: submitToken, Role: server.RoleSubmit, Name: "dev-submit"})
		if err != nil {
			fmt.Fprintf(c.stderr, "testimony-dev: error: %v\n", err)
			return
		}
		fmt.Fprintf(c.stdout, "\nTry it from the repository root, in another terminal. The first line keeps the\n")
		fmt.Fprintf(c.stdout, "demo's pinned keys and reviewer state apart from your own; the second enrols\n")
		fmt.Fprintf(c.stdout, "this computer as a caseworker's laptop (the organisation key comes, in real\n")
		fmt.Fprintf(c.stdout, "use, from a card your organisation gives you, never from the server):\n\n")
		fmt.Fprintf(c.stdout, "  export TESTIMONY_HOME=%s TESTIMONY_REVIEW_HOME=%s\n",
			shellQuote(demo("caseworker-home")), shellQuote(demo("reviewer-home")))
		fmt.Fprintf(c.stdout, "  go run ./tools/testimony init -enrol %s -org-key %s\n",
			shellQuote(demo(devEnrolFile)), shellQuote(orgVerifier))
		fmt.Fprintf(c.stdout, "  go run ./tools/testimony submit -server %s FILE\n", url)
		fmt.Fprintf(c.stdout, "  TESTIMONY_TOKEN=$(cat %s) go run ./tools/testimony collect -server %s -log-key %s -o bundle\n",
			shellQuote(demo(devCollectToken)), url, shellQuote(res.LogKey))
		fmt.Fprintf(c.stdout, "  go run ./tools/testimony-review open -log-key %s -i %s -o out bundle\n\n",
			shellQuote(res.LogKey), shellQuote(demo(devIdentityFile)))
		fmt.Fprintf(c.stdout, "Stop with Ctrl-C. Afterwards: rm -r %s %s\n", shellQuote(dataDir), shellQuote(demoDir))
		fmt.Fprintf(c.stdout, "\nTo send from the caseworker's app in your browser instead of the submit line,\n")
		fmt.Fprintf(c.stdout, "run after the export and init lines: go run ./tools/testimony app\n")
	}
	return c.runServer(server.RunConfig{DataDir: dataDir, Addr: addr, SelfSigned: true}, ready)
}

// devDataDir returns a fresh data directory: dir if it is missing or
// empty, a new temporary directory if dir is "".
func devDataDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "testimony-dev-data-")
		if err != nil {
			return "", fmt.Errorf("failed to create a data directory: %w", err)
		}
		return d, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("failed to read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return "", cmdline.Errorf("testimony-dev needs a fresh data directory, and %s is not empty", dir).Hint("leave out -data to use a new temporary directory")
	}
	return filepath.Abs(dir)
}

// devTokens installs the signed recipients note and makes the two demo
// tokens, writing each to its file; it returns the submit token for the
// enrolment file.
func devTokens(dataDir string, signed []byte, submitPath, collectPath string) (string, error) {
	admin, err := server.OpenAdmin(dataDir)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.SetRecipients(signed); err != nil {
		return "", err
	}
	var submit string
	for _, t := range []struct{ role, name, path string }{
		{server.RoleSubmit, "dev-submit", submitPath},
		{server.RoleCollect, "dev-collect", collectPath},
	} {
		token, _, err := admin.CreateToken(t.role, t.name)
		if err != nil {
			return "", err
		}
		if err := writeSecret(t.path, token+"\n"); err != nil {
			return "", err
		}
		if t.role == server.RoleSubmit {
			submit = token
		}
	}
	return submit, nil
}

// writeSecret creates path with mode 0600, refusing to replace anything.
func writeSecret(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
