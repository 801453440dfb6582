package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testimony-ngo/testimony/crypto/receipt"
)

// childDataEnv makes the test binary serve a data directory instead of
// running tests; TestKillRestartResume kills such a child with SIGKILL.
const childDataEnv = "TESTIMONY_SERVER_TEST_CHILD_DATA"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataEnv); dir != "" {
		os.Exit(serveChild(dir))
	}
	os.Exit(m.Run())
}

// serveChild serves dir and writes the address to dir.addr once ready.
func serveChild(dir string) int {
	err := Run(context.Background(), RunConfig{
		DataDir:    dir,
		Addr:       "127.0.0.1:0",
		SelfSigned: true,
		Ready: func(info ReadyInfo) {
			tmp := dir + ".addr.tmp"
			os.WriteFile(tmp, []byte(info.Addr.String()), 0o600)
			os.Rename(tmp, dir+".addr")
		},
	})
	fmt.Fprintln(os.Stderr, err)
	return 1
}

type child struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	addr   string
	stderr bytes.Buffer
	hc     *http.Client
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	os.Remove(dir + ".addr")
	c := &child{t: t, dir: dir}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childDataEnv+"="+dir)
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr, err := os.ReadFile(dir + ".addr"); err == nil {
			c.addr = string(addr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child server did not start:\n%s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool, _ := certPool(t, dir)
	c.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

func (c *child) do(method, path, token string, body []byte, header ...string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, "https://"+c.addr+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// TestKillRestartResume kills the server with SIGKILL in the middle of an
// upload and after acknowledging it: the upload resumes where it stopped,
// and the acknowledged submission is still there, byte for byte.
func TestKillRestartResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir, recipient := initDir(t)
	a, err := OpenAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	submit, _, err := a.CreateToken(RoleSubmit, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	collect, _, err := a.CreateToken(RoleCollect, "collector")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	file := encrypt(t, bytes.Repeat([]byte("testimony "), (2*ChunkSize+500)/10), recipient)
	put := func(c *child, id string, i int) {
		chunk := chunkOf(file, i)
		if code, body := c.do("PUT", "/v1/uploads/"+id+"/chunks/"+strconv.Itoa(i), submit, chunk, "Chunk-SHA256", sha(chunk)); code != 204 {
			t.Fatalf("chunk %d: %d %s", i, code, body)
		}
	}

	c := startChild(t, dir)
	code, body := c.do("POST", "/v1/uploads", submit, []byte(fmt.Sprintf(`{"size":%d,"sha256":"%s"}`, len(file), sha(file))))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct{ ID string }
	json.Unmarshal(body, &created)
	id := created.ID
	put(c, id, 0)
	put(c, id, 2)
	c.kill()

	c = startChild(t, dir)
	code, body = c.do("GET", "/v1/uploads/"+id, submit, nil)
	if code != 200 || !strings.Contains(string(body), `"missing":[1]`) {
		t.Fatalf("status after restart: %d %s", code, body)
	}
	put(c, id, 1)
	code, body = c.do("POST", "/v1/uploads/"+id+"/finish", submit, nil)
	if code != 201 {
		t.Fatalf("finish: %d %s", code, body)
	}
	rc, err := receipt.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	c.kill()

	c = startChild(t, dir)
	code, body = c.do("GET", "/v1/uploads/"+id, submit, nil)
	if code != 200 || !strings.Contains(string(body), `"state":"complete"`) {
		t.Fatalf("upload after the second restart: %d %s", code, body)
	}
	code, body = c.do("GET", "/v1/recipients", collect, nil)
	var info RecipientsInfo
	if code != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("recipients: %d %s", code, body)
	}
	if _, err := rc.Verify(info.LogKey); err != nil {
		t.Fatalf("the receipt does not verify with the restarted server's log key: %v", err)
	}
	code, body = c.do("GET", "/v1/submissions/"+id, collect, nil)
	if code != 200 || !bytes.Equal(body, file) {
		t.Fatalf("download after restart: %d, %d bytes, want %d", code, len(body), len(file))
	}
}
