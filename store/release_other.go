//go:build !linux

package store

// release is a no-op where the kernel hint is not available.
func release(v []byte) {}
