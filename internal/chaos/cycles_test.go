package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestChaosNodeCycles adds a master, moves slots to it and back and
// removes it, again and again, under load through the slotproxy binary:
// clients see no error; afterwards no removed node (its process still
// runs, as after a real del-node) has a connection from the proxy, and the
// proxy has as many goroutines as before and its RSS comes back within 10%
// (20 cycles in make chaos, 2 otherwise).
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
	served := warm.waitServed(time.Now(), 10*time.Second)
	if _, err := warm.finish(ctx, "warm-up", check); errors.Join(served, err) != nil {
		t.Fatal(errors.Join(served, err))
	}
	rss := p.returnMemory(t)
	goroutines := p.steadyGoroutines(t)

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
			if conns, err := c.OtherClients(ctx, n.Addr); err != nil || conns != 0 {
				return fmt.Errorf("the removed node %s still has %d connections from the proxy (%v)", n.Addr, conns, err)
			}
		}
		return nil
	})
	// A read may count the admin listener's goroutine still ending the
	// read before it: the count must come down to the baseline.
	var g int
	clustertest.Eventually(t, 10*time.Second, func() error {
		if g = p.goroutines(t); g > goroutines {
			return fmt.Errorf("%d goroutines in the proxy after %d cycles, %d before", g, cycles, goroutines)
		}
		return nil
	})
	// The Go runtime gives freed memory back to the system over a few
	// garbage collections, not at once: RSS must come back within 10% of
	// the baseline, which memory held for removed nodes would prevent.
	var m int
	clustertest.Eventually(t, 60*time.Second, func() error {
		if m = p.returnMemory(t); m > rss*11/10 {
			return fmt.Errorf("RSS %.1f MiB after %d cycles, %.1f MiB before: more than 10%% above", float64(m)/1024, cycles, float64(rss)/1024)
		}
		return nil
	})
	t.Logf("after %d cycles: %d goroutines in the proxy (%d before), RSS %.1f MiB (%.1f before); no connection to any of the %d removed nodes",
		cycles, g, goroutines, float64(m)/1024, float64(rss)/1024, len(removed))
}
