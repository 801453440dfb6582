package caseworker

// What the caseworker's app needs beyond the commands: the device's
// configuration at a glance, enrolment as a list of checks, and the
// connection that uses the token kept in the state directory.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/envelope"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/devicekey"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/pin"
)

// Setup is this device's configuration, as far as the app shows it.
type Setup struct {
	Server    string // the intake server, https://host:port; "" before enrolment
	TLSPin    string // the remembered certificate SHA-256, or ""
	TLSCA     bool   // a CA certificate is remembered instead of a pin
	OrgKey    string
	LogKey    string
	DeviceKey string // tdk1…, "" before it exists
	HasToken  bool
}

// Setup reports what this device is set up with, for server. It does not
// touch the network.
func (c *Client) Setup(server string) (Setup, error) {
	var s Setup
	h, err := c.openHome(false)
	if err != nil {
		return s, err
	}
	t, err := pin.LoadTrust(h.trustPath())
	if err != nil {
		return s, err
	}
	s.OrgKey, s.LogKey = t.OrgKey, t.LogKey
	if priv, err := devicekey.Load(h.deviceKeyPath()); err == nil {
		s.DeviceKey = envelope.DeviceKeyString(priv.Public().(ed25519.PublicKey))
	}
	if server == "" {
		return s, nil
	}
	s.Server = server
	u, err := api.ParseServer(server)
	if err != nil {
		return s, nil
	}
	if _, err := os.Stat(h.tokenPath(api.HostPort(u))); err == nil {
		s.HasToken = true
	}
	if rem, err := h.tlsStore().Load(api.HostPort(u)); err == nil {
		s.TLSPin, s.TLSCA = rem.Pin, rem.CA != ""
	}
	return s, nil
}

// StoredConn is the connection to server with the token kept for it in
// the state directory (by init -enrol or the app's enrolment), whatever
// TESTIMONY_TOKEN says, and the remembered certificate check.
func (c *Client) StoredConn(server string) Conn {
	cf := Conn{Server: server}
	if u, err := api.ParseServer(server); err == nil {
		if h, err := c.openHome(false); err == nil {
			cf.TokenFile = h.tokenPath(api.HostPort(u))
		}
	}
	return cf
}

// Enrolment is what the operator and the organisation give a caseworker.
type Enrolment struct {
	Server, Pin, Token, OrgKey, LogKey string
	// CA is a PEM CA certificate from an enrolment file, instead of Pin.
	CA string
}

// Check is one step of enrolment.
type Check struct {
	Step   string // one of the Step… constants
	OK     bool
	Detail string // the client's message when it failed (English)
}

// Enrolment steps, in order.
const (
	StepInput     = "input"
	StepOrgKey    = "org-key"
	StepLogKey    = "log-key"
	StepDeviceKey = "device-key"
	StepServer    = "server"
)

// Enrol pins the organisation's and the log's keys, keeps the access
// token for the server, creates the device key if there is none and checks
// the server, as "testimony init -server" does; the certificate check is
// remembered once the server answered. It returns one Check per step, in
// order, and stops at the first that fails.
func (c *Client) Enrol(ctx context.Context, e Enrolment) []Check {
	bad := func(err error) []Check {
		return []Check{{Step: StepInput, Detail: Message(err)}}
	}
	u, err := api.ParseServer(e.Server)
	if err != nil {
		return bad(err)
	}
	if e.Pin != "" {
		if _, err := parsePinFlag(e.Pin); err != nil {
			return bad(err)
		}
	}
	for _, k := range []string{e.OrgKey, e.LogKey} {
		if k == "" {
			continue
		}
		if err := pin.CheckKey(k); err != nil {
			return bad(err)
		}
	}
	if strings.ContainsAny(e.Token, " \t\r\n") || e.Token == "" {
		return bad(errors.New("the access token is one line like tm1_…, without spaces"))
	}
	checks := []Check{{Step: StepInput, OK: true}}
	h, err := c.openHome(true)
	if err != nil {
		return append(checks, Check{Step: StepDeviceKey, Detail: Message(err)})
	}
	tokenPath, err := saveToken(h, u, e.Token)
	if err != nil {
		return append(checks, Check{Step: StepServer, Detail: err.Error()})
	}
	// Keys first, without the server, so each failure has its own line.
	if _, err := c.Init(ctx, InitOptions{Keys: TrustKeys{OrgKey: e.OrgKey, LogKey: e.LogKey}}); err != nil {
		msg := Message(err)
		step := StepOrgKey
		if strings.Contains(msg, "log key") {
			checks = append(checks, Check{Step: StepOrgKey, OK: true})
			step = StepLogKey
		}
		return append(checks, Check{Step: step, Detail: msg})
	}
	checks = append(checks, Check{Step: StepOrgKey, OK: true})
	if e.LogKey != "" {
		checks = append(checks, Check{Step: StepLogKey, OK: true})
	}
	checks = append(checks, Check{Step: StepDeviceKey, OK: true})
	cf := Conn{Server: e.Server, TokenFile: tokenPath, Pin: e.Pin}
	if e.CA != "" && e.Pin == "" {
		cf.CAPEM, cf.CASource = []byte(e.CA), "the CA certificate of the enrolment"
	}
	if _, err := c.Init(ctx, InitOptions{Conn: cf}); err != nil {
		return append(checks, Check{Step: StepServer, Detail: Message(err)})
	}
	return append(checks, Check{Step: StepServer, OK: true})
}

// RemoveSent deletes outbox ciphertext whose receipt is already saved
// (left behind by a crash between the two) and returns how many.
func (c *Client) RemoveSent() (int, error) {
	h, err := c.openHome(false)
	if err != nil {
		return 0, err
	}
	ob := h.outbox()
	l, err := ob.List()
	if err != nil {
		return 0, err
	}
	rs, _, err := h.receipts()
	if err != nil {
		return 0, err
	}
	sent := map[string]bool{}
	for _, r := range rs {
		sent[r.SHA256] = true
	}
	n := 0
	for i := range l.Entries {
		e := &l.Entries[i]
		if sent[e.Meta.SHA256] {
			if err := ob.Remove(e); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
