package review

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// TestReadAheadInOrder: the consumer gets every byte in order, in reads of
// any size, then the error that ended the source, after the bytes that came
// with it.
func TestReadAheadInOrder(t *testing.T) {
	data := make([]byte, 3*readAheadBlock+12345)
	rand.Read(data)
	boom := errors.New("payload authentication failed")
	src := io.MultiReader(iotest.HalfReader(bytes.NewReader(data)), iotest.ErrReader(boom))
	ra := newReadAhead(src)
	defer ra.Close()
	var got []byte
	buf := make([]byte, 7000)
	var err error
	for {
		var n int
		n, err = ra.Read(buf[:1+len(got)%len(buf)])
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, boom) || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes (equal %v), then %v", len(got), len(data), bytes.Equal(got, data), err)
	}
	if _, err := ra.Read(buf); !errors.Is(err, boom) {
		t.Errorf("a read after the end: %v", err)
	}

	ra2 := newReadAhead(bytes.NewReader(data))
	defer ra2.Close()
	if all, err := io.ReadAll(ra2); err != nil || !bytes.Equal(all, data) {
		t.Errorf("ReadAll: %d bytes, %v", len(all), err)
	}
}

// countingSource counts the reads made of it.
type countingSource struct {
	reads atomic.Int64
}

func (c *countingSource) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return len(p), nil
}

// TestReadAheadClose: Close, with the consumer gone half way, stops the
// goroutine: the source is not read again after Close returns (the caller
// then reads the rest of the ciphertext itself, to hash it), and a read
// after Close fails instead of hanging.
func TestReadAheadClose(t *testing.T) {
	src := &countingSource{}
	ra := newReadAhead(src)
	if _, err := io.ReadFull(ra, make([]byte, readAheadBlock+1)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	n := src.reads.Load()
	if n > readAheadBlocks+2 {
		t.Errorf("%d reads of the source, more than the read-ahead holds", n)
	}
	if _, err := ra.Read(make([]byte, 10)); err == nil {
		t.Error("reads go on after Close")
	}
	if src.reads.Load() != n {
		t.Errorf("the source was read %d times after Close returned", src.reads.Load()-n)
	}
	ra.Close() // twice is fine
}
