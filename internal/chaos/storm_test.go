package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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

// TestMain runs the steady client's process when asked to (CHAOS_STEADY),
// and the tests otherwise.
func TestMain(m *testing.M) {
	if arg := os.Getenv("CHAOS_STEADY"); arg != "" {
		runSteady(arg)
		return
	}
	os.Exit(m.Run())
}

// steady is one client doing SET and GET of one key in a loop, on its own
// connection, in a process of its own (this test binary run again, see
// TestMain): in the test's process its goroutine would wait behind the
// storm's thousands, and its latency would be the test's, not the proxy's.
type steady struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}

	mu   sync.Mutex
	recs []steadyRec
	news chan struct{} // a record came
}

// steadyRec is one request: when it completed, how long it took, and the
// kind of its error ("" for none).
type steadyRec struct {
	at   time.Time
	lat  time.Duration
	kind string
}

func startSteady(t *testing.T, addr, key string) *steady {
	t.Helper()
	s := &steady{done: make(chan struct{}), news: make(chan struct{}, 1)}
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), "CHAOS_STEADY="+addr+" "+key)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var at, lat int64
			var kind string
			if n, _ := fmt.Sscan(sc.Text(), &at, &lat, &kind); n < 2 {
				continue
			}
			if kind == "-" {
				kind = ""
			}
			s.mu.Lock()
			s.recs = append(s.recs, steadyRec{time.Unix(0, at), time.Duration(lat), kind})
			s.mu.Unlock()
			select {
			case s.news <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// runSteady is the steady client's process: it works until its stdin
// closes, writing a line per request.
func runSteady(arg string) {
	addr, key, _ := strings.Cut(arg, " ")
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1, DisableIdentity: true, ReadTimeout: 30 * time.Second})
	w := bufio.NewWriter(os.Stdout)
	ctx := context.Background()
	for n := 0; ; n++ {
		start := time.Now()
		var err error
		if n%2 == 0 {
			err = rdb.Set(ctx, key, n, 0).Err()
		} else if err = rdb.Get(ctx, key).Err(); err == redis.Nil {
			err = nil
		}
		now := time.Now()
		kind := "-"
		if err != nil {
			kind = errorKind(err)
		}
		fmt.Fprintln(w, now.UnixNano(), int64(now.Sub(start)), kind)
		if n%64 == 0 || err != nil {
			w.Flush()
		}
	}
}

// waitFor waits, at most within, until cond holds of the records so
// far, and reports whether it does.
func (s *steady) waitFor(within time.Duration, cond func([]steadyRec) bool) bool {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond(s.recs)
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-s.news:
		case <-timer.C:
			return false
		}
	}
}

// warm waits until the steady client has made n requests: the "before"
// of its latency.
func (s *steady) warm(t *testing.T, n int) {
	t.Helper()
	if !s.waitFor(10*time.Second, func(recs []steadyRec) bool { return len(recs) >= n }) {
		t.Fatalf("the steady client made fewer than %d requests in 10s", n)
	}
}

// mark returns a point in time to give window.
func (s *steady) mark() time.Time { return time.Now() }

// window returns the number of requests completed between two marks, their
// p99 and largest latency, and their errors by kind. The child's lines
// may lag: it waits until one completed after to.
func (s *steady) window(from, to time.Time) (n int, p99, worst time.Duration, errs map[string]int) {
	s.waitFor(10*time.Second, func(recs []steadyRec) bool {
		return len(recs) > 0 && !recs[len(recs)-1].at.Before(to)
	})
	s.mu.Lock()
	var lat []time.Duration
	errs = map[string]int{}
	for _, r := range s.recs {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		lat = append(lat, r.lat)
		if r.kind != "" {
			errs[r.kind]++
		}
	}
	s.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		p99, worst = lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return len(lat), p99, worst, errs
}

func (s *steady) close() {
	if s.in != nil {
		s.in.Close()
		s.in = nil
		<-s.done
		s.cmd.Wait()
	}
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
		st := startSteady(t, p.addr, keyOn(t, c, masters[0], "steady"))
		st.warm(t, 1000)
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
		_, before, _, _ := st.window(time.Time{}, m0)
		reqs, during, worst, errs := st.window(m0, m1)
		rows = append(rows, stormRow(fmt.Sprintf("%d connections opened, each PING once, held", n), rss0, rss1, cpu1-cpu0, reqs, before, during, worst, kindsOf(errs)))
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
		st := startSteady(t, p.addr, keyOn(t, c, masters[1], "steady"))
		st.warm(t, 1000)
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
		_, before, _, _ := st.window(time.Time{}, m0)
		reqs, during, worst, errs := st.window(m0, m1)
		rows = append(rows, stormRow(fmt.Sprintf("%d clients connect, PING and close at once, %d times", n, rounds), rss0, rss1, cpu1-cpu0, reqs, before, during, worst, kindsOf(errs)))
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
		st := startSteady(t, p.addr, keyOn(t, c, masters[0], "steady"))
		victim := startSteady(t, p.addr, keyOn(t, c, masters[2], "victim"))
		st.warm(t, 1000)
		victim.warm(t, 1000)
		m0, v0, rss0, cpu0 := st.mark(), victim.mark(), p.rssKiB(t), p.cpu(t)
		if err := hung.Stop(); err != nil {
			t.Fatal(err)
		}
		// Stopped until a request the victim made after the stop has got
		// its error: the proxy gave up on the node, as it must within
		// read_timeout + retry_timeout + dial_timeout.
		stopped := time.Now()
		gaveUp := victim.waitFor(30*time.Second, func(recs []steadyRec) bool {
			for i := len(recs) - 1; i >= 0 && recs[i].at.After(stopped); i-- {
				if recs[i].kind != "" && !recs[i].at.Add(-recs[i].lat).Before(stopped) {
					return true
				}
			}
			return false
		})
		m1, v1, rss1, cpu1 := st.mark(), victim.mark(), p.rssKiB(t), p.cpu(t)
		if err := hung.Cont(); err != nil {
			t.Fatal(err)
		}
		_, before, _, _ := st.window(time.Time{}, m0)
		reqs, during, worst, errs := st.window(m0, m1)
		// The stopped master's client: requests completed during the stop
		// or just after it, the one waiting at SIGCONT included.
		vreqs, _, vworst, verrs := victim.window(v0, v1.Add(time.Second))
		rows = append(rows, stormRow("a master SIGSTOPped, no failover, until its clients get errors: a client of the other masters", rss0, rss1, cpu1-cpu0, reqs, before, during, worst, kindsOf(errs)))
		rows = append(rows, fmt.Sprintf("| the same: a client of the stopped master | | | %d | longest request %.1f s | %s |", vreqs, vworst.Seconds(), kindsOf(verrs)))
		t.Log(rows[len(rows)-2])
		t.Log(rows[len(rows)-1])
		if len(errs) > 0 {
			t.Errorf("the client of the other masters saw errors: %s", kindsOf(errs))
		}
		if !gaveUp || len(verrs) == 0 {
			t.Errorf("no request the client of the stopped master made after the stop got an error within 30s")
		}
		// A read caught in flight waits read_timeout, is retried for
		// retry_timeout, and the dial in progress then may take its
		// dial_timeout (1s) to fail.
		if limit := readTimeout + retryTimeout + time.Second + 500*time.Millisecond; vworst > limit {
			t.Errorf("a request to the stopped master took %v, want at most read_timeout + retry_timeout + dial_timeout = %v", vworst, limit-500*time.Millisecond)
		}
		// Once the master answers again, so does the proxy for its keys.
		from := victim.mark()
		if !victim.waitFor(15*time.Second, func(recs []steadyRec) bool {
			ok := 0
			for i := len(recs) - 1; i >= 0 && recs[i].at.After(from) && recs[i].kind == ""; i-- {
				ok++
			}
			return ok >= 100
		}) {
			t.Errorf("the stopped master's client did not make 100 successful requests in a row within 15s of SIGCONT")
		}
	})
}
