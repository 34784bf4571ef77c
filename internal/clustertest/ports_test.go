package clustertest

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFreePortsHaveFreeBusPorts(t *testing.T) {
	ports, err := freePorts(6, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int]bool)
	for _, p := range ports {
		if seen[p] || seen[p+busPortOffset] {
			t.Fatalf("port %d repeated in %v", p, ports)
		}
		seen[p], seen[p+busPortOffset] = true, true
		if p+busPortOffset > 65535 {
			t.Fatalf("port %d: bus port out of range", p)
		}
	}
}

// TestBasePortBusy: a taken client or bus port fails Start at once, with
// ErrPortInUse and the port's number in the message.
func TestBasePortBusy(t *testing.T) {
	for _, bus := range []bool{false, true} {
		ports, err := freePorts(1, true)
		if err != nil {
			t.Fatal(err)
		}
		busy := ports[0]
		if bus {
			busy += busPortOffset
		}
		l, err := net.Listen("tcp", loopback(busy))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Start(t.Context(), Options{Masters: 3, BasePort: ports[0], Logf: t.Logf})
		l.Close()
		if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), ": "+strconv.Itoa(busy)+",") {
			t.Errorf("Start with port %d taken: %v; want ErrPortInUse naming the port", busy, err)
		}
	}
}

// TestNodePortConflict: when redis-server itself cannot bind (the race that
// freePorts leaves open), waitReady says ErrPortInUse so Start retries.
func TestNodePortConflict(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	server, err := lookTool("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	n, err := startNode(server, nodeConfig{port: port, dir: filepath.Join(t.TempDir(), "n")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Kill()
	err = n.waitReady(t.Context(), "")
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("waitReady on a taken port: %v; want ErrPortInUse with the log", err)
	}
}
