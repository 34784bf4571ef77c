package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// rawConn is a client that speaks RESP over TCP by hand, so that tests
// see the exact bytes a server sends.
type rawConn struct {
	t   testing.TB
	nc  net.Conn
	buf []byte
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) send(args ...string) {
	c.t.Helper()
	b := appendArrayHeader(nil, len(args))
	for _, a := range args {
		b = appendBulkString(b, a)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write %q: %v", args, err)
	}
}

// next returns the next whole frame, or an error once timeout passed
// (bytes read so far are kept for the next call).
func (c *rawConn) next(timeout time.Duration) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var chunk [64 << 10]byte
	for {
		if n, err := router.ScanReply(c.buf); err != nil {
			return nil, err
		} else if n > 0 {
			f := append([]byte(nil), c.buf[:n]...)
			c.buf = c.buf[n:]
			return f, nil
		}
		n, err := c.nc.Read(chunk[:])
		c.buf = append(c.buf, chunk[:n]...)
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// frame is next that fails the test on a timeout.
func (c *rawConn) frame() []byte {
	c.t.Helper()
	f, err := c.next(10 * time.Second)
	if err != nil {
		c.t.Fatalf("reading from %s: %v", c.nc.RemoteAddr(), err)
	}
	return f
}

// TestPubSubRepliesMatchRedis sends the same Pub/Sub session, in RESP2
// then RESP3, to a standalone redis-server and to the proxy in front of a
// cluster, and compares every frame byte for byte: confirmations and
// their counts, messages of every kind, PING and a refused command in
// subscribed mode, UNSUBSCRIBE without arguments, with and without
// subscriptions left.
func TestPubSubRepliesMatchRedis(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	ref := clustertest.Standalone(t, "")

	type step struct {
		pub  bool // sent on the publisher's connection; n frames read on the subscriber's
		args []string
		n    int
	}
	steps := []step{
		{false, []string{"SUBSCRIBE", "a", "b"}, 2},
		{false, []string{"SUBSCRIBE", "a"}, 1},
		{false, []string{"PSUBSCRIBE", "p*"}, 1},
		{false, []string{"SSUBSCRIBE", "s1"}, 1},
		{true, []string{"PUBLISH", "a", "hello"}, 1},
		{true, []string{"PUBLISH", "pq", "x"}, 1},
		{true, []string{"SPUBLISH", "s1", "y"}, 1},
		{false, []string{"PING"}, 1},
		{false, []string{"PING", "hi"}, 1},
		{false, []string{"PING", "a", "b"}, 1},
		{false, []string{"GET", "k"}, 1},
		{false, []string{"PUBSUB", "NUMSUB", "a"}, 1},
		{false, []string{"UNSUBSCRIBE", "a"}, 1},
		{false, []string{"UNSUBSCRIBE"}, 1},
		{false, []string{"PUNSUBSCRIBE"}, 1},
		{false, []string{"SUNSUBSCRIBE", "x"}, 1},
		{false, []string{"SUNSUBSCRIBE"}, 1},
		{false, []string{"UNSUBSCRIBE"}, 1},
		{false, []string{"PUNSUBSCRIBE"}, 1},
		{false, []string{"SUNSUBSCRIBE"}, 1},
		{false, []string{"PING"}, 1},
		{false, []string{"GET", "k"}, 1},
		{false, []string{"UNSUBSCRIBE", "x", "y"}, 2},
		{false, []string{"SUBSCRIBE", "a"}, 1},
		{false, []string{"PSUBSCRIBE", "q*"}, 1},
		{false, []string{"UNSUBSCRIBE"}, 1},
		{false, []string{"UNSUBSCRIBE"}, 1},
		{false, []string{"PUNSUBSCRIBE", "q*", "z*"}, 2},
		{false, []string{"PING"}, 1},
	}
	for _, proto := range []int{2, 3} {
		var subs, pubs [2]*rawConn
		for i, addr := range []string{ref.Addr, p.Addr} {
			subs[i], pubs[i] = dialRaw(t, addr), dialRaw(t, addr)
			if proto == 3 {
				subs[i].send("HELLO", "3")
				subs[i].frame() // the server's description differs, by design
			}
		}
		for _, st := range steps {
			var got [2][]byte
			for i := range subs {
				on := subs[i]
				if st.pub {
					on = pubs[i]
				}
				on.send(st.args...)
				if st.pub {
					pubs[i].frame()
				}
				for range st.n {
					got[i] = append(got[i], subs[i].frame()...)
				}
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Errorf("RESP%d %q:\nredis-server: %q\nslotproxy:    %q", proto, st.args, got[0], got[1])
			}
		}
	}
}

// TestPubSubDelivery checks messages of every kind through the proxy:
// in publication order, patterns, shard channels, and none after an
// UNSUBSCRIBE.
func TestPubSubDelivery(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	pub := p.client(t, "")
	sub := dialRaw(t, p.Addr)

	sub.send("SUBSCRIBE", "news")
	sub.frame()
	sub.send("PSUBSCRIBE", "sport.*")
	sub.frame()
	sub.send("SSUBSCRIBE", "{shard}orders")
	sub.frame()

	const n = 200
	for i := range n {
		if err := pub.Publish(ctx, "news", "m"+strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		want := "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n" + string(appendBulkString(nil, "m"+strconv.Itoa(i)))
		if got := sub.frame(); string(got) != want {
			t.Fatalf("message %d: %q, want %q", i, got, want)
		}
	}
	pub.Publish(ctx, "sport.golf", "birdie")
	if got, want := string(sub.frame()), "*4\r\n$8\r\npmessage\r\n$7\r\nsport.*\r\n$10\r\nsport.golf\r\n$6\r\nbirdie\r\n"; got != want {
		t.Errorf("pmessage: %q, want %q", got, want)
	}
	if err := pub.SPublish(ctx, "{shard}orders", "o1").Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := string(sub.frame()), "*3\r\n$8\r\nsmessage\r\n$13\r\n{shard}orders\r\n$2\r\no1\r\n"; got != want {
		t.Errorf("smessage: %q, want %q", got, want)
	}

	sub.send("UNSUBSCRIBE", "news")
	if got, want := string(sub.frame()), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n"; got != want {
		t.Fatalf("UNSUBSCRIBE: %q, want %q", got, want)
	}
	// Had the first been delivered, it would come before the second.
	pub.Publish(ctx, "news", "late")
	pub.Publish(ctx, "sport.ski", "after")
	if got := string(sub.frame()); !strings.HasSuffix(got, "$5\r\nafter\r\n") {
		t.Errorf("after UNSUBSCRIBE news: got %q, want only the sport.ski pmessage", got)
	}
}

// subscriberConns counts, on each master, the connections subscribed to
// anything, from the masters' own CLIENT LIST.
func subscriberConns(t testing.TB, c *clustertest.Cluster) map[string]int {
	t.Helper()
	ctx := context.Background()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\b(?:sub|psub|ssub)=([0-9]+)`)
	out := make(map[string]int)
	for _, m := range masters {
		list, err := c.Client(m).ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[m] = 0
		for _, line := range strings.Split(list, "\n") {
			for _, sm := range re.FindAllStringSubmatch(line, -1) {
				if sm[1] != "0" {
					out[m]++
					break
				}
			}
		}
	}
	return out
}

// TestPubSubMultiplexing subscribes 2,000 clients to 10 channels and
// checks that the masters see a few subscriber connections, not 2,000,
// and that every client gets every message of its channel in order.
func TestPubSubMultiplexing(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	const clients, channels, perChannel = 2000, 10, 20

	subs := make([]*rawConn, clients)
	for i := range subs {
		subs[i] = dialRaw(t, p.Addr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < clients; i += 50 {
				ch := "ch" + strconv.Itoa(i%channels)
				subs[i].send("SUBSCRIBE", ch)
				f, err := subs[i].next(10 * time.Second)
				want := "*3\r\n$9\r\nsubscribe\r\n$3\r\n" + ch + "\r\n:1\r\n"
				if err != nil || string(f) != want {
					errs <- fmt.Errorf("client %d: SUBSCRIBE %s: %q, %v", i, ch, f, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	conns := subscriberConns(t, c)
	t.Logf("subscriber connections per master for %d clients on %d channels: %v", clients, channels, conns)
	total := 0
	for m, n := range conns {
		total += n
		if n > 2 {
			t.Errorf("%s has %d subscriber connections, want at most 2", m, n)
		}
	}
	if total == 0 {
		t.Errorf("no master has a subscriber connection")
	}

	pub := p.client(t, "")
	pipe := pub.Pipeline()
	for j := range perChannel {
		for ch := range channels {
			pipe.Publish(ctx, "ch"+strconv.Itoa(ch), "m"+strconv.Itoa(j))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs = make(chan error, clients)
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := "ch" + strconv.Itoa(i%channels)
			for j := range perChannel {
				f, err := subs[i].next(15 * time.Second)
				want := "*3\r\n$7\r\nmessage\r\n$3\r\n" + ch + "\r\n" + string(appendBulkString(nil, "m"+strconv.Itoa(j)))
				if err != nil || string(f) != want {
					errs <- fmt.Errorf("client %d, message %d: %q, %v; want %q", i, j, f, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients missed messages", failed, clients)
	}
	t.Logf("%d messages delivered to %d clients in %v", clients*perChannel, clients, time.Since(start))
}

// TestPubSubKeyspaceNotifications subscribes through the proxy to expiry
// events, which each master publishes only locally, and expects the
// events of keys on every master.
func TestPubSubKeyspaceNotifications(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if err := c.Client(m).ConfigSet(ctx, "notify-keyspace-events", "KEA").Err(); err != nil {
			t.Fatal(err)
		}
	}
	sub := dialRaw(t, p.Addr)
	sub.send("PSUBSCRIBE", "__keyevent@0__:expired")
	sub.frame()

	owners := slotOwners(t, c)
	want := map[string]bool{}
	for _, m := range masters {
		for i := 0; ; i++ {
			tag := "e" + strconv.Itoa(i)
			if owners[int(slotmap.Slot([]byte("{"+tag+"}")))] == m {
				want["{"+tag+"}:gone"] = true
				break
			}
		}
	}
	cl := p.client(t, "")
	for k := range want {
		if err := cl.Set(ctx, k, "v", 50*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for range want {
		v, ok := parseValue(sub.frame())
		if !ok || len(v.elems) != 4 || string(v.elems[0].str) != "pmessage" || string(v.elems[2].str) != "__keyevent@0__:expired" {
			t.Fatalf("not an expiry event: %+v", v)
		}
		got[string(v.elems[3].str)] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no expiry event for %s (got %v)", k, got)
		}
	}
	t.Logf("expiry events from %d masters: %v", len(masters), got)
}

// TestPubSubFailover kills -9 the master that carries the proxy's
// channel subscriptions and expects the subscriber to hear messages
// again, without doing anything itself.
func TestPubSubFailover(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c, Options{}, router.Options{})
	pub := p.client(t, "")
	sub := dialRaw(t, p.Addr)
	sub.send("SUBSCRIBE", "alerts")
	sub.frame()
	pub.Publish(ctx, "alerts", "before")
	if got := string(sub.frame()); !strings.HasSuffix(got, "$6\r\nbefore\r\n") {
		t.Fatalf("before the kill: %q", got)
	}

	var victim string
	for m, n := range subscriberConns(t, c) {
		if n > 0 {
			victim = m
		}
	}
	if victim == "" {
		t.Fatal("no master holds the subscription")
	}
	for _, n := range c.Nodes {
		if n.Addr == victim {
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	killed := time.Now()
	deadline := killed.Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no message 30s after killing %s", victim)
		}
		pub.Publish(ctx, "alerts", "after"+strconv.Itoa(i)) // fails while the cluster is down
		f, err := sub.next(300 * time.Millisecond)
		if err == nil {
			if !bytes.Contains(f, []byte("after")) {
				t.Fatalf("unexpected frame %q", f)
			}
			break
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("subscriber connection: %v", err)
		}
	}
	t.Logf("messages delivered again %v after killing %s", time.Since(killed).Round(time.Millisecond), victim)
}

// hasSession reports whether srv still serves the client at addr.
func hasSession(srv *Server, addr string) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for sess := range srv.sessions {
		if sess.nc.RemoteAddr().String() == addr {
			return true
		}
	}
	return false
}

// TestPubSubSlowSubscriber: a subscriber that never reads is cut off past
// MaxOutputBytes, and another on the same channel gets every message.
func TestPubSubSlowSubscriber(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{MaxOutputBytes: 256 << 10}, router.Options{})
	pub := p.client(t, "")
	if err := pub.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	slow, good := dialRaw(t, p.Addr), dialRaw(t, p.Addr)
	slow.nc.(*net.TCPConn).SetReadBuffer(4096)
	for _, s := range []*rawConn{slow, good} {
		s.send("SUBSCRIBE", "firehose")
		s.frame()
	}
	payload := strings.Repeat("x", 32<<10)
	deadline := time.Now().Add(20 * time.Second)
	seq := 0
	for hasSession(p.Server, slow.nc.LocalAddr().String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow subscriber was not cut off after %d messages", seq)
		}
		pipe := pub.Pipeline()
		for i := range 50 {
			pipe.Publish(ctx, "firehose", strconv.Itoa(seq+i)+":"+payload)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for range 50 {
			v, ok := parseValue(good.frame())
			if !ok || len(v.elems) != 3 || !strings.HasPrefix(string(v.elems[2].str), strconv.Itoa(seq)+":") {
				t.Fatalf("good subscriber: message %d missing or out of order", seq)
			}
			seq++
		}
	}
	t.Logf("slow subscriber cut off after %d messages of %d KiB", seq, len(payload)>>10)
	pub.Publish(ctx, "firehose", "last")
	if got := string(good.frame()); !strings.HasSuffix(got, "$4\r\nlast\r\n") {
		t.Errorf("good subscriber after the cut: %q", got)
	}
}

// TestPubSubCountAfterUnsubscribe checks what a single server guarantees
// once a client has its UNSUBSCRIBE (or PUNSUBSCRIBE) confirmed: a PUBLISH
// made after it no longer counts that client. It does so many times in a
// row, both when the hub's connection then has nothing left to hear (the
// proxy closes it) and when another client keeps it subscribed (the proxy
// unsubscribes on it), because the hub's own subscription on the node
// goes away only after the client's confirmation was decided.
func TestPubSubCountAfterUnsubscribe(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	pub := dialRaw(t, p.Addr)
	publish := func(channel, want string) {
		t.Helper()
		pub.send("PUBLISH", channel, "x")
		if f := pub.frame(); string(f) != want {
			t.Fatalf("PUBLISH %s = %q, want %q", channel, f, want)
		}
	}
	for _, others := range []bool{false, true} {
		if others {
			other := dialRaw(t, p.Addr)
			other.send("SUBSCRIBE", "count:other")
			other.frame()
		}
		sub := dialRaw(t, p.Addr)
		for i := range 100 {
			verb, unverb, name, channel := "SUBSCRIBE", "UNSUBSCRIBE", "count:ch", "count:ch"
			if i%2 == 1 {
				verb, unverb, name, channel = "PSUBSCRIBE", "PUNSUBSCRIBE", "count:p*", "count:p1"
			}
			sub.send(verb, name)
			sub.frame()
			publish(channel, ":1\r\n")
			if f := sub.frame(); !bytes.Contains(f, []byte("$1\r\nx\r\n")) {
				t.Fatalf("%s %s: got %q, want the message", verb, name, f)
			}
			sub.send(unverb, name)
			sub.frame()
			publish(channel, ":0\r\n")
		}
	}
}
