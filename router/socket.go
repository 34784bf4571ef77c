package router

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/slotproxy/slotproxy/internal/sockio"
)

// socket is a backend connection's I/O. On a TCP connection the reads and
// writes are raw system calls on the non-blocking socket (internal/sockio
// says why), waiting in the runtime's poller only when the socket has no
// bytes or no room. Other connections go through net.Conn: in-memory pipes
// in benchmarks, a custom Options.Dial, and TLS, whose records crypto/tls
// seals and opens in user space. A batch is still one Write there, which
// crypto/tls sends as one record, and one system call, per 16 KiB.
//
// The reader and the writer goroutines each use their own half: the
// callbacks and their results are fields, made once, so that a read or a
// write allocates nothing.
type socket struct {
	nc  net.Conn
	raw syscall.RawConn // nil: use nc

	readFn  func(fd uintptr) bool
	readB   []byte
	readN   int
	readErr error

	writeFn  func(fd uintptr) bool
	writeB   []byte
	writeErr error
}

func newSocket(nc net.Conn) *socket {
	s := &socket{nc: nc}
	if tc, ok := nc.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			s.raw = raw
			s.readFn = s.readReady
			s.writeFn = s.writeReady
		}
	}
	return s
}

// read reads what has arrived into b, waiting for at least one byte.
func (s *socket) read(b []byte) (int, error) {
	if s.raw == nil {
		return s.nc.Read(b)
	}
	s.readB, s.readN, s.readErr = b, 0, nil
	err := s.raw.Read(s.readFn)
	s.readB = nil
	if err != nil {
		return 0, err
	}
	return s.readN, s.readErr
}

func (s *socket) readReady(fd uintptr) bool {
	n, err := sockio.Read(fd, s.readB)
	switch {
	case err == syscall.EAGAIN:
		return false
	case err == nil && n == 0:
		err = io.EOF
	case err != nil:
		err = s.opError("read", err)
	}
	s.readN, s.readErr = n, err
	return true
}

// write writes all of b, waiting for room when the socket is full.
func (s *socket) write(b []byte) error {
	if s.raw == nil {
		_, err := s.nc.Write(b)
		return err
	}
	s.writeB, s.writeErr = b, nil
	err := s.raw.Write(s.writeFn)
	s.writeB = nil
	if err != nil {
		return err
	}
	return s.writeErr
}

func (s *socket) writeReady(fd uintptr) bool {
	for len(s.writeB) > 0 {
		n, err := sockio.Write(fd, s.writeB)
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			s.writeErr = s.opError("write", err)
			return true
		}
		if n == 0 { // never from TCP; not a reason to spin
			s.writeErr = io.ErrUnexpectedEOF
			return true
		}
		s.writeB = s.writeB[n:]
	}
	return true
}

// opError dresses a system call's error as net.Conn's would be
// ("read tcp 127.0.0.1:50000->127.0.0.1:7000: connection reset by peer"),
// for the logs and the errors clients get.
func (s *socket) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
