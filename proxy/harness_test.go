package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// testProxy is a slot map, a router and a server wired in front of a real
// cluster, serving on a free loopback port, stopped by t.Cleanup.
type testProxy struct {
	Addr   string
	Server *Server
	Router *router.Router
	Slots  *slotmap.Map
}

// startProxy starts a proxy in front of c. The cluster password, when c has
// one, is used towards the nodes; opts and ropts are passed on, so a test
// may set client passwords, timeouts and the like.
func startProxy(t testing.TB, c *clustertest.Cluster, opts Options, ropts router.Options) *testProxy {
	t.Helper()
	return startProxyWith(t, c, opts, ropts, time.Second)
}

// startProxyWith is startProxy with the slot map refreshed every refresh.
func startProxyWith(t testing.TB, c *clustertest.Cluster, opts Options, ropts router.Options, refresh time.Duration) *testProxy {
	t.Helper()
	slots, err := slotmap.New(slotmap.Options{
		Seeds:           c.Seeds()[:1],
		Password:        c.Password(),
		RefreshInterval: refresh,
	})
	if err != nil {
		t.Fatal(err)
	}
	ropts.Password = c.Password()
	if ropts.ConnsPerNode == 0 {
		// Two connections per master, so that the tests see a client's
		// commands kept in order while other clients use the other one.
		ropts.ConnsPerNode = 2
	}
	p := serveProxy(t, slots, opts, ropts)
	p.waitReady(t)
	return p
}

// waitReady waits up to 30s for the proxy's first slot table, then has it
// learn the cluster's command table.
func (p *testProxy) waitReady(t testing.TB) {
	t.Helper()
	wait, cancelWait := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWait()
	select {
	case <-p.Slots.Ready():
	case <-wait.Done():
		t.Fatal("the proxy found no slot table within 30s")
	}
	if err := p.Server.LearnCommands(wait); err != nil {
		t.Fatalf("LearnCommands: %v", err)
	}
}

// serveProxy wires a router and a server to slots and
// serves on a free loopback port until t's cleanup. It does not wait for a
// slot table.
func serveProxy(t testing.TB, slots *slotmap.Map, opts Options, ropts router.Options) *testProxy {
	t.Helper()
	rt := router.New(slots, ropts)
	srv := New(rt, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	slotsDone := make(chan struct{})
	go func() {
		defer close(slotsDone)
		slots.Run(ctx)
	}()
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		rt.Close()
		cancel()
		<-slotsDone
	})
	return &testProxy{Addr: ln.Addr().String(), Server: srv, Router: rt, Slots: slots}
}

// client returns a plain, cluster-unaware go-redis client of the proxy
// that speaks RESP2, as the legacy clients the proxy serves do (go-redis
// would say HELLO 3 by default).
func (p *testProxy) client(t testing.TB, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: p.Addr, Password: password, MaxRetries: -1, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}
