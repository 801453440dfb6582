package caseworker

// Enrolment: "testimony init -enrol FILE -org-key KEY" takes the server,
// its certificate check, the log key and the token from the enrolment file
// the operator made with "testimony-server token create -enrol", and the
// organisation key from the organisation, never from the file: the file
// only names that key, so that a file made for another organisation (or
// changed on its way) is refused.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/internal/safefile"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// readEnrolment reads the enrolment file and puts its server, certificate
// check and log key in place of the flags that would give them, which
// must not be given as well.
func (c *Client) readEnrolment(file string, cf *Conn, tf *TrustKeys) (*enrol.Enrolment, error) {
	if cf.Server != "" || cf.CA != "" || cf.Pin != "" || cf.TokenFile != "" || tf.LogKey != "" {
		return nil, cmdline.Errorf("-enrol gives the server, its certificate, the log key and the token: do not add -server, -ca, -pin, -token-file or -log-key").Usage("")
	}
	e, err := enrol.Read(file)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			return nil, cmdline.Errorf("%v", err).Hint("pass the enrolment file your operator gave you, e.g. -enrol laptop-3.enrol")
		case errors.Is(err, enrol.ErrVersion):
			return nil, cmdline.Errorf("%s: %v", file, err).Hint("the file was made by a newer testimony-server; install the newer testimony your operator uses, or ask for a file this version reads")
		case errors.Is(err, enrol.ErrTooLarge), errors.Is(err, enrol.ErrNotEnrolment):
			return nil, cmdline.Errorf("%s: %v", file, err).Hint(`pass the enrolment file (.enrol) your operator made with "testimony-server token create -enrol", not another file`)
		default:
			return nil, cmdline.Errorf("%s: %v", file, err).Hint("the file was damaged or changed on its way; do not edit it, ask your operator for a new one")
		}
	}
	cf.Server, cf.Pin = e.Server, e.Pin
	if e.CA != "" {
		cf.CAPEM, cf.CASource = []byte(e.CA), "the CA certificate in "+file
	}
	tf.LogKey = e.LogKey
	return e, nil
}

// checkEnrolmentOrg refuses an enrolment file that names another
// organisation key than the one the caseworker was given (or had pinned).
func checkEnrolmentOrg(file string, e *enrol.Enrolment, orgKey string) error {
	if orgKey == "" {
		return cmdline.Errorf("-enrol needs -org-key: the organisation key never comes in the enrolment file").Usage("").
			Hint("type or paste the key from the card your organisation gave you in person: testimony init -enrol %s -org-key KEY", file)
	}
	if err := pin.CheckKey(orgKey); err != nil {
		return cmdline.Errorf("-org-key: %v", err).Usage("")
	}
	name, err := enrol.KeyName(orgKey)
	if err != nil || name != e.OrgKeyName {
		return cmdline.Errorf("the enrolment file %s names the organisation key %s, but your organisation's key is %s", file, api.Sanitize(e.OrgKeyName, 100), keyID(orgKey)).
			Hint("the file was made for another organisation, or changed on its way: do not use it").
			Hint("compare the key with the card you were given in person, and ask your operator for a new enrolment file")
	}
	return nil
}

// finishEnrolment stores the enrolment's token for its server, once the
// server answered, and deals with the file, which still holds the token.
func (c *Client) finishEnrolment(h *home, u *url.URL, e *enrol.Enrolment, file string, remove bool) error {
	path, err := saveToken(h, u, e.Token)
	if err != nil {
		return cmdline.Errorf("%v", err)
	}
	c.notef("saved the %s token %q for %s in %s; later commands to this server need no TESTIMONY_TOKEN or -token-file", e.Role, api.Sanitize(e.Name, 64), origin(u), path)
	if remove {
		if err := os.Remove(file); err != nil {
			return cmdline.Errorf("failed to delete the enrolment file: %v", err).Hint("delete it yourself: it holds your access token")
		}
		c.notef("deleted the enrolment file %s", file)
		return nil
	}
	c.notef("warning: the enrolment file %s holds your access token", file)
	c.hintf("delete it now: %s", deleteCommand(file))
	return nil
}

// deleteCommand is the command that deletes file on this system.
func deleteCommand(file string) string {
	if runtime.GOOS == "windows" {
		return `del "` + file + `"`
	}
	if strings.ContainsAny(file, " '\"\\$`") {
		return "rm '" + strings.ReplaceAll(file, "'", `'\''`) + "'"
	}
	return "rm " + file
}

// tokenPath holds the token stored for hp by init -enrol.
func (h *home) tokenPath(hp string) string { return filepath.Join(h.dir, "tokens", hp) }

// saveToken stores tok for u (mode 0600), replacing an earlier one: a new
// enrolment for the same server is a new token.
func saveToken(h *home, u *url.URL, tok string) (string, error) {
	path := h.tokenPath(api.HostPort(u))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("failed to save the token: %w", err)
	}
	if err := safefile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("failed to save the token: %w", err)
	}
	return path, nil
}
