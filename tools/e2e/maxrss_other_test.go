//go:build !linux

package e2e

import "os/exec"

// maxRSS is unknown (-1) outside Linux; see maxrss_linux_test.go.
func maxRSS(cmd *exec.Cmd) int64 { return -1 }
