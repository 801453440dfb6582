// Package version is the version of testimony's programs, one for the
// whole module: testimony, testimony-review, testimony-server and
// testimony-dev come from one source tree and are released together.
//
// The version is the file VERSION, embedded into every binary. It cannot
// come from git or the build machine: tools/release/build.sh builds with
// -buildvcs=false and -trimpath, so that the same source gives the same
// bytes anywhere. A source tree between releases carries the next
// release's number with the suffix -dev (0.9.0-dev). A release is one
// commit that changes VERSION to the plain number (0.9.0), tagged
// v0.9.0, from which build.sh makes the release files; the next commit
// changes VERSION to the following number with -dev (0.10.0-dev).
//
// The package imports nothing outside the standard library and no
// networking: the reviewer's air-gapped binary links it.
package version

import (
	_ "embed"
	"runtime"
	"strings"
)

//go:embed VERSION
var file string

// Version is the release number from VERSION, without spaces or a newline,
// for example "0.9.0" or "0.10.0-dev".
var Version = strings.TrimSpace(file)

// String describes the running binary as the program prog: its name, the
// version, and the Go version and system it was built for, as in
// "testimony-server 0.9.0-dev (go1.26.8 linux/amd64)". Two binaries of one
// release built for the same system with the same Go are the same bytes.
func String(prog string) string {
	return prog + " " + Version + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
