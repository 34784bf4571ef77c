package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/slotmap"
)

// steady is one client doing SET and GET of one key in a loop, on its own
// connection, recording each request's latency and error.
type steady struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs []string // "" for a success, by request
	stop chan struct{}
	done chan struct{}
}

func startSteady(addr, key string) *steady {
	s := &steady{stop: make(chan struct{}), done: make(chan struct{})}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1, DisableIdentity: true, ReadTimeout: 30 * time.Second})
	go func() {
		defer close(s.done)
		defer rdb.Close()
		ctx := context.Background()
		for n := 0; ; n++ {
			select {
			case <-s.stop:
				return
			default:
			}
			start := time.Now()
			var err error
			if n%2 == 0 {
				err = rdb.Set(ctx, key, n, 0).Err()
			} else if err = rdb.Get(ctx, key).Err(); err == redis.Nil {
				err = nil
			}
			msg := ""
			if err != nil {
				msg = errorKind(err)
			}
			s.mu.Lock()
			s.lat = append(s.lat, time.Since(start))
			s.errs = append(s.errs, msg)
			s.mu.Unlock()
		}
	}()
	return s
}

// mark returns how many requests have completed.
func (s *steady) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lat)
}

// window returns the p99 and the largest latency, and the errors by kind,
// of the requests completed between two marks.
func (s *steady) window(from, to int) (p99, worst time.Duration, errs map[string]int) {
	s.mu.Lock()
	lat := slices.Clone(s.lat[from:to])
	kinds := s.errs[from:to]
	errs = map[string]int{}
	for _, k := range kinds {
		if k != "" {
			errs[k]++
		}
	}
	s.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		p99, worst = lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return p99, worst, errs
}

func (s *steady) close() {
	close(s.stop)
	<-s.done
}

// keyOn returns a key whose slot the master at addr serves.
func keyOn(t *testing.T, c *clustertest.Cluster, addr, prefix string) string {
	t.Helper()
	ranges, err := c.Client(addr).ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100000; i++ {
		key := fmt.Sprintf("%s:%d", prefix, i)
		slot := int(slotmap.Slot([]byte(key)))
		for _, r := range ranges {
			if slot >= r.Start && slot <= r.End && r.Nodes[0].Addr == addr {
				return key
			}
		}
	}
	t.Fatalf("no key on %s", addr)
	return ""
}

// ping sends PING on nc and reads +PONG.
func ping(nc net.Conn, r *bufio.Reader) error {
	if _, err := nc.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func stormRow(name string, rss0, rss1 int, cpu time.Duration, steadyReqs int, p99Before, p99During, worst time.Duration, errs string) string {
	return fmt.Sprintf("| %s | %.1f → %.1f MiB | %.2f s | %d | %.2f / %.2f ms (max %.1f ms) | %s |",
		name, float64(rss0)/1024, float64(rss1)/1024, cpu.Seconds(), steadyReqs,
		float64(p99Before.Microseconds())/1000, float64(p99During.Microseconds())/1000, float64(worst.Microseconds())/1000, errs)
}

const stormHeader = "| storm | proxy RSS before → after | proxy CPU during | steady client's requests during | its p99 before / during | its errors |\n|---|---:|---:|---:|---:|---|"

func kindsOf(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// TestChaosStorms runs the slotproxy binary through connection storms
// while one steady client works: 10,000 connections held open, a
// reconnect storm of 2,000 clients at once (3 times), and a master that
// accepts connections but answers nothing (SIGSTOP, with a node timeout
// too long for a failover). Each prints the proxy's RSS and CPU and the
// steady client's p99; the steady client must see no error, and the
// proxy must answer every storm client.
func TestChaosStorms(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3, Password: password, NodeTimeout: 60 * time.Second})
	p := startBinary(t, c)
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	defer func() {
		if len(rows) > 0 {
			fmt.Printf("\n%s\n%s\n\n", stormHeader, strings.Join(rows, "\n"))
		}
	}()

	t.Run("10000 connections", func(t *testing.T) {
		const n = 10000
		// Go raises the soft descriptor limit to the hard one in every
		// program, this test and slotproxy alike: the hard one must allow
		// the connections plus some.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		if lim.Cur < n+1000 {
			t.Fatalf("RLIMIT_NOFILE is %d; this test needs %d descriptors in each process (raise the hard limit: ulimit -Hn)", lim.Cur, n+1000)
		}
		st := startSteady(p.addr, keyOn(t, c, masters[0], "steady"))
		defer st.close()
		time.Sleep(time.Second)
		m0, rss0, cpu0 := st.mark(), p.rssKiB(t), p.cpu(t)
		conns := make([]net.Conn, n)
		defer func() {
			for _, nc := range conns {
				if nc != nil {
					nc.Close()
				}
			}
		}()
		var failed atomic.Int32
		var first atomic.Value
		var wg sync.WaitGroup
		for w := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 50 {
					nc, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
					if err == nil {
						conns[i] = nc
						nc.SetDeadline(time.Now().Add(30 * time.Second))
						err = ping(nc, bufio.NewReaderSize(nc, 16))
					}
					if err != nil {
						failed.Add(1)
						first.CompareAndSwap(nil, err.Error())
					}
				}
			}()
		}
		wg.Wait()
		m1, rss1, cpu1 := st.mark(), p.rssKiB(t), p.cpu(t)
		before, _, _ := st.window(0, m0)
		during, worst, errs := st.window(m0, m1)
		rows = append(rows, stormRow(fmt.Sprintf("%d connections opened, each PING once, held", n), rss0, rss1, cpu1-cpu0, m1-m0, before, during, worst, kindsOf(errs)))
		t.Log(rows[len(rows)-1])
		if f := failed.Load(); f > 0 {
			t.Errorf("%d of %d connections failed; first: %v", f, n, first.Load())
		}
		if len(errs) > 0 {
			t.Errorf("the steady client saw errors: %s", kindsOf(errs))
		}
	})

	t.Run("reconnect storm", func(t *testing.T) {
		const n, rounds = 2000, 3
		st := startSteady(p.addr, keyOn(t, c, masters[1], "steady"))
		defer st.close()
		time.Sleep(time.Second)
		m0, rss0, cpu0 := st.mark(), p.rssKiB(t), p.cpu(t)
		var failed atomic.Int32
		var first atomic.Value
		for range rounds {
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					nc, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
					if err == nil {
						nc.SetDeadline(time.Now().Add(30 * time.Second))
						err = ping(nc, bufio.NewReaderSize(nc, 16))
						nc.Close()
					}
					if err != nil {
						failed.Add(1)
						first.CompareAndSwap(nil, err.Error())
					}
				}()
			}
			close(start)
			wg.Wait()
		}
		m1, rss1, cpu1 := st.mark(), p.rssKiB(t), p.cpu(t)
		before, _, _ := st.window(0, m0)
		during, worst, errs := st.window(m0, m1)
		rows = append(rows, stormRow(fmt.Sprintf("%d clients connect, PING and close at once, %d times", n, rounds), rss0, rss1, cpu1-cpu0, m1-m0, before, during, worst, kindsOf(errs)))
		t.Log(rows[len(rows)-1])
		if f := failed.Load(); f > 0 {
			t.Errorf("%d of %d connections failed; first: %v", f, n*rounds, first.Load())
		}
		if len(errs) > 0 {
			t.Errorf("the steady client saw errors: %s", kindsOf(errs))
		}
	})

	t.Run("black-holed master", func(t *testing.T) {
		var hung *clustertest.Node
		for _, nd := range c.Nodes {
			if nd.Addr == masters[2] {
				hung = nd
			}
		}
		st := startSteady(p.addr, keyOn(t, c, masters[0], "steady"))
		defer st.close()
		victim := startSteady(p.addr, keyOn(t, c, masters[2], "victim"))
		time.Sleep(time.Second)
		m0, v0, rss0, cpu0 := st.mark(), victim.mark(), p.rssKiB(t), p.cpu(t)
		if err := hung.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Second)
		m1, v1, rss1, cpu1 := st.mark(), victim.mark(), p.rssKiB(t), p.cpu(t)
		if err := hung.Cont(); err != nil {
			t.Fatal(err)
		}
		before, _, _ := st.window(0, m0)
		during, worst, errs := st.window(m0, m1)
		_, vworst, verrs := victim.window(v0, v1)
		rows = append(rows, stormRow("a master SIGSTOPped for 8 s, no failover: a client of the other masters", rss0, rss1, cpu1-cpu0, m1-m0, before, during, worst, kindsOf(errs)))
		rows = append(rows, fmt.Sprintf("| the same: a client of the stopped master | | | %d | longest request %.1f s | %s |", v1-v0, vworst.Seconds(), kindsOf(verrs)))
		t.Log(rows[len(rows)-2])
		t.Log(rows[len(rows)-1])
		if len(errs) > 0 {
			t.Errorf("the client of the other masters saw errors: %s", kindsOf(errs))
		}
		if len(verrs) == 0 {
			t.Errorf("the client of the stopped master saw no error in 8 s")
		}
		if limit := retryTimeout + readTimeout + time.Second; vworst > limit {
			t.Errorf("a request to the stopped master took %v, want at most %v", vworst, limit)
		}
		// Once the master answers again, so does the proxy for its keys.
		clustertest.Eventually(t, 15*time.Second, func() error {
			from := victim.mark()
			time.Sleep(200 * time.Millisecond)
			if _, _, errs := victim.window(from, victim.mark()); len(errs) > 0 || victim.mark() == from {
				return fmt.Errorf("the stopped master's client still fails: %s", kindsOf(errs))
			}
			return nil
		})
		victim.close()
	})
}
