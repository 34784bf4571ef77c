package router_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestLease checks the dedicated connections against a real redis-server:
// they are bounded per node, reused when given back clean, closed when
// not, and a dead idle one is never handed out.
func TestLease(t *testing.T) {
	n := clustertest.Standalone(t, "")
	table, err := slotmap.BuildTable([]slotmap.Assignment{{
		Master: slotmap.Node{Addr: n.Addr},
		Ranges: []slotmap.SlotRange{{Start: 0, End: slotmap.NumSlots - 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(slotmap.Static(table), router.Options{MaxDedicatedPerNode: 2, DedicatedWait: 100 * time.Millisecond})
	t.Cleanup(rt.Close)
	admin := redis.NewClient(&redis.Options{Addr: n.Addr, Protocol: 2})
	defer admin.Close()
	ctx := context.Background()

	a, err := rt.Lease(n.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.Lease(n.Addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || b.ID == 0 || a.ID == b.ID {
		t.Fatalf("lease ids %d and %d: want two distinct CLIENT IDs", a.ID, b.ID)
	}
	if got := rt.LeasesInUse(n.Addr); got != 2 {
		t.Fatalf("LeasesInUse = %d, want 2", got)
	}
	// The bound counts both protocols: a third waits, then fails.
	start := time.Now()
	if _, err := rt.Lease(n.Addr, false); !errors.Is(err, router.ErrNoLease) {
		t.Fatalf("third lease: %v, want ErrNoLease", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("third lease failed after %v, before the wait", waited)
	}

	// A round trip, then a clean release: the same connection comes back.
	if err := a.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")); err != nil {
		t.Fatal(err)
	}
	if reply, err := a.Read(false); err != nil || string(reply) != "+OK\r\n" {
		t.Fatalf("SET on a lease: %q, %v", reply, err)
	}
	id := a.ID
	a.Release()
	a.Release() // a second release of a stale lease is a no-op
	again, err := rt.Lease(n.Addr, false)
	if err != nil || again.ID != id {
		t.Fatalf("lease after release: id %d (%v), want the released %d", again.ID, err, id)
	}

	// A closed lease is not reused: its connection is gone on the node.
	again.Close()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if listed(t, admin, id) {
			return errors.New("the closed lease's connection is still on the node")
		}
		return nil
	})

	// An idle connection the node closed is dropped, not handed out.
	bid := b.ID
	b.Release()
	if err := admin.ClientKillByFilter(ctx, "ID", itoa(bid)).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := rt.Lease(n.Addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID == bid {
		t.Fatal("a connection killed while idle was leased again")
	}
	if err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	if reply, err := c.Read(false); err != nil || string(reply) != "+PONG\r\n" {
		t.Fatalf("PING on a fresh RESP3 lease: %q, %v", reply, err)
	}

	// Interrupt ends a blocked read at once.
	d, err := rt.Lease(n.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write([]byte("*3\r\n$5\r\nBLPOP\r\n$5\r\nempty\r\n$1\r\n0\r\n")); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, d.Interrupt)
	if _, err := d.Read(true); !errors.Is(err, router.ErrInterrupted) {
		t.Fatalf("interrupted read: %v", err)
	}
	d.Close()
}

// TestLeaseSwitchesProtocol: at the bound, a client of one protocol gets
// an idle connection of the other, switched with HELLO, not a new dial.
func TestLeaseSwitchesProtocol(t *testing.T) {
	n := clustertest.Standalone(t, "")
	table, err := slotmap.BuildTable([]slotmap.Assignment{{
		Master: slotmap.Node{Addr: n.Addr},
		Ranges: []slotmap.SlotRange{{Start: 0, End: slotmap.NumSlots - 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(slotmap.Static(table), router.Options{MaxDedicatedPerNode: 1})
	t.Cleanup(rt.Close)
	var ids []int64
	hgetall := []byte("*2\r\n$7\r\nHGETALL\r\n$4\r\nnone\r\n")
	for i, resp3 := range []bool{true, false, true} {
		l, err := rt.Lease(n.Addr, resp3)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(hgetall); err != nil {
			t.Fatal(err)
		}
		reply, err := l.Read(false)
		want := "*0\r\n"
		if resp3 {
			want = "%0\r\n"
		}
		if err != nil || string(reply) != want {
			t.Fatalf("lease %d (RESP3 %v): HGETALL answered %q, %v; want %q", i, resp3, reply, err, want)
		}
		ids = append(ids, l.ID)
		l.Release()
	}
	if ids[1] != ids[0] || ids[2] != ids[0] {
		t.Fatalf("connection ids %v: want one connection, switched, never dialed again", ids)
	}
}

func listed(t *testing.T, c *redis.Client, id int64) bool {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, "id="+itoa(id)+" ") {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
