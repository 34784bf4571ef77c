package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/proxy"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// The proxy runs with slotproxy's defaults (proxy.yaml), which the
// figures are about.
const (
	refreshInterval = 10 * time.Second
	readTimeout     = 3 * time.Second
	retryTimeout    = 5 * time.Second
	nodeTimeout     = 2 * time.Second
	password        = "chaos-secret"
)

type testProxy struct {
	addr   string
	router *router.Router
}

// startProxy serves slotproxy in front of c on a free loopback port until
// the test ends.
func startProxy(t *testing.T, c *clustertest.Cluster) *testProxy {
	t.Helper()
	slots, err := slotmap.New(slotmap.Options{Seeds: c.Seeds(), Password: password, RefreshInterval: refreshInterval})
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(slots, router.Options{Password: password, ReadTimeout: readTimeout, RetryTimeout: retryTimeout})
	srv := proxy.New(rt, proxy.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		slots.Run(ctx)
	}()
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		rt.Close()
		cancel()
		<-done
	})
	wait, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	select {
	case <-slots.Ready():
	case <-wait.Done():
		t.Fatal("the proxy found no slot table within 30s")
	}
	if err := srv.LearnCommands(wait); err != nil {
		t.Fatal(err)
	}
	return &testProxy{addr: ln.Addr().String(), router: rt}
}

// proxyClient is a plain client of the proxy, one connection, no retries
// of its own: a legacy application's connection.
func (p *testProxy) client() redis.UniversalClient {
	return redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 1, Protocol: 2, DisableIdentity: true})
}

// directClient is a cluster-aware client straight at the nodes, with
// go-redis's defaults, as an application without the proxy would have it.
func directClient(c *clustertest.Cluster) redis.UniversalClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Password: password, PoolSize: 1, DisableIdentity: true})
}
