// Package sockio reads and writes non-blocking sockets without the Go
// scheduler's system-call bookkeeping.
//
// syscall.Read and syscall.Write tell the scheduler that the goroutine may
// block (entersyscall/exitsyscall). On a non-blocking socket they never do,
// yet the bookkeeping costs: the first call after the process was idle wakes
// the runtime's monitor thread, which then polls every 20µs and hands the
// processor to another thread whenever it sees one call span two of its
// ticks. Under redis-benchmark -P 16 through the proxy (GOMAXPROCS 1), that
// monitor thread took 13% of the proxy's CPU, with thousands of futex
// wake-ups a second. A raw system call on a socket that cannot block skips
// all of it; when the socket has nothing (EAGAIN), the caller waits in the
// runtime's poller as usual (syscall.RawConn).
package sockio

import (
	"syscall"
	"unsafe"
)

// Read is read(2) on a non-blocking socket. It retries EINTR; EAGAIN is
// returned as is. n is never negative.
func Read(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			if n > 0 {
				raceWrite(b[:n])
			}
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}

// Write is write(2) on a non-blocking socket. It retries EINTR; EAGAIN is
// returned as is. n is never negative.
func Write(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	raceRead(b)
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}
