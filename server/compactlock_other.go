//go:build !unix

package server

// holdShared is a no-op where flock does not exist; Compact's exclusive
// open before copying still refuses a running server.
func holdShared(string) (func(), error) { return func() {}, nil }
