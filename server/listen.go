package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// listenActivationFD is the first file descriptor systemd passes to a
// socket-activated service (SD_LISTEN_FDS_START in sd_listen_fds(3)).
const listenActivationFD = 3

// maxActivationFDs bounds LISTEN_FDS: one unit passes a handful of sockets,
// and a larger number is a mistake, not a configuration.
const maxActivationFDs = 16

// ErrNoActivation means the process was not started by socket activation:
// LISTEN_PID is not this process, or LISTEN_FDS is missing.
var ErrNoActivation = errors.New("not socket-activated")

// ActivationListeners returns the listening sockets systemd passed to this
// process (sd_listen_fds(3)): LISTEN_FDS descriptors from 3 on, if LISTEN_PID
// is this process. It unsets the variables, so that a child process does not
// take them for its own. The protocol is three environment variables and
// fixed descriptor numbers; it needs no library.
func ActivationListeners() ([]net.Listener, error) {
	lns, err := activationListeners(os.Getenv, os.Getpid(), listenActivationFD)
	if !errors.Is(err, ErrNoActivation) {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}
	return lns, err
}

// activationListeners is ActivationListeners with its inputs given, so a
// test can pass descriptors that are not 3 and up.
func activationListeners(getenv func(string) string, pid, firstFD int) ([]net.Listener, error) {
	if getenv("LISTEN_PID") == "" || getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return nil, ErrNoActivation
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 1 || n > maxActivationFDs {
		return nil, fmt.Errorf("failed to use the sockets passed by systemd: LISTEN_FDS=%q is not a number from 1 to %d", getenv("LISTEN_FDS"), maxActivationFDs)
	}
	var lns []net.Listener
	for fd := firstFD; fd < firstFD+n; fd++ {
		// The descriptors must not leak into children such as a
		// restarted server.
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("failed to use socket %d passed by systemd (ListenStream= sockets only): %w", fd, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// listenUnix listens for HTTPS on the unix socket path, for a Tor onion
// service (HiddenServicePort 443 unix:PATH) or a reverse proxy on the same
// machine. A socket file left by a server that was killed is replaced; one
// that answers is another server's.
//
// The socket is mode 0666, as reachable as a loopback TCP port: any local
// user could connect to that too, and what guards the API is TLS and the
// tokens, not the address. To keep other users out, put it in a directory
// only the server and Tor can enter.
func listenUnix(path string) (net.Listener, error) {
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("failed to listen on %s: another server answers there", path)
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&os.ModeSocket == 0:
		return nil, fmt.Errorf("failed to listen on %s: a file that is not a socket is in the way", path)
	case err == nil:
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("failed to remove the old socket %s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to set the mode of %s: %w", path, err)
	}
	return ln, nil
}
