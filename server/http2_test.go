package server

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// TestHTTP2MaxFrameSize: the server advertises HTTP/2 frames of at most
// 16 KiB. A DATA frame reaches the handler only once it has arrived
// whole, so with larger frames (net/http's default allows 1 MiB, and Go's
// client then sends 512 KiB) an upload over a slow link that is cut
// every 30 s delivered no byte of a chunk on any connection.
func TestHTTP2MaxFrameSize(t *testing.T) {
	dir, _ := initDir(t)
	r := start(t, dir)
	conn, err := tls.Dial("tcp", r.info.Addr.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	// The client preface and an empty SETTINGS frame; the server's first
	// frame is its SETTINGS (RFC 9113, section 3.4).
	preface := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)
	if _, err := conn.Write(preface); err != nil {
		t.Fatal(err)
	}
	var hdr [9]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if hdr[3] != 4 || n%6 != 0 || n > 1024 {
		t.Fatalf("first frame from the server: type %d, length %d; want SETTINGS", hdr[3], n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		t.Fatal(err)
	}
	maxFrame := uint32(16 << 10) // the default when the setting is absent
	for s := payload; len(s) >= 6; s = s[6:] {
		if binary.BigEndian.Uint16(s) == 5 { // SETTINGS_MAX_FRAME_SIZE
			maxFrame = binary.BigEndian.Uint32(s[2:])
		}
	}
	if maxFrame > 16<<10 {
		t.Errorf("the server accepts HTTP/2 frames of %d bytes, want at most 16384", maxFrame)
	}
}
