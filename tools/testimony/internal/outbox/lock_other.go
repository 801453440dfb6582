//go:build !unix && !windows

package outbox

import "os"

// lockFile does nothing where the platform has no advisory locks; running
// two testimony processes at once there can make one of them fail.
func lockFile(*os.File) error { return nil }
