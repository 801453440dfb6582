package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/internal/enrol"
	"github.com/testimony-ngo/testimony/server"
)

// enrolFlags are token create's flags for an enrolment file.
type enrolFlags struct {
	file, url, pin, ca string
}

// enrolPlan is everything an enrolment file holds but the token, checked
// before the token is made, so that a mistake leaves no unused token.
type enrolPlan struct {
	e *enrol.Enrolment
	// tlsSource says where the certificate check came from, for the
	// operator to see.
	tlsSource string
}

// planEnrolment checks the flags and reads the log key, the organisation
// key and the certificate from the data directory.
func planEnrolment(dataDir string, ef enrolFlags) (*enrolPlan, error) {
	if ef.url == "" {
		return nil, cmdline.Errorf("-enrol needs -url, the server's address as caseworkers reach it").
			Hint("add e.g. -url https://intake.example.org (the port too, if not 443)")
	}
	u, err := enrol.ParseServer(ef.url)
	if err != nil {
		return nil, cmdline.Errorf("-url: %v", err).Hint("give the address caseworkers connect to, e.g. -url https://intake.example.org:8443")
	}
	if _, err := os.Lstat(ef.file); err == nil {
		return nil, cmdline.Errorf("enrolment file %s already exists", ef.file).Hint("choose a new file name; an enrolment file is never overwritten")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to check the enrolment file: %w", err)
	}
	p := &enrolPlan{e: &enrol.Enrolment{Server: u}}
	switch {
	case ef.pin != "" && ef.ca != "":
		return nil, cmdline.Errorf("-pin and -ca are mutually exclusive").Hint("give the certificate's fingerprint with -pin or its CA with -ca, not both")
	case ef.pin != "":
		pin := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(ef.pin), ":", ""))
		if len(pin) != 64 || strings.Trim(pin, "0123456789abcdef") != "" {
			return nil, cmdline.Errorf("-pin %q is not a certificate fingerprint", ef.pin).Hint("give the SHA-256 of the server certificate: 64 hex digits, colons allowed")
		}
		p.e.Pin, p.tlsSource = pin, "-pin"
	case ef.ca != "":
		data, err := os.ReadFile(ef.ca)
		if err != nil {
			return nil, fmt.Errorf("failed to read the CA file: %w", err)
		}
		ca, err := enrol.CanonicalCA(data)
		if err != nil {
			return nil, cmdline.Errorf("-ca %s: %v", ef.ca, err).Hint("give the PEM certificate of the CA that signed the server's certificate, never a key")
		}
		p.e.CA, p.tlsSource = string(ca), "the CA certificate "+ef.ca
	default:
		// The -tls-self-signed certificate, if serve made one: its
		// fingerprint is the pin, which also works when the URL's host
		// is not among the certificate's names.
		data, err := os.ReadFile(server.SelfSignedCertPath(dataDir))
		if errors.Is(err, fs.ErrNotExist) {
			p.tlsSource = ""
			break
		} else if err != nil {
			return nil, fmt.Errorf("failed to read the self-signed certificate: %w", err)
		}
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("failed to read the self-signed certificate %s: no PEM certificate", server.SelfSignedCertPath(dataDir))
		}
		p.e.Pin, p.tlsSource = server.Fingerprint(b.Bytes), "the self-signed certificate "+server.SelfSignedCertPath(dataDir)
	}
	info, err := withAdmin(dataDir, server.Admin.Recipients)
	if err != nil {
		return nil, err
	}
	if info.OrgKey == "" {
		return nil, cmdline.Errorf("this deployment has no organisation key, and an enrolment file must name it").
			Hint("the organisation key is given at init (testimony-server init -org-key); without it, hand out the token, URL, pin and log key separately (docs/operator.md)")
	}
	if p.e.OrgKeyName, err = enrol.KeyName(info.OrgKey); err != nil {
		return nil, fmt.Errorf("failed to read the stored organisation key: %w", err)
	}
	p.e.LogKey = info.LogKey
	return p, nil
}

// writeEnrolment writes the enrolment file for a new token.
func (c *cli) writeEnrolment(dataDir, file string, p *enrolPlan, token string, info server.TokenInfo) error {
	p.e.Token, p.e.Role, p.e.Name = token, info.Role, info.Name
	if err := enrol.WriteFile(file, p.e); err != nil {
		return cmdline.Errorf("%w", err).Hint("the token %s was created but not handed out; revoke it with: testimony-server token revoke -data %s %s", info.Name, dataDir, info.Name)
	}
	c.note("created %s token %s (%s) and wrote it to the enrolment file %s (mode 0600)", info.Role, info.ID, info.Name, file)
	c.note("the file names the server %s, the log key %s and the organisation key %s", p.e.Server, keyName(p.e.LogKey), p.e.OrgKeyName)
	if p.tlsSource != "" {
		c.note("it pins the server's certificate from %s", p.tlsSource)
	} else {
		c.note("warning: it has no -pin or -ca: clients check the server's certificate against their system's CAs, which is right only for a certificate from a public CA")
	}
	c.note("hint: hand the file to the caseworker in person (it holds the token), with the organisation key card; they run: testimony init -enrol %s -org-key KEY", file)
	c.note("hint: then delete your copy: rm %s", file)
	return nil
}

// keyName is the name+hash part of a verifier key, for messages.
func keyName(vkey string) string {
	if n, err := enrol.KeyName(vkey); err == nil {
		return n
	}
	return vkey
}
