package store

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

var pageSize = uintptr(os.Getpagesize())

// release tells the kernel this process no longer needs the pages of the
// memory-mapped database that hold v. Reading a 2 GiB submission through
// bbolt's read-only mapping would otherwise leave every page resident and
// charged to the server, although it is only ever read once. The pages stay
// in the page cache and fault back in if read again, so this is safe for a
// value from a read-only transaction. It must never be called on a value of
// a read-write transaction, which may live on the Go heap.
func release(v []byte) {
	if len(v) < int(2*pageSize) {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	first := (start + pageSize - 1) &^ (pageSize - 1)
	last := (start + uintptr(len(v))) &^ (pageSize - 1)
	if last <= first {
		return
	}
	// Only whole pages inside v are released; an error only means the pages
	// stay resident.
	_ = unix.Madvise(v[first-start:last-start], unix.MADV_DONTNEED)
}
