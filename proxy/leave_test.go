package proxy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// TestNodeLeaves adds a master, gives it slots, has clients use it
// through the proxy (shared connections for GET and SET, a dedicated one
// for WATCH), then moves the slots back and removes the node, as an
// operator does with redis-cli --cluster. The removed node keeps running,
// as it does after del-node; the proxy must close every connection it
// had to it (the node's CLIENT LIST shows none) and keep no pool for it,
// while its clients go on without an error. Twice, so that a second node
// at another address is dialed and let go the same way.
func TestNodeLeaves(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	rdb := p.client(t, "")
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Nodes[0].Addr

	for cycle := range 2 {
		n, err := c.AddMaster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Reshard(ctx, first, n.Addr, 500); err != nil {
			t.Fatal(err)
		}
		ranges, err := c.Client(n.Addr).ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		var lo, hi int
		for _, r := range ranges {
			if r.Nodes[0].Addr == n.Addr {
				lo, hi = r.Start, r.End+1
			}
		}
		if hi == 0 {
			t.Fatalf("the new master %s serves no slot: %+v", n.Addr, ranges)
		}
		tag := tagInSlotRange(lo, hi)
		key := fmt.Sprintf("{%s}:leave:%d", tag, cycle)
		clustertest.Eventually(t, 10*time.Second, func() error {
			return rdb.Set(ctx, key, "v", 0).Err()
		})
		if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s = %q, %v", key, got, err)
		}
		watcher := dialRaw(t, p.Addr)
		watcher.send("WATCH", key)
		if f := watcher.frame(); string(f) != "+OK\r\n" {
			t.Fatalf("WATCH: %q", f)
		}
		watcher.send("UNWATCH")
		if f := watcher.frame(); string(f) != "+OK\r\n" {
			t.Fatalf("UNWATCH: %q", f)
		}
		if conns, err := c.OtherClients(ctx, n.Addr); err != nil || conns < 2 {
			t.Fatalf("%d proxy connections on the new master %s (%v), want the shared one and the dedicated one", conns, n.Addr, err)
		}
		if !slices.Contains(p.Router.Nodes(), n.Addr) {
			t.Fatalf("router nodes %v lack the new master %s", p.Router.Nodes(), n.Addr)
		}

		if err := c.Reshard(ctx, n.Addr, first, hi-lo); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		clustertest.Eventually(t, 15*time.Second, func() error {
			if conns, err := c.OtherClients(ctx, n.Addr); err != nil || conns != 0 {
				return fmt.Errorf("%d proxy connections left on the removed node %s (%v)", conns, n.Addr, err)
			}
			if nodes := p.Router.Nodes(); slices.Contains(nodes, n.Addr) {
				return fmt.Errorf("router nodes %v still hold the removed node %s", nodes, n.Addr)
			}
			return nil
		})
		if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s after the node left = %q, %v", key, got, err)
		}
	}
	slices.Sort(masters)
	if nodes := p.Router.Nodes(); !slices.Equal(nodes, masters) {
		t.Errorf("router nodes %v after two add/remove cycles, want the masters %v", nodes, masters)
	}
}
