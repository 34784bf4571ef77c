package proxy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// masterConns returns how many clients each master has connected, less
// the one asking.
func masterConns(t testing.TB, c *clustertest.Cluster, masters []string) []int {
	t.Helper()
	n := make([]int, len(masters))
	for i, m := range masters {
		info, err := c.Client(m).Info(context.Background(), "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		n[i] = infoInt(t, info, "connected_clients") - 1
	}
	return n
}

func infoInt(t testing.TB, info, field string) int {
	t.Helper()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in %q", field, info)
	return 0
}

// TestTransactionRate runs 1,000 transactions a second for 10 seconds,
// half of them with WATCH, from 50 clients, and checks that the masters
// never see more connections from the proxy than its shared ones plus the
// bound of dedicated ones, and that the dedicated ones are reused rather
// than dialed per transaction.
func TestTransactionRate(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	const bound = 8
	// No periodic refresh: its dials would count among the proxy's.
	p := startProxyWith(t, c, Options{}, router.Options{MaxDedicatedPerNode: bound}, time.Hour)
	ctx := context.Background()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stats := func() []int {
		n := make([]int, len(masters))
		for i, m := range masters {
			info, err := c.Client(m).Info(ctx, "stats").Result()
			if err != nil {
				t.Fatal(err)
			}
			n[i] = infoInt(t, info, "total_connections_received")
		}
		return n
	}
	dialedBefore := stats()

	const clients, rate, seconds = 50, 1000, 10
	work := make(chan int, rate)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done, aborted int
	var firstErr error
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2 + i%2, PoolSize: 1})
			defer rdb.Close()
			for n := range work {
				key := fmt.Sprintf("{tx%d}counter", n%30)
				var err error
				if n%2 == 0 {
					_, err = rdb.TxPipelined(ctx, func(pp redis.Pipeliner) error {
						pp.Incr(ctx, key)
						pp.Expire(ctx, key, time.Minute)
						return nil
					})
				} else {
					err = rdb.Watch(ctx, func(tx *redis.Tx) error {
						v, err := tx.Get(ctx, key).Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
							pp.Set(ctx, key, v+1, time.Minute)
							return nil
						})
						return err
					}, key)
				}
				mu.Lock()
				switch err {
				case nil:
					done++
				case redis.TxFailedErr:
					aborted++
				default:
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}

	peak := make([]int, len(masters))
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for i, n := range masterConns(t, c, masters) {
					peak[i] = max(peak[i], n)
				}
			}
		}
	}()
	start := time.Now()
	// 10 transactions every 10 ms: a 1 ms ticker drops ticks.
	tick := time.NewTicker(10 * time.Millisecond)
	for n := range rate * seconds {
		if n%10 == 0 {
			<-tick.C
		}
		work <- n
	}
	tick.Stop()
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if firstErr != nil {
		t.Fatalf("a transaction failed: %v", firstErr)
	}
	dialedAfter := stats()

	// Shared connections: 2 per master and protocol in the tests; the
	// hub has none here. The rest must be dedicated ones, within bound.
	limit := 2*2 + bound
	dialed := make([]int, len(masters))
	for i := range masters {
		dialed[i] = dialedAfter[i] - dialedBefore[i]
		if peak[i] > limit {
			t.Errorf("master %s: %d connections from the proxy at the peak, want at most %d", masters[i], peak[i], limit)
		}
		// Every transaction dialing its connection would make thousands.
		if dialed[i] > limit {
			t.Errorf("master %s: %d connections dialed for %d transactions, want at most %d", masters[i], dialed[i], rate*seconds, limit)
		}
	}
	t.Logf("%d transactions committed and %d aborted by WATCH in %v (%.0f/s); masters' peak connections from the proxy %v (limit %d), dialed during the run %v",
		done, aborted, elapsed.Round(time.Millisecond), float64(done+aborted)/elapsed.Seconds(), peak, limit, dialed)
	if done+aborted != rate*seconds {
		t.Errorf("%d transactions answered, want %d", done+aborted, rate*seconds)
	}
}

// BenchmarkGetSetWhileBlocked measures the GET/SET latency of 50 clients
// through the proxy with no other client, then with 500 clients blocked
// in BLPOP: blocked clients wait on dedicated connections and must not
// slow the shared ones. It reports the p50 and p99 of a request.
//
//	go test -run '^$' -bench GetSetWhileBlocked -benchtime 20000x ./proxy/
func BenchmarkGetSetWhileBlocked(b *testing.B) {
	c := clustertest.New(b, clustertest.Options{Masters: 3})
	const blocked = 500
	p := startProxy(b, c, Options{}, router.Options{MaxDedicatedPerNode: 256})
	masters, err := c.MasterAddrs(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unblocked", func(b *testing.B) { benchGetSet(b, p) })
	var conns []*respConn
	for i := range blocked {
		rc := dialRESP(b, p.Addr)
		rc.write(respCommand("BLPOP", "blocked:"+strconv.Itoa(i), "0"))
		conns = append(conns, rc)
	}
	admin := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer admin.Close()
	waitBlocked(b, admin, blocked)
	b.Run("500-blocked", func(b *testing.B) { benchGetSet(b, p) })
	conn := masterConns(b, c, masters)
	for i, n := range conn {
		if n > 2*2+256 {
			b.Errorf("master %s: %d connections from the proxy, over the bound", masters[i], n)
		}
	}
	b.Logf("masters' connections from the proxy with %d blocked clients: %v", blocked, conn)
	for _, rc := range conns {
		rc.nc.Close()
	}
}

// benchGetSet runs b.N GETs and SETs (alternating) from 50 clients, and
// reports the latency percentiles.
func benchGetSet(b *testing.B, p *testProxy) {
	const clients = 50
	ctx := context.Background()
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2, PoolSize: 1})
			defer rdb.Close()
			for n := i; n < b.N; n += clients {
				key := "bench:" + strconv.Itoa(n%1000)
				t0 := time.Now()
				var err error
				if n%2 == 0 {
					err = rdb.Set(ctx, key, "v", 0).Err()
				} else {
					err = rdb.Get(ctx, key).Err()
				}
				lat[i] = append(lat[i], time.Since(t0))
				if err != nil && err != redis.Nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
