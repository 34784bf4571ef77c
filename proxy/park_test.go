package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// TestParkedClients: idle clients wait without a goroutine each, new ones
// from the start and used ones after IdleParkAfter, and a parked client is
// served as soon as it sends, against a real cluster.
func TestParkedClients(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{IdleParkAfter: 300 * time.Millisecond}, router.Options{})
	if p.Server.parker == nil {
		t.Fatal("no parker: epoll unavailable")
	}
	parked := func(want int64) func() error {
		return func() error {
			if n := p.Server.parkedN.Load(); n != want {
				return fmt.Errorf("%d clients parked, want %d", n, want)
			}
			return nil
		}
	}
	before := runtime.NumGoroutine()
	const n = 200
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		nc, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns[i], readers[i] = nc, bufio.NewReader(nc)
	}
	clustertest.Eventually(t, 5*time.Second, parked(n))
	if g := runtime.NumGoroutine(); g > before+n/4 {
		t.Errorf("%d goroutines with %d parked clients (%d before)", g, n, before)
	}

	roundTrip := func(i int, cmd, want string) {
		t.Helper()
		if _, err := io.WriteString(conns[i], cmd); err != nil {
			t.Fatal(err)
		}
		conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(readers[i], got); err != nil || string(got) != want {
			t.Fatalf("client %d: %q: got %q, %v; want %q", i, cmd, got, err, want)
		}
	}
	for i := range conns {
		roundTrip(i, fmt.Sprintf("SET park:%d v%d\r\n", i, i), "+OK\r\n")
	}
	// Served clients park again once idle for IdleParkAfter.
	clustertest.Eventually(t, 5*time.Second, parked(n))
	for i := range conns {
		v := fmt.Sprintf("v%d", i)
		roundTrip(i, fmt.Sprintf("GET park:%d\r\n", i), fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
	}
	// A command split over the moment the sweeper looks still arrives whole.
	io.WriteString(conns[0], "*2\r\n$4\r\nECHO\r\n")
	time.Sleep(600 * time.Millisecond) // longer than IdleParkAfter, on purpose
	roundTrip(0, "$5\r\nhello\r\n", "$5\r\nhello\r\n")

	// A parked client that hangs up is forgotten.
	clustertest.Eventually(t, 5*time.Second, parked(n))
	conns[1].Close()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := p.Server.Clients(); got != n-1 {
			return fmt.Errorf("%d clients, want %d", got, n-1)
		}
		return nil
	})

	// Close ends parked sessions too: every client sees its connection end.
	done := make(chan struct{})
	go func() {
		p.Server.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with parked clients")
	}
	conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readers[2].ReadByte(); err != io.EOF {
		t.Errorf("a parked client after Close: %v, want EOF", err)
	}
}
