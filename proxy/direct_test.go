package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// sessionOf returns the proxy's session serving the client connection rc.
func sessionOf(t *testing.T, p *testProxy, rc *respConn) *session {
	t.Helper()
	var found *session
	clustertest.Eventually(t, 5*time.Second, func() error {
		p.Server.mu.Lock()
		defer p.Server.mu.Unlock()
		for s := range p.Server.sessions {
			if s.nc.RemoteAddr().String() == rc.nc.LocalAddr().String() {
				found = s
				return nil
			}
		}
		return fmt.Errorf("no session for %s", rc.nc.LocalAddr())
	})
	return found
}

// TestDirectReplies checks the replies the backend connection's reader
// writes to the client itself (direct.go): in order, whole when the client
// reads slowly, and harmless when the client hangs up first.
func TestDirectReplies(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{ConnsPerNode: 1})

	t.Run("unpipelined", func(t *testing.T) {
		rc := dialRESP(t, p.Addr)
		const n = 300
		for i := range n {
			key := fmt.Sprintf("direct:%d", i)
			if r := rc.do("SET", key, "v"+key); r != "+OK\r\n" {
				t.Fatalf("SET %s: %q", key, r)
			}
			want := fmt.Sprintf("$%d\r\nv%s\r\n", len(key)+1, key)
			if r := rc.do("GET", key); r != want {
				t.Fatalf("GET %s: %q, want %q", key, r, want)
			}
		}
		// Whoever brings the batch's count to zero writes: the session
		// when the reply came before it let go, which on a loopback
		// round trip of tens of microseconds is the exception.
		if got := sessionOf(t, p, rc).directReplies.Load(); got < n {
			t.Errorf("%d of %d replies written by the backend reader, want at least half", got, 2*n)
		}
	})

	t.Run("next command before the reply", func(t *testing.T) {
		// Three writes without waiting in between: a later command may
		// arrive while an earlier one's reply is being written by the
		// backend reader, and must be answered after it. The test cannot
		// tell when that happened; it checks the order whatever the timing.
		rc := dialRESP(t, p.Addr)
		for i := range 500 {
			key := fmt.Sprintf("order:%d", i)
			rc.write(respCommand("SET", key, key))
			rc.write(respCommand("GET", key))
			rc.write(respCommand("PING", key))
			if r := rc.reply(); r != "+OK\r\n" {
				t.Fatalf("round %d SET: %q", i, r)
			}
			bulk := fmt.Sprintf("$%d\r\n%s\r\n", len(key), key)
			if r := rc.reply(); r != bulk {
				t.Fatalf("round %d GET: %q, want %q", i, r, bulk)
			}
			if r := rc.reply(); r != bulk {
				t.Fatalf("round %d PING: %q, want %q", i, r, bulk)
			}
		}
		if sessionOf(t, p, rc).directReplies.Load() == 0 {
			t.Error("no reply was written by the backend reader")
		}
	})

	t.Run("slow reader of a large reply", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", 1<<19) // 8 MiB: more than the sockets buffer
		if err := p.client(t, "").Set(context.Background(), "direct:big", big, 0).Err(); err != nil {
			t.Fatal(err)
		}
		rc := dialRESP(t, p.Addr)
		s := sessionOf(t, p, rc)
		before := s.directReplies.Load()
		rc.write(respCommand("GET", "direct:big"))
		// Not reading yet: the reader's write stops short and the rest
		// goes to the session's backlog.
		clustertest.Eventually(t, 10*time.Second, func() error {
			if s.directReplies.Load() == before {
				return fmt.Errorf("the reply is not written yet")
			}
			return nil
		})
		want := fmt.Sprintf("$%d\r\n%s\r\n", len(big), big)
		if r := rc.reply(); r != want {
			t.Fatalf("GET direct:big: %d bytes, want %d (equal: %v)", len(r), len(want), r == want)
		}
		if r := rc.do("PING"); r != "+PONG\r\n" {
			t.Fatalf("PING after the large reply: %q", r)
		}
	})

	t.Run("client gone before its reply", func(t *testing.T) {
		base := p.Server.Clients()
		for i := range 100 {
			rc := dialRESP(t, p.Addr)
			rc.write(respCommand("GET", fmt.Sprintf("direct:%d", i)))
			rc.nc.Close()
		}
		clustertest.Eventually(t, 10*time.Second, func() error {
			if n := p.Server.Clients(); n > base {
				return fmt.Errorf("%d clients still connected, %d before", n, base)
			}
			return nil
		})
		rc := dialRESP(t, p.Addr)
		if r := rc.do("GET", "direct:7"); r != "$9\r\nvdirect:7\r\n" {
			t.Fatalf("GET after the hang-ups: %q", r)
		}
	})
}

// TestDirectReplyThenPark checks that a session whose last reply was
// written by the backend reader gives its batch and buffers back when it
// parks, as any idle session does.
func TestDirectReplyThenPark(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{IdleParkAfter: 200 * time.Millisecond}, router.Options{})
	rc := dialRESP(t, p.Addr)
	rc.do("SET", "park:k", "v")
	s := sessionOf(t, p, rc)
	before := s.directReplies.Load()
	if r := rc.do("GET", "park:k"); r != "$1\r\nv\r\n" {
		t.Fatalf("GET: %q", r)
	}
	if s.directReplies.Load() == before {
		t.Fatal("the GET's reply was not written by the backend reader")
	}
	pk := p.Server.parker
	clustertest.Eventually(t, 10*time.Second, func() error {
		pk.mu.Lock()
		defer pk.mu.Unlock()
		if pk.parked[int32(s.fd)] != s {
			return fmt.Errorf("the session has not parked")
		}
		if s.batch != nil || s.rbuf != nil {
			return fmt.Errorf("parked with its batch (%v) or read buffer (%d bytes)", s.batch != nil, len(s.rbuf))
		}
		return nil
	})
	if r := rc.do("GET", "park:k"); r != "$1\r\nv\r\n" {
		t.Fatalf("GET after parking: %q", r)
	}
}
