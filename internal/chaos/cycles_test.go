package chaos

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestChaosNodeCycles adds a master, moves slots to it and back and
// removes it, again and again, under load through the proxy: clients see
// no error, and afterwards the proxy holds connections only to the
// cluster's nodes, and as many goroutines and as much heap as before
// (20 cycles in make chaos, 2 otherwise).
func TestChaosNodeCycles(t *testing.T) {
	cycles := 2
	if os.Getenv("SLOTPROXY_CHAOS") == "all" {
		cycles = 20
	}
	ctx := context.Background()
	c := newCluster(t)
	p := startProxy(t, c)
	check := directClient(c)
	defer check.Close()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The baseline: the proxy after a load, with every client gone.
	warm := startLoad("proxy", p.client)
	time.Sleep(500 * time.Millisecond)
	if _, err := warm.finish(ctx, "warm-up", check); err != nil {
		t.Fatal(err)
	}
	goroutines, heap := settle()

	l := startLoad("proxy", p.client)
	began := time.Now()
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

	nodes := c.Seeds()
	slices.Sort(nodes)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if got := p.router.Nodes(); !subset(got, nodes) {
			return fmt.Errorf("the router holds connections to %v; the cluster's nodes are %v", got, nodes)
		}
		g, h := settle()
		if g > goroutines+2 {
			return fmt.Errorf("%d goroutines after %d cycles, %d before", g, cycles, goroutines)
		}
		if float64(h) > 1.1*float64(heap) {
			return fmt.Errorf("heap in use %d KiB after %d cycles, %d KiB before", h>>10, cycles, heap>>10)
		}
		t.Logf("after %d cycles: %d goroutines (%d before), heap in use %d KiB (%d KiB before)", cycles, g, goroutines, h>>10, heap>>10)
		return nil
	})
}

// settle collects garbage and returns the goroutine count and the heap
// in use of the process: the proxy, its router and the test's idle
// clients.
func settle() (int, uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
