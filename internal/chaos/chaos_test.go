package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// scenario is one thing done to the cluster while the load runs.
type scenario struct {
	name string
	// short scenarios run in make test too; the others only in make chaos
	// (SLOTPROXY_CHAOS=all).
	short bool
	// failure scenarios lose a master without its consent: clients may see
	// errors and Redis may lose the last acknowledged writes of the master
	// (its replication is asynchronous). A direct cluster client runs the
	// same load beside the proxy's; the proxy must lose no more writes and
	// stall no longer than the cluster's own failover allows. Every other
	// scenario is an operator's action, through which clients must see no
	// error and lose nothing.
	failure bool
	// do acts on the cluster; for a failure it returns how long the
	// cluster itself took to promote a replica.
	do func(ctx context.Context, c *clustertest.Cluster) (time.Duration, error)
}

var scenarios = []scenario{
	{name: "manual failover (CLUSTER FAILOVER on a replica)", short: true, do: failover},
	{name: "kill -9 a master, restart it (it returns as a replica)", short: true, failure: true, do: killMaster},
	{name: "SIGSTOP a master past the node timeout, then SIGCONT", failure: true, do: stopMaster},
	{name: "add-node, reshard 4000 slots to it and back, del-node", do: operator(addReshardRemove)},
	{name: "add-node, rebalance onto it", do: operator(rebalance)},
	{name: "add a replica, then del-node it", do: operator(addRemoveReplica)},
	{name: "rolling restart: fail each master over, restart it", do: operator(rollingRestart)},
}

var (
	tableMu sync.Mutex
	table   []string
)

// TestChaos runs each scenario on a fresh 3-master, 3-replica cluster with
// requirepass and masterauth and a 2 s node timeout, and prints a table of
// what the clients saw.
func TestChaos(t *testing.T) {
	all := os.Getenv("SLOTPROXY_CHAOS") == "all"
	t.Cleanup(func() {
		tableMu.Lock()
		defer tableMu.Unlock()
		if len(table) > 0 {
			fmt.Printf("\n%s\n%s\n\n", tableHeader, strings.Join(table, "\n"))
		}
	})
	ran := 0
	for _, sc := range scenarios {
		if !sc.short && !all {
			continue
		}
		ran++
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
	if ran == 0 {
		t.Fatal("no scenario ran")
	}
}

func newCluster(t *testing.T) *clustertest.Cluster {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1, Password: password, NodeTimeout: nodeTimeout})
	if err := c.WaitReplicas(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func runScenario(t *testing.T, sc scenario) {
	ctx := context.Background()
	c := newCluster(t)
	p := startProxy(t, c)
	check := directClient(c)
	defer check.Close()

	viaProxy := startLoad("proxy", p.client)
	var direct *load
	if sc.failure {
		direct = startLoad("direct", func() redis.UniversalClient { return directClient(c) })
	}
	// Every slot of the load is served before the scenario, and again
	// after it, so that what it leaves behind is counted.
	loads := []*load{viaProxy}
	if direct != nil {
		loads = append(loads, direct)
	}
	err := waitServed(loads, time.Now(), 10*time.Second)
	began := time.Now()
	var outage time.Duration
	if err == nil {
		outage, err = sc.do(ctx, c)
	}
	took := time.Since(began)
	if err == nil {
		err = waitServed(loads, time.Now(), 30*time.Second)
	}
	if err != nil {
		viaProxy.finish(ctx, sc.name, check)
		if direct != nil {
			direct.finish(ctx, sc.name, check)
		}
		t.Fatalf("the scenario failed after %v: %v", took, err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	rp, err := viaProxy.finish(ctx, sc.name, check)
	if err != nil {
		t.Fatal(err)
	}
	results := []result{rp}
	var rd result
	if direct != nil {
		if rd, err = direct.finish(ctx, sc.name, check); err != nil {
			t.Fatal(err)
		}
		results = append(results, rd)
	}
	for _, r := range results {
		t.Logf("%s (the scenario took %v)", r.row(), took.Round(time.Millisecond))
		tableMu.Lock()
		table = append(table, r.row())
		tableMu.Unlock()
	}

	if rp.requests == 0 || rp.acked == 0 {
		t.Fatalf("the load through the proxy made %d requests and %d acknowledged writes", rp.requests, rp.acked)
	}
	if rp.kinds["redirect"] > 0 {
		t.Errorf("%d MOVED/ASK replies reached clients of the proxy", rp.kinds["redirect"])
	}
	if !sc.failure {
		if rp.errors > 0 || rp.lost > 0 {
			t.Errorf("through the proxy: %d errors (%s) and %d lost writes, want none", rp.errors, rp.kindsString(), rp.lost)
		}
		return
	}
	// A replica takes over node-timeout plus gossip plus an election
	// delay after its master failed; no client can write its slots in
	// between. The proxy may add its discovery of the new master.
	t.Logf("the cluster promoted a replica %v after the failure (node timeout %v)", outage.Round(time.Millisecond), nodeTimeout)
	if limit := outage + time.Second; rp.stall >= limit {
		t.Errorf("longest stall through the proxy %v, want below the cluster's own %v + 1s", rp.stall, outage)
	}
	if limit := retryTimeout + time.Second; rp.max > limit {
		t.Errorf("a request through the proxy took %v, want at most backend.retry_timeout + 1s = %v", rp.max, limit)
	}
	// A write on its way to the failed master may or may not have run.
	// The proxy sends it again only when a second run cannot be told from
	// the first (the load's plain SETs are such writes); go-redis sends
	// every write again. The proxy's clients must not see more errors.
	if rp.errors > rd.errors {
		t.Errorf("the proxy's clients saw %d errors (%s), the direct client's %d (%s)", rp.errors, rp.kindsString(), rd.errors, rd.kindsString())
	}
	if rp.lost > rd.lost {
		t.Errorf("the proxy's clients lost %d acknowledged writes, the direct client's %d", rp.lost, rd.lost)
	}
}

// operator is an operator's action as a scenario: no outage to report.
func operator(f func(context.Context, *clustertest.Cluster) error) func(context.Context, *clustertest.Cluster) (time.Duration, error) {
	return func(ctx context.Context, c *clustertest.Cluster) (time.Duration, error) {
		return 0, f(ctx, c)
	}
}

// waitServed is load.waitServed for several loads at once.
func waitServed(loads []*load, since time.Time, within time.Duration) error {
	for _, l := range loads {
		if err := l.waitServed(since, within); err != nil {
			return err
		}
	}
	return nil
}

// masterAndReplica returns a master node and one of its replicas.
func masterAndReplica(ctx context.Context, c *clustertest.Cluster, i int) (*clustertest.Node, *clustertest.Node, error) {
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		return nil, nil, err
	}
	addr := masters[i%len(masters)]
	replicas, err := c.Replicas(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	if len(replicas) == 0 {
		return nil, nil, fmt.Errorf("master %s has no replica", addr)
	}
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n, replicas[0], nil
		}
	}
	return nil, nil, fmt.Errorf("master %s is not among the nodes", addr)
}

func failover(ctx context.Context, c *clustertest.Cluster) (time.Duration, error) {
	_, r, err := masterAndReplica(ctx, c, 0)
	if err != nil {
		return 0, err
	}
	return 0, c.Failover(ctx, r)
}

// waitPromoted waits until the replica has taken over its failed master.
func waitPromoted(ctx context.Context, c *clustertest.Cluster, r *clustertest.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		role, err := c.Client(r.Addr).Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s not promoted: %w", r.Addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loseMaster fails a master with fail, waits until its replica took
// over, then brings the old master back with recover (even when the
// takeover did not come). It returns how long the takeover took.
func loseMaster(ctx context.Context, c *clustertest.Cluster, fail, recover func(*clustertest.Node) error) (time.Duration, error) {
	m, r, err := masterAndReplica(ctx, c, 0)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	if err := fail(m); err != nil {
		return 0, err
	}
	err = waitPromoted(ctx, c, r)
	outage := time.Since(began)
	if rerr := recover(m); err == nil {
		err = rerr
	}
	return outage, err
}

func killMaster(ctx context.Context, c *clustertest.Cluster) (time.Duration, error) {
	return loseMaster(ctx, c, (*clustertest.Node).Kill, func(m *clustertest.Node) error {
		return c.Restart(ctx, m)
	})
}

func stopMaster(ctx context.Context, c *clustertest.Cluster) (time.Duration, error) {
	return loseMaster(ctx, c, (*clustertest.Node).Stop, func(m *clustertest.Node) error {
		if err := m.Cont(); err != nil {
			return err
		}
		return c.WaitHealthy(ctx)
	})
}

func addReshardRemove(ctx context.Context, c *clustertest.Cluster) error {
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		return err
	}
	n, err := c.AddMaster(ctx)
	if err != nil {
		return err
	}
	if err := c.Reshard(ctx, masters[0], n.Addr, 4000); err != nil {
		return err
	}
	if err := c.Reshard(ctx, n.Addr, masters[0], 4000); err != nil {
		return err
	}
	return c.RemoveNode(ctx, n)
}

func rebalance(ctx context.Context, c *clustertest.Cluster) error {
	if _, err := c.AddMaster(ctx); err != nil {
		return err
	}
	return c.Rebalance(ctx)
}

func addRemoveReplica(ctx context.Context, c *clustertest.Cluster) error {
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		return err
	}
	r, err := c.AddReplica(ctx, masters[0])
	if err != nil {
		return err
	}
	return c.RemoveNode(ctx, r)
}

func rollingRestart(ctx context.Context, c *clustertest.Cluster) error {
	for i := range 3 {
		m, r, err := masterAndReplica(ctx, c, i)
		if err != nil {
			return err
		}
		if err := c.Failover(ctx, r); err != nil {
			return err
		}
		if err := m.Term(); err != nil {
			return err
		}
		if err := c.Restart(ctx, m); err != nil {
			return err
		}
	}
	return nil
}
