package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// deployment is one intake server with its reviewer key and tokens, run
// from the binaries built into bin.
type deployment struct {
	bin       string
	dir       string
	data      string
	identity  string
	recips    string
	submitTok string
	collTok   string
	logKey    string
	addr      string
	server    *exec.Cmd
	serverErr bytes.Buffer
	client    *http.Client
}

// build compiles the binaries under test and the age baseline into dir.
func build(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"./server/cmd/testimony-server", "./tools/testimony", "./tools/testimony-review", "filippo.io/age/cmd/age")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to build the binaries (run from the module root): %w", err)
	}
	return nil
}

func newDeployment(bin, dir string, serveArgs []string) (*deployment, error) {
	d := &deployment{bin: bin, dir: dir, data: filepath.Join(dir, "data"),
		identity: filepath.Join(dir, "reviewer.key"), recips: filepath.Join(dir, "recipients.txt")}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	out, err := d.run(nil, "testimony-review", "keygen", "-o", d.identity)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.recips, []byte(out), 0o600); err != nil {
		return nil, err
	}
	out, err = d.run(nil, "testimony-server", "init", "-data", d.data, "-recipients", d.recips)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(line, "log key: "); ok {
			d.logKey = k
		}
	}
	for _, t := range []struct {
		tok  *string
		role string
	}{{&d.submitTok, "submit"}, {&d.collTok, "collect"}} {
		out, err := d.run(nil, "testimony-server", "token", "create", "-data", d.data, "-role", t.role, "-name", t.role)
		if err != nil {
			return nil, err
		}
		*t.tok = strings.TrimSpace(out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.addr = l.Addr().String()
	l.Close()
	args := append([]string{"serve", "-data", d.data, "-addr", d.addr, "-tls-self-signed"}, serveArgs...)
	d.server = exec.Command(filepath.Join(bin, "testimony-server"), args...)
	d.server.Stderr = &d.serverErr
	if err := d.server.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d.client == nil {
			d.client = httpsClient(d.certFile())
		}
		if d.client == nil {
			continue
		}
		if resp, err := d.client.Get(d.url() + "/v1/health"); err == nil {
			resp.Body.Close()
			return d, nil
		}
	}
	d.stop()
	return nil, fmt.Errorf("testimony-server did not start:\n%s", d.serverErr.String())
}

func (d *deployment) url() string      { return "https://" + d.addr }
func (d *deployment) certFile() string { return filepath.Join(d.data, "tls", "cert.pem") }

// stop ends the server and returns its peak resident memory.
func (d *deployment) stop() int64 {
	if d.server == nil {
		return -1
	}
	rss := vmHWM(d.server.Process.Pid)
	d.server.Process.Signal(syscall.SIGTERM)
	d.server.Wait()
	d.server = nil
	return rss
}

// run runs one of the built binaries with env added and returns its
// standard output.
func (d *deployment) run(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(d.bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// httpsClient trusts only the certificate in file; nil until it exists.
func httpsClient(file string) *http.Client {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return poolClient(pool)
}

func poolClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 128,
		ForceAttemptHTTP2:   true,
	}}
}

// post sends the file at path (or body when path is empty) and fails on any
// status but 201.
func post(c *http.Client, url, token, path string, body []byte) error {
	var r io.Reader = bytes.NewReader(body)
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	req, err := http.NewRequest(http.MethodPost, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}
