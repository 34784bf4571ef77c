package router

import (
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/slotmap"
)

type chanCompleter chan *Request

func (c chanCompleter) Complete(r *Request) { c <- r }

// TestRetiredPoolPassesOn: a request that reaches a pool retire closed
// (routed by an older table just before) is answered through a new pool
// of the same address, never failed; and retire leaves the pools of the
// table's nodes alone.
func TestRetiredPoolPassesOn(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	slots, err := slotmap.New(slotmap.Options{Seeds: c.Seeds()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if err := slots.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	rt := New(slots, Options{})
	t.Cleanup(rt.Close)
	done := make(chanCompleter, 1)
	ping := func(p *pool) string {
		t.Helper()
		r := &Request{Raw: []byte("*1\r\n$4\r\nPING\r\n"), Slot: NoSlot, Done: done}
		r.reset()
		p.send(r)
		select {
		case r := <-done:
			return string(r.Reply)
		case <-time.After(10 * time.Second):
			t.Fatal("no reply within 10s")
			return ""
		}
	}

	k := poolKey{addr: slots.Table().Shards()[0].Master.Addr}
	p := rt.pool(k)
	if got := ping(p); got != "+PONG\r\n" {
		t.Fatalf("PING = %q", got)
	}
	for range 3 {
		rt.retire()
	}
	if rt.pool(k) != p {
		t.Fatal("retire closed the pool of a master in the table")
	}

	rt.mu.Lock()
	delete(rt.pools, k)
	rt.mu.Unlock()
	p.close()
	if got := ping(p); got != "+PONG\r\n" {
		t.Fatalf("PING through the closed pool = %q, want +PONG from a new one", got)
	}
	if q := rt.pool(k); q == p {
		t.Fatal("the closed pool is back in the router")
	}
}
