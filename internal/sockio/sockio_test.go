package sockio

import (
	"bytes"
	"net"
	"syscall"
	"testing"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// on runs f with the connection's descriptor.
func on(t *testing.T, c *net.TCPConn, f func(fd uintptr)) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Control(f); err != nil {
		t.Fatal(err)
	}
}

func TestReadWrite(t *testing.T) {
	a, b := clustertest.TCPPair(t)
	buf := make([]byte, 64)

	on(t, b, func(fd uintptr) {
		if n, err := Read(fd, buf); n != 0 || err != syscall.EAGAIN {
			t.Errorf("Read with nothing sent = %d, %v; want 0, EAGAIN", n, err)
		}
	})
	on(t, a, func(fd uintptr) {
		if n, err := Write(fd, nil); n != 0 || err != nil {
			t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
		}
		if n, err := Write(fd, []byte("PING\r\n")); n != 6 || err != nil {
			t.Errorf("Write = %d, %v; want 6, nil", n, err)
		}
	})

	// The bytes cross loopback at once, but wait in the poller to be sure.
	var got []byte
	raw, err := b.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Read(func(fd uintptr) bool {
		n, err := Read(fd, buf)
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			t.Errorf("Read: %v", err)
		}
		got = append(got, buf[:n]...)
		return len(got) >= 6 || err != nil
	})
	if err != nil || string(got) != "PING\r\n" {
		t.Errorf("read %q, %v; want PING\\r\\n", got, err)
	}
	on(t, b, func(fd uintptr) {
		if n, err := Read(fd, nil); n != 0 || err != nil {
			t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
		}
	})

	// The peer's close reads as 0 bytes and no error, as read(2) says.
	a.Close()
	err = raw.Read(func(fd uintptr) bool {
		n, err := Read(fd, buf)
		if err == syscall.EAGAIN {
			return false
		}
		if n != 0 || err != nil {
			t.Errorf("Read after the peer closed = %d, %v; want 0, nil", n, err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A full socket takes part of a write, then nothing: EAGAIN, never a
// blocked thread.
func TestWriteFull(t *testing.T) {
	a, b := clustertest.TCPPair(t)
	if err := a.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := b.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	total := 0
	on(t, a, func(fd uintptr) {
		for range 1000 {
			n, err := Write(fd, chunk)
			if err == syscall.EAGAIN {
				if n != 0 {
					t.Errorf("EAGAIN with n = %d", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			total += n
		}
		t.Fatalf("wrote %d bytes into a peer that never reads and never got EAGAIN", total)
	})
	if total == 0 || total >= 1000*len(chunk) {
		t.Errorf("wrote %d bytes before EAGAIN", total)
	}
}
