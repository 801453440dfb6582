package e2e

import (
	"os/exec"
	"syscall"
)

// maxRSS is the peak resident memory of a finished process in bytes, or -1.
// It is Linux only because syscall.Rusage has no Maxrss on Windows and
// macOS reports it in bytes rather than KiB.
func maxRSS(cmd *exec.Cmd) int64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // Linux reports KiB
	}
	return -1
}
