package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// runPeak runs cmd and returns its peak resident memory in bytes, sampled
// from /proc as it runs. The exit status's Maxrss would not do: a child
// started with vfork reports the high-water mark of this harness.
func runPeak(cmd *exec.Cmd) (int64, error) {
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var m int64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			m = max(m, vmHWM(cmd.Process.Pid))
			select {
			case <-done:
				peak <- m
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return <-peak, err
}

// vmHWM is the peak resident memory of a running process, or 0.
func vmHWM(pid int) int64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kib, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return kib << 10
		}
	}
	return 0
}
