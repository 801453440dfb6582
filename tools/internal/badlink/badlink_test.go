package badlink

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every connection by sending back what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// sinkServer reads every connection to its end and reports the bytes.
func sinkServer(t *testing.T) (string, chan int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan int64, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				got <- n
			}()
		}
	}()
	return ln.Addr().String(), got
}

func start(t *testing.T, target string, p Profile) *Proxy {
	t.Helper()
	x, err := Start(target, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// The limiter never lets bytes through faster than the rate, so these
// bounds hold however slow the machine is.

func TestRateUp(t *testing.T) {
	target, got := sinkServer(t)
	x := start(t, target, Profile{Up: 100_000})
	c, err := net.Dial("tcp", x.Addr())
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if _, err := c.Write(make([]byte, 50_000)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if n := <-got; n != 50_000 {
		t.Fatalf("server got %d bytes, want 50000", n)
	}
	if d := time.Since(begin); d < 450*time.Millisecond {
		t.Errorf("50 kB at 100 kB/s took %v, less than 0.5 s", d)
	}
	c.Close()
	if s := x.Stats(); s.Up != 50_000 || s.Conns != 1 {
		t.Errorf("Stats = %+v, want 50000 bytes up over 1 connection", s)
	}
}

func TestRateDownAndLatency(t *testing.T) {
	x := start(t, echoServer(t), Profile{Down: 200_000, Latency: 100 * time.Millisecond})
	c, err := net.Dial("tcp", x.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("x"), 40_000)
	begin := time.Now()
	go c.Write(msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	// 100 ms each way, and 40 kB at 200 kB/s on the way down.
	if d := time.Since(begin); d < 390*time.Millisecond {
		t.Errorf("echo took %v, less than 2 × 100 ms latency + 0.2 s", d)
	}
	if !bytes.Equal(buf, msg) {
		t.Error("echo changed the bytes")
	}
}

func TestCut(t *testing.T) {
	x := start(t, echoServer(t), Profile{CutEvery: 100 * time.Millisecond})
	c, err := net.Dial("tcp", x.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a cut connection: %v, want connection reset", err)
	}
	if s := x.Stats(); s.Cuts < 1 {
		t.Errorf("Stats = %+v, want a cut", s)
	}
}

func TestStall(t *testing.T) {
	x := start(t, echoServer(t), Profile{StallAfter: 1000, StallFor: 300 * time.Millisecond})
	c, err := net.Dial("tcp", x.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The 1000th byte up begins the stall, which holds the echo back.
	begin := time.Now()
	c.Write(make([]byte, 1000))
	if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Errorf("the echo passed %v into a 300 ms stall", d)
	}
	c.Write([]byte("after"))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if s := x.Stats(); s.Stalls != 1 || s.Cuts != 0 {
		t.Errorf("Stats = %+v, want one stall and no cut", s)
	}
}

func TestScale(t *testing.T) {
	p := Profile{Up: 20_000, Down: 40_000, CutEvery: 30 * time.Second, Latency: 500 * time.Millisecond, StallAfter: 7, StallFor: 2 * time.Minute}
	want := Profile{Up: 400_000, Down: 800_000, CutEvery: 1500 * time.Millisecond, Latency: 25 * time.Millisecond, StallAfter: 7, StallFor: 6 * time.Second}
	if got := p.Scale(20); got != want {
		t.Errorf("Scale(20) = %+v, want %+v", got, want)
	}
}

func TestRefusesNegative(t *testing.T) {
	if _, err := Start("127.0.0.1:1", Profile{Up: -1}); err == nil {
		t.Error("a negative rate was accepted")
	}
}
