package proxy

import (
	"errors"
	"net"
	"syscall"
)

// isTemporary reports accept errors worth waiting out: the process or the
// system ran out of file descriptors or buffers, or the peer gave up before
// the accept completed.
func isTemporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
