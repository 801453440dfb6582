// Package filelock is the blocking exclusive lock on a file that the
// caseworker binary's per-device records (the recipients floor, the saved
// log checkpoints) take around a read-compare-write, so that two commands
// running at once cannot lose each other's update. The operating system
// drops the lock when the process dies.
package filelock
