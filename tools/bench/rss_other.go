//go:build !linux

package main

import "os/exec"

// maxRSS is unknown outside Linux, whose Rusage.Maxrss is in KiB.
func maxRSS(*exec.Cmd) int64 { return -1 }
