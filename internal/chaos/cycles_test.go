package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestChaosNodeCycles adds a master, moves slots to it and back and
// removes it, again and again, under load through the slotproxy binary:
// clients see no error; afterwards no removed node (its process still
// runs, as after a real del-node) has a connection from the proxy, and the
// proxy has as many goroutines as before (20 cycles in make chaos, 2
// otherwise). Its RSS before and after is printed.
func TestChaosNodeCycles(t *testing.T) {
	cycles := 2
	if os.Getenv("SLOTPROXY_CHAOS") == "all" {
		cycles = 20
	}
	ctx := context.Background()
	c := newCluster(t)
	p := startBinary(t, c)
	client := func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 1, Protocol: 2, DisableIdentity: true})
	}
	check := directClient(c)
	defer check.Close()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The baseline: the proxy after a load, with every client gone.
	warm := startLoad("proxy", client)
	time.Sleep(time.Second)
	if _, err := warm.finish(ctx, "warm-up", check); err != nil {
		t.Fatal(err)
	}
	goroutines, rss := p.returnMemory(t)

	l := startLoad("proxy", client)
	began := time.Now()
	var removed []*clustertest.Node
	for i := range cycles {
		n, err := c.AddMaster(ctx)
		if err == nil {
			err = c.Reshard(ctx, masters[i%len(masters)], n.Addr, 200)
		}
		if err == nil {
			err = c.Reshard(ctx, n.Addr, masters[i%len(masters)], 200)
		}
		if err == nil {
			err = c.RemoveNode(ctx, n)
		}
		if err != nil {
			l.finish(ctx, "node cycles", check)
			t.Fatalf("cycle %d: %v", i, err)
		}
		removed = append(removed, n)
	}
	took := time.Since(began)
	r, err := l.finish(ctx, fmt.Sprintf("%d add-node/reshard/del-node cycles", cycles), check)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%v)", r.row(), took.Round(time.Second))
	tableMu.Lock()
	table = append(table, r.row())
	tableMu.Unlock()
	if r.errors > 0 || r.lost > 0 {
		t.Errorf("through the proxy: %d errors (%s) and %d lost writes, want none", r.errors, r.kindsString(), r.lost)
	}

	clustertest.Eventually(t, 15*time.Second, func() error {
		for _, n := range removed {
			if conns := proxyConns(t, c, n.Addr); conns != 0 {
				return fmt.Errorf("the removed node %s still has %d connections from the proxy", n.Addr, conns)
			}
		}
		return nil
	})
	g, m := p.returnMemory(t)
	t.Logf("after %d cycles: %d goroutines in the proxy (%d before), RSS %.1f MiB (%.1f before); no connection to any of the %d removed nodes",
		cycles, g, goroutines, float64(m)/1024, float64(rss)/1024, len(removed))
	if g > goroutines {
		t.Errorf("%d goroutines in the proxy after %d cycles, %d before", g, cycles, goroutines)
	}
	// RSS is reported, not checked: in two runs of the same 2 cycles it
	// came back at 7.5 and 9.8 MiB from 7.2, goroutines and connections
	// at their baseline in both.
}

// proxyConns counts the clients of the node at addr other than the
// test's own connection: the proxy's.
func proxyConns(t *testing.T, c *clustertest.Cluster, addr string) int {
	t.Helper()
	list, err := c.Client(addr).ClientList(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST on %s: %v", addr, err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" && !strings.Contains(line, "cmd=client|list") {
			n++
		}
	}
	return n
}
