// Package badlink is a fault-injecting TCP proxy for tests: it stands
// between a client and a server on the loopback interface and behaves like
// the links caseworkers upload over — a throttled mobile link, a satellite
// link, Tor under censorship. It limits the rate of each direction, adds
// latency, resets every open connection at an interval, and stalls (moves
// nothing either way, without closing anything) for a while once a given
// number of bytes went up. It counts the bytes it carried, so a test can
// say how many bytes an upload cost.
//
// Its clock is real time: a profile that models an hour of a bad link
// takes an hour. Tests scale rates and intervals together (Profile.Scale)
// to keep the ratios that matter and finish in seconds.
package badlink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Profile describes a link. The zero Profile is a perfect link.
type Profile struct {
	// Up and Down are the rates client→server and server→client in bytes
	// per second, shared by all connections as on one physical link; zero
	// means unlimited.
	Up, Down int64
	// CutEvery, if set, resets every open connection (both ends see a
	// reset) at this interval, counted from the proxy's start.
	CutEvery time.Duration
	// Latency is added to each direction.
	Latency time.Duration
	// StallAfter and StallFor: once StallAfter bytes have gone up, nothing
	// moves in either direction for StallFor, on open and new connections
	// alike; connections stay open. Zero StallFor means no stall.
	StallAfter int64
	StallFor   time.Duration
}

// Scale returns p with its time running k times faster: rates multiplied
// by k, durations divided by it. Sizes are not scaled: an upload over the
// scaled profile sees the same number of cuts, stalls and round trips per
// byte as over p, in 1/k of the time.
func (p Profile) Scale(k float64) Profile {
	d := func(t time.Duration) time.Duration { return time.Duration(float64(t) / k) }
	r := func(n int64) int64 { return int64(float64(n) * k) }
	return Profile{Up: r(p.Up), Down: r(p.Down), CutEvery: d(p.CutEvery), Latency: d(p.Latency),
		StallAfter: p.StallAfter, StallFor: d(p.StallFor)}
}

// Stats counts what the proxy carried.
type Stats struct {
	// Up and Down are bytes delivered to the server and to the client.
	Up, Down int64
	// Conns is the number of connections accepted, Cuts the number reset
	// by CutEvery, Stalls the number of stalls begun.
	Conns, Cuts, Stalls int
}

// socketBuffer is the kernel buffer the proxy asks for on each side, so
// that what a rate-limited direction holds back waits in the sender, as on
// a real slow link, not in megabytes of loopback buffers.
const socketBuffer = 32 << 10

// Proxy is a running proxy. Close stops it.
type Proxy struct {
	p      Profile
	target string
	ln     net.Listener
	start  time.Time
	up     *limiter
	down   *limiter

	upBytes, downBytes atomic.Int64

	mu         sync.Mutex
	conns      map[*link]struct{}
	nConns     int
	cuts       int
	stalls     int
	stallUntil time.Time
	stalled    bool // the one stall has begun
	closed     bool

	wg   sync.WaitGroup
	done chan struct{}
}

// Start listens on 127.0.0.1 and forwards every connection to target
// (host:port) through a link of profile p.
func Start(target string, p Profile) (*Proxy, error) {
	if p.Up < 0 || p.Down < 0 || p.CutEvery < 0 || p.Latency < 0 || p.StallAfter < 0 || p.StallFor < 0 {
		return nil, errors.New("badlink: negative value in profile")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("badlink: failed to listen: %w", err)
	}
	x := &Proxy{p: p, target: target, ln: ln, start: time.Now(), up: newLimiter(p.Up), down: newLimiter(p.Down),
		conns: make(map[*link]struct{}), done: make(chan struct{})}
	x.wg.Go(x.accept)
	if p.CutEvery > 0 {
		x.wg.Go(x.cutter)
	}
	return x, nil
}

// Addr is the proxy's host:port.
func (x *Proxy) Addr() string { return x.ln.Addr().String() }

// Stats returns what the proxy carried so far.
func (x *Proxy) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return Stats{Up: x.upBytes.Load(), Down: x.downBytes.Load(), Conns: x.nConns, Cuts: x.cuts, Stalls: x.stalls}
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (x *Proxy) Close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	close(x.done)
	for l := range x.conns {
		l.reset()
	}
	x.mu.Unlock()
	err := x.ln.Close()
	x.wg.Wait()
	return err
}

func (x *Proxy) accept() {
	for {
		c, err := x.ln.Accept()
		if err != nil {
			return
		}
		x.wg.Go(func() { x.serve(c) })
	}
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	once           sync.Once
}

// reset closes both ends with a TCP reset, as a link that died does to the
// ends that notice.
func (l *link) reset() {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.client, l.server} {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
	})
}

func (x *Proxy) serve(client net.Conn) {
	x.waitStall()
	server, err := net.Dial("tcp", x.target)
	if err != nil {
		client.Close()
		return
	}
	for _, c := range []net.Conn{client, server} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(socketBuffer)
			tc.SetWriteBuffer(socketBuffer)
		}
	}
	l := &link{client: client, server: server}
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		l.reset()
		return
	}
	x.conns[l] = struct{}{}
	x.nConns++
	x.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { x.pipe(server, client, x.up, &x.upBytes, true) })
	wg.Go(func() { x.pipe(client, server, x.down, &x.downBytes, false) })
	wg.Wait()
	l.reset()
	x.mu.Lock()
	delete(x.conns, l)
	x.mu.Unlock()
}

// segment is a run of bytes in flight, due at the far end at due.
type segment struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst through the limiter and the added latency. When
// either end fails, it closes the other so the connection ends as a whole.
func (x *Proxy) pipe(dst, src net.Conn, lim *limiter, count *atomic.Int64, up bool) {
	size := 16 << 10
	if lim.rate > 0 {
		size = int(min(max(lim.rate/20, 512), 16<<10))
	}
	queue := make(chan segment, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer dst.Close()
		for s := range queue {
			if d := time.Until(s.due); d > 0 {
				select {
				case <-time.After(d):
				case <-x.done:
					return
				}
			}
			x.waitStall()
			n, err := dst.Write(s.data)
			count.Add(int64(n))
			if up {
				x.noteUp()
			}
			if err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer close(queue)
	for {
		buf := make([]byte, size)
		n, err := src.Read(buf)
		if n > 0 {
			x.waitStall()
			if !lim.wait(n, x.done) {
				return
			}
			select {
			case queue <- segment{data: buf[:n], due: time.Now().Add(x.p.Latency)}:
			case <-x.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// noteUp begins the stall once StallAfter bytes went up.
func (x *Proxy) noteUp() {
	if x.p.StallFor <= 0 || x.upBytes.Load() < x.p.StallAfter {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.stalled {
		x.stalled = true
		x.stalls++
		x.stallUntil = time.Now().Add(x.p.StallFor)
	}
}

// waitStall blocks while a stall lasts.
func (x *Proxy) waitStall() {
	x.mu.Lock()
	until := x.stallUntil
	x.mu.Unlock()
	if d := time.Until(until); d > 0 {
		select {
		case <-time.After(d):
		case <-x.done:
		}
	}
}

func (x *Proxy) cutter() {
	t := time.NewTicker(x.p.CutEvery)
	defer t.Stop()
	for {
		select {
		case <-x.done:
			return
		case <-t.C:
		}
		x.mu.Lock()
		for l := range x.conns {
			l.reset()
			x.cuts++
		}
		x.mu.Unlock()
	}
}

// limiter paces one direction of the link: n bytes take n/rate seconds,
// one run after another, whichever connection they belong to.
type limiter struct {
	rate int64
	mu   sync.Mutex
	next time.Time
}

func newLimiter(rate int64) *limiter { return &limiter{rate: rate} }

// wait blocks until n more bytes may pass; false if done closed first.
func (l *limiter) wait(n int, done <-chan struct{}) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	now := time.Now()
	start := l.next
	if start.Before(now) {
		start = now
	}
	l.next = start.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	end := l.next
	l.mu.Unlock()
	// The bytes are on the wire until their last one is through.
	if d := time.Until(end); d > 0 {
		select {
		case <-time.After(d):
		case <-done:
			return false
		}
	}
	return true
}
