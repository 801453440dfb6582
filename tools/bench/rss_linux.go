package main

import (
	"os/exec"
	"syscall"
)

// maxRSS is the peak resident memory of a finished process in bytes.
func maxRSS(cmd *exec.Cmd) int64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // KiB on Linux
	}
	return -1
}
