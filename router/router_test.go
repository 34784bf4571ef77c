package router_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// rtCmd encodes args as the RESP array a client sends.
func rtCmd(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func rtBulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

func rtSlot(key string) int { return int(slotmap.Slot([]byte(key))) }

// rtRecorder is a Completer that hands completed requests over a channel.
// The channel is buffered so that Complete never blocks a router goroutine.
type rtRecorder chan *router.Request

func (r rtRecorder) Complete(req *router.Request) { r <- req }

// rtCall is one request in flight.
type rtCall struct {
	req  *router.Request
	done rtRecorder
	sent time.Time
}

func rtSend(rt *router.Router, raw []byte, slot int, readOnly bool) *rtCall {
	return rtSendAs(rt, 0, raw, slot, readOnly)
}

// rtSendAs is rtSend for the client with the given affinity.
func rtSendAs(rt *router.Router, affinity uint32, raw []byte, slot int, readOnly bool) *rtCall {
	c := &rtCall{done: make(rtRecorder, 1), sent: time.Now()}
	c.req = &router.Request{Raw: raw, Slot: slot, ReadOnly: readOnly, Affinity: affinity, Done: c.done}
	rt.Do(c.req, nil)
	return c
}

// wait returns the reply (a copy) and how long after sending it came, or
// fails the test after timeout.
func (c *rtCall) wait(t *testing.T, timeout time.Duration) (string, time.Duration) {
	t.Helper()
	select {
	case r := <-c.done:
		if r != c.req {
			t.Fatalf("completed %p, want %p", r, c.req)
		}
		return string(r.Reply), time.Since(c.sent)
	case <-time.After(timeout):
		t.Fatalf("request %q: no reply within %v", c.req.Raw, timeout)
		return "", 0
	}
}

// completed reports whether the request has completed, without waiting.
func (c *rtCall) completed() bool { return len(c.done) > 0 }

func rtDo(t *testing.T, rt *router.Router, readOnly bool, args ...string) string {
	t.Helper()
	slot := router.NoSlot
	if len(args) > 1 {
		slot = rtSlot(args[1])
	}
	reply, _ := rtSend(rt, rtCmd(args...), slot, readOnly).wait(t, 10*time.Second)
	return reply
}

// rtEnv is a cluster with a slot map running against it.
type rtEnv struct {
	c     *clustertest.Cluster
	slots *slotmap.Map
}

func rtStart(t *testing.T) *rtEnv {
	// A long node timeout: a master stopped for a second or killed must
	// not be failed over or make the cluster refuse the other masters'
	// slots while the tests look at the router alone.
	c := clustertest.New(t, clustertest.Options{Masters: 3, NodeTimeout: 20 * time.Second})
	return &rtEnv{c: c, slots: rtSlots(t, slotmap.Options{Seeds: c.Seeds()[:1], RefreshInterval: time.Second})}
}

// rtSlots runs a slot map made with opts until the test ends, and waits
// for its first table.
func rtSlots(t *testing.T, opts slotmap.Options) *slotmap.Map {
	slots, err := slotmap.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		slots.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-slots.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("no slot table within 30s")
	}
	return slots
}

func (e *rtEnv) router(t *testing.T, opts router.Options) *router.Router {
	if opts.ConnsPerNode == 0 {
		opts.ConnsPerNode = 2 // a client's order must hold across several
	}
	rt := router.New(e.slots, opts)
	t.Cleanup(rt.Close)
	return rt
}

// masterOf asks the cluster (not the slot map under test) which master
// serves key, and returns its address and index in Nodes.
func (e *rtEnv) masterOf(t *testing.T, key string) (string, int) {
	t.Helper()
	ctx := context.Background()
	masters, err := e.c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := e.c.Client(masters[0]).ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	slot := int64(rtSlot(key))
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role != "master" {
					continue
				}
				addr := n.IP + ":" + strconv.FormatInt(n.Port, 10)
				for i, node := range e.c.Nodes {
					if node.Addr == addr {
						return addr, i
					}
				}
			}
		}
	}
	t.Fatalf("no master serves %q (slot %d)", key, slot)
	return "", 0
}

// keysOn returns n keys that the master at addr serves, with prefix.
func (e *rtEnv) keysOn(t *testing.T, addr, prefix string, n int) []string {
	t.Helper()
	var keys []string
	for i := 0; len(keys) < n && i < 100000; i++ {
		k := prefix + strconv.Itoa(i)
		if a, _ := e.masterOf(t, k); a == addr {
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("found %d keys on %s, want %d", len(keys), addr, n)
	}
	return keys
}

// TestRouter runs against one 3-master cluster; the subtests run in order,
// the last one kills a master.
func TestRouter(t *testing.T) {
	e := rtStart(t)
	masters, err := e.c.MasterAddrs(context.Background())
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v, %v", masters, err)
	}
	t.Run("RoutedBySlot", func(t *testing.T) { testRoutedBySlot(t, e, masters) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, e) })
	t.Run("Keyless", func(t *testing.T) { testKeyless(t, e) })
	t.Run("ReadTimeout", func(t *testing.T) { testReadTimeout(t, e, masters) })
	t.Run("Close", func(t *testing.T) { testClose(t, e, masters) })
	t.Run("DeadMaster", func(t *testing.T) { testDeadMaster(t, e) })
}

// testRoutedBySlot: a SET lands on the master owning the key's slot, as
// the master itself confirms, and GET reads it back.
func testRoutedBySlot(t *testing.T, e *rtEnv, masters []string) {
	rt := e.router(t, router.Options{})
	ctx := context.Background()
	owners := map[string]bool{}
	for i := range 30 {
		key := "routed:" + strconv.Itoa(i)
		val := "value-" + strconv.Itoa(i)
		if got := rtDo(t, rt, false, "SET", key, val); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", key, got)
		}
		if got := rtDo(t, rt, true, "GET", key); got != rtBulk(val) {
			t.Fatalf("GET %s: %q, want %q", key, got, rtBulk(val))
		}
		// Exactly one master holds it; the others redirect.
		holder := ""
		for _, m := range masters {
			v, err := e.c.Client(m).Get(ctx, key).Result()
			switch {
			case err == nil && v == val:
				if holder != "" {
					t.Fatalf("%s is on both %s and %s", key, holder, m)
				}
				holder = m
			case err != nil && strings.HasPrefix(err.Error(), "MOVED "):
			default:
				t.Fatalf("GET %s on %s: %q, %v", key, m, v, err)
			}
		}
		if want, _ := e.masterOf(t, key); holder != want {
			t.Fatalf("%s is on %s, its slot %d is served by %s", key, holder, rtSlot(key), want)
		}
		owners[holder] = true
	}
	if len(owners) != 3 {
		t.Errorf("30 keys landed on %d masters, want all 3", len(owners))
	}
}

// testConcurrent: many goroutines, each with its own Request, share the
// router's connections; every reply is the one for its own request.
func testConcurrent(t *testing.T, e *rtEnv) {
	rt := e.router(t, router.Options{})
	const workers, perWorker = 50, 200
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(rtRecorder, 1)
			req := &router.Request{Done: done}
			do := func(raw []byte, slot int, readOnly bool) (string, bool) {
				req.Raw, req.Slot, req.ReadOnly = raw, slot, readOnly
				rt.Do(req, nil)
				select {
				case r := <-done:
					return string(r.Reply), r == req
				case <-time.After(10 * time.Second):
					return "timeout", false
				}
			}
			for i := range perWorker / 2 {
				key := fmt.Sprintf("conc:%d:%d", w, i)
				val := fmt.Sprintf("val:%d:%d:%s", w, i, strings.Repeat("x", i%40))
				if got, ok := do(rtCmd("SET", key, val), rtSlot(key), false); !ok || got != "+OK\r\n" {
					errs <- fmt.Sprintf("worker %d: SET %s: %q", w, key, got)
					return
				}
				if got, ok := do(rtCmd("GET", key), rtSlot(key), true); !ok || got != rtBulk(val) {
					errs <- fmt.Sprintf("worker %d: GET %s: %q, want %q", w, key, got, rtBulk(val))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testKeyless(t *testing.T, e *rtEnv) {
	rt := e.router(t, router.Options{})
	for i := range 6 { // round robin: every master answers some
		if got := rtDo(t, rt, true, "PING"); got != "+PONG\r\n" {
			t.Fatalf("PING %d: %q", i, got)
		}
	}
	if got, _ := rtSend(rt, rtCmd("ECHO", "hi"), router.NoSlot, true).wait(t, 10*time.Second); got != rtBulk("hi") {
		t.Fatalf("ECHO: %q", got)
	}
}

// testReadTimeout: a master that hangs (SIGSTOP) costs only the requests
// routed to it, bounded by the read timeout; a write that may have run is
// failed, never retried; a read is retried and succeeds once the master is
// back.
func testReadTimeout(t *testing.T, e *rtEnv, masters []string) {
	const readTimeout = 300 * time.Millisecond
	rt := e.router(t, router.Options{ReadTimeout: readTimeout, RetryTimeout: 5 * time.Second})
	ctx := context.Background()

	key, counter, plain := "{hang}key", "{hang}counter", "{hang}plain"
	addr, idx := e.masterOf(t, key)
	node := e.c.Nodes[idx]
	direct := e.c.Client(addr)
	if err := direct.Set(ctx, key, "still here", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.Del(ctx, counter, plain).Err(); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, m := range masters {
		if m != addr {
			others = append(others, e.keysOn(t, m, "other:"+m+":", 5)...)
		}
	}
	// Connections to every master are up before the hang.
	for _, k := range append([]string{key}, others...) {
		if got := rtDo(t, rt, true, "GET", k); strings.HasPrefix(got, "-") {
			t.Fatalf("GET %s: %q", k, got)
		}
	}

	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := true
	cont := func() {
		if stopped {
			stopped = false
			if err := node.Cont(); err != nil {
				t.Error(err)
			}
		}
	}
	defer cont()

	incr := rtSend(rt, rtCmd("INCR", counter), rtSlot(counter), false)
	get := rtSend(rt, rtCmd("GET", key), rtSlot(key), true)
	// A plain SET of another client: its second run cannot be told from
	// its first, so it is sent again rather than failed.
	set := &rtCall{done: make(rtRecorder, 1), sent: time.Now()}
	set.req = &router.Request{Raw: rtCmd("SET", plain, "sent again"), Slot: rtSlot(plain), Idempotent: true, Affinity: 1, Done: set.done}
	rt.Do(set.req, nil)

	// The other masters answer at once meanwhile.
	for round := range 3 {
		for _, k := range others {
			reply, took := rtSend(rt, rtCmd("GET", k), rtSlot(k), true).wait(t, 5*time.Second)
			if strings.HasPrefix(reply, "-") {
				t.Errorf("GET %s while %s hangs: %q", k, addr, reply)
			}
			if took > readTimeout/2 {
				t.Errorf("GET %s (round %d) took %v while %s hangs: other masters must not wait on it", k, round, took, addr)
			}
		}
	}

	reply, took := incr.wait(t, 5*time.Second)
	if !strings.HasPrefix(reply, "-ERR slotproxy: backend connection lost") {
		t.Errorf("INCR on a hung master: %q, want -ERR slotproxy: backend connection lost...", reply)
	}
	if took < readTimeout*8/10 || took > readTimeout+time.Second {
		t.Errorf("INCR failed after %v, want about the read timeout (%v)", took, readTimeout)
	}
	if get.completed() {
		t.Fatalf("GET completed while the master is still stopped: %q", (<-get.done).Reply)
	}
	if set.completed() {
		t.Fatalf("SET completed while the master is still stopped: %q", (<-set.done).Reply)
	}
	cont()

	reply, took = get.wait(t, 6*time.Second)
	if reply != rtBulk("still here") {
		t.Errorf("GET after the master came back: %q (after %v), want it retried and answered", reply, took)
	}
	if reply, took := set.wait(t, 6*time.Second); reply != "+OK\r\n" {
		t.Errorf("plain SET after the master came back: %q (after %v), want it sent again and answered", reply, took)
	}
	if got, err := direct.Get(ctx, plain).Result(); got != "sent again" {
		t.Errorf("GET %s: %q, %v", plain, got, err)
	}
	// The INCR reached the master before the proxy gave up on the
	// connection: it ran exactly once, and was not sent again.
	clustertest.Eventually(t, 5*time.Second, func() error {
		n, err := direct.Get(ctx, counter).Int()
		if err == nil && n > 1 {
			t.Fatalf("counter = %d; the INCR ran more than once", n)
		}
		if err == nil && n != 1 {
			err = fmt.Errorf("counter = %d, want exactly 1", n)
		}
		return err
	})
	// And the router serves that master again.
	if got := rtDo(t, rt, true, "GET", key); got != rtBulk("still here") {
		t.Errorf("GET after recovery: %q", got)
	}
}

// testClose: after Close every request completes with an error reply, and
// the router's goroutines are gone.
func testClose(t *testing.T, e *rtEnv, masters []string) {
	before := runtime.NumGoroutine()
	rt := router.New(e.slots, router.Options{})
	for _, m := range masters {
		for _, k := range e.keysOn(t, m, "close:", 2) {
			if got := rtDo(t, rt, true, "GET", k); strings.HasPrefix(got, "-") {
				t.Fatalf("GET %s: %q", k, got)
			}
		}
	}
	if got := rtDo(t, rt, true, "PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	during := runtime.NumGoroutine()
	rt.Close()
	rt.Close() // idempotent

	for _, args := range [][]string{{"GET", "close:0"}, {"SET", "close:1", "v"}, {"PING"}} {
		if got := rtDo(t, rt, args[0] != "SET", args...); !strings.HasPrefix(got, "-ERR") {
			t.Errorf("%s after Close: %q, want an error reply", args[0], got)
		}
	}

	const slack = 2 // unrelated runtime and test goroutines come and go
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before+slack {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutines: %d before New, %d in use, %d after Close:\n%s", before, during, n, buf)
		}
		return nil
	})
	t.Logf("goroutines: %d before New, %d in use, %d after Close", before, during, runtime.NumGoroutine())
}

// testDeadMaster: with no replica to take over, requests for a SIGKILLed
// master's slots fail with CLUSTERDOWN once the retry timeout is spent,
// instead of hanging.
func testDeadMaster(t *testing.T, e *rtEnv) {
	const retryTimeout = 2 * time.Second
	old := e.router(t, router.Options{RetryTimeout: retryTimeout})
	key := "{dead}key"
	addr, idx := e.masterOf(t, key)
	if got := rtDo(t, old, false, "SET", key, "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if err := e.c.Nodes[idx].Kill(); err != nil {
		t.Fatal(err)
	}
	fresh := e.router(t, router.Options{RetryTimeout: retryTimeout})
	type call struct {
		name string
		*rtCall
		// A write sent on a connection that was open before the kill may
		// be written before the router sees the connection die: it then
		// "may have run" and fails at once with that, by design. (The GET
		// and the SET come from different clients: a read written before
		// a write of its own client is not retried either.)
		mayBeLost bool
	}
	calls := []call{
		{"GET, router connected before the kill", rtSendAs(old, 1, rtCmd("GET", key), rtSlot(key), true), false},
		{"SET, router connected before the kill", rtSendAs(old, 2, rtCmd("SET", key, "w"), rtSlot(key), false), true},
		{"GET, new router", rtSend(fresh, rtCmd("GET", key), rtSlot(key), true), false},
		{"SET, new router", rtSend(fresh, rtCmd("SET", key, "w"), rtSlot(key), false), false},
	}
	for _, c := range calls {
		reply, took := c.wait(t, retryTimeout+time.Second)
		switch {
		case strings.HasPrefix(reply, "-CLUSTERDOWN"):
		case c.mayBeLost && strings.HasPrefix(reply, "-ERR slotproxy: backend connection lost"):
		default:
			t.Errorf("%s, to killed master %s: %q, want -CLUSTERDOWN...", c.name, addr, reply)
		}
		t.Logf("%s: failed after %v: %q", c.name, took.Round(time.Millisecond), strings.TrimSpace(reply))
	}
}
