package clustertest

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// busPortOffset is the distance between a cluster node's client port and its
// cluster bus port (redis-server's default, which the generated config keeps).
const busPortOffset = 10000

// ErrPortInUse is wrapped by the errors Start and Standalone return when a
// port a node needs (its client port or its cluster bus port) is taken. The
// message names the port.
var ErrPortInUse = errors.New("clustertest: port in use")

// freePorts returns n distinct loopback ports that were free a moment ago.
// With bus set, port+10000 of each is free too and below 65536, since a
// cluster node listens there as well.
//
// The kernel picks the ports (bind 127.0.0.1:0). Every probe listener stays
// open until all n are chosen, so the n ports are distinct; they are closed
// before redis-server binds, which leaves a short window in which another
// process may take one: Start retries the whole attempt when that happens.
func freePorts(n int, bus bool) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("clustertest: found only %d of %d free loopback ports", len(ports), n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("clustertest: probing for a free port: %w", err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if bus {
			if port+busPortOffset > 65535 {
				continue
			}
			bl, err := net.Listen("tcp", loopback(port+busPortOffset))
			if err != nil {
				continue
			}
			held = append(held, bl)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// fixedPorts returns base, base+1, ... base+n-1 after checking that each (and
// with bus, each bus port) can be bound now. The error names the first port
// that cannot, and wraps ErrPortInUse.
func fixedPorts(base, n int, bus bool) ([]int, error) {
	last := base + n - 1
	if bus {
		last += busPortOffset
	}
	if base <= 0 || last > 65535 {
		return nil, fmt.Errorf("clustertest: BasePort %d: ports %d..%d do not fit below 65536", base, base, last)
	}
	ports := make([]int, n)
	for i := range ports {
		p := base + i
		if err := checkPortFree(p); err != nil {
			return nil, fmt.Errorf("%w: %d, client port of node %d (%v)", ErrPortInUse, p, i, err)
		}
		if bus {
			if err := checkPortFree(p + busPortOffset); err != nil {
				return nil, fmt.Errorf("%w: %d, cluster bus port of node %d on %d (%v)", ErrPortInUse, p+busPortOffset, i, p, err)
			}
		}
		ports[i] = p
	}
	return ports, nil
}

func checkPortFree(port int) error {
	l, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return err
	}
	return l.Close()
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
