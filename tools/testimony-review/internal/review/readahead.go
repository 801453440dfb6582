package review

import (
	"io"
	"sync"
)

// Read-ahead between decryption and extraction: age's reader (which reads
// the ciphertext, hashes it and decrypts it) runs in a goroutine of its
// own, a few blocks ahead of the extraction (which parses the tar, hashes
// every file and writes it), so that the two use two cores as `age -d |
// tar -x` does. Memory stays at readAheadBlocks × readAheadBlock.
const (
	readAheadBlock  = 256 << 10
	readAheadBlocks = 4
)

type aheadBlock struct {
	buf []byte
	err error
}

// readAhead reads r ahead of its consumer. Close must be called; it stops
// the reading and returns once the goroutine no longer touches r.
type readAhead struct {
	full chan aheadBlock // blocks read, in order
	free chan []byte     // buffers to read into
	stop chan struct{}   // closed by Close
	done chan struct{}   // closed when the goroutine ends
	once sync.Once
	// The consumer's side: the rest of the current block, the error
	// after it, and its buffer, to give back once it is used up.
	cur    []byte
	err    error
	spare  []byte
	closed bool
}

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{
		full: make(chan aheadBlock, readAheadBlocks),
		free: make(chan []byte, readAheadBlocks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readAheadBlocks {
		ra.free <- make([]byte, readAheadBlock)
	}
	go ra.fill(r)
	return ra
}

func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.done)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := io.ReadFull(r, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case ra.full <- aheadBlock{buf: buf[:n], err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns the bytes read ahead, then the error that ended them, in
// the order r gave them.
func (ra *readAhead) Read(p []byte) (int, error) {
	if ra.closed {
		return 0, io.ErrClosedPipe
	}
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.spare != nil {
			ra.free <- ra.spare[:cap(ra.spare)]
			ra.spare = nil
		}
		var b aheadBlock
		select {
		case b = <-ra.full:
		case <-ra.done:
			// The goroutine ended: after its last block, or because
			// Close stopped it.
			select {
			case b = <-ra.full:
			default:
				return 0, io.ErrClosedPipe
			}
		}
		ra.cur, ra.err, ra.spare = b.buf, b.err, b.buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading and waits until it has stopped; reads then
// fail. Like Read, it is called by the consumer's goroutine.
func (ra *readAhead) Close() error {
	ra.closed = true
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
	return nil
}
