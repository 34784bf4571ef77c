//go:build race

package sockio

import (
	"runtime"
	"unsafe"
)

// syscall.Read and syscall.Write tell the race detector what the kernel
// reads and writes; RawSyscall does not, so these do, and a buffer still
// in use elsewhere while a socket fills it is reported as with net.Conn.

func raceWrite(b []byte) { runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b)) }

func raceRead(b []byte) { runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b)) }
