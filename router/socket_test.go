package router

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// The raw socket reads and writes as net.Conn does: bytes, io.EOF when the
// peer closes, and errors worded like net.Conn's.
func TestSocket(t *testing.T) {
	near, far := clustertest.TCPPair(t)
	s := newSocket(near)
	if s.raw == nil {
		t.Fatal("a TCP connection should use the raw path")
	}
	if err := s.write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(far, got); err != nil || string(got) != "PING\r\n" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	far.Write([]byte("+PONG\r\n"))
	buf := make([]byte, 64)
	if n, err := s.read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	far.Close()
	if n, err := s.read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: read %d, %v; want 0, EOF", n, err)
	}

	// A reset (the peer closes with linger 0) reads as ECONNRESET.
	near2, far2 := clustertest.TCPPair(t)
	s2 := newSocket(near2)
	far2.SetLinger(0)
	far2.Close()
	_, err := s2.read(buf)
	if !errors.Is(err, syscall.ECONNRESET) || !strings.HasPrefix(err.Error(), "read tcp 127.0.0.1:") {
		t.Fatalf("after a reset: %v; want read tcp ...: connection reset by peer", err)
	}
	if err := s2.write([]byte("PING\r\n")); err == nil || !strings.HasPrefix(err.Error(), "write tcp 127.0.0.1:") {
		t.Fatalf("write after a reset: %v; want a write tcp ... error", err)
	}

	// Closing the connection ends a read that waits.
	near3, _ := clustertest.TCPPair(t)
	s3 := newSocket(near3)
	done := make(chan error, 1)
	go func() { _, err := s3.read(buf[:]); done <- err }()
	near3.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v; want net.ErrClosed", err)
	}
}
