package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestHeldConnections runs transactions and blocking commands through the
// proxy in front of a 3-master cluster.
func TestHeldConnections(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{MaxDedicatedPerNode: 4, DedicatedWait: 300 * time.Millisecond})
	t.Run("Transaction", func(t *testing.T) { testTransaction(t, p) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, p) })
	t.Run("Blocking", func(t *testing.T) { testBlocking(t, p) })
	t.Run("BlockedClientHangsUp", func(t *testing.T) { testBlockedHangUp(t, c, p) })
	t.Run("PoolBound", func(t *testing.T) { testLeaseBound(t, p) })
	t.Run("ClientList", func(t *testing.T) { testHeldClientList(t, p) })
}

// testHeldClientList: CLIENT LIST shows what a client holds with
// redis-server's flags and counts, and TYPE pubsub selects subscribers.
func testHeldClientList(t *testing.T, p *testProxy) {
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2})
	defer admin.Close()
	clientID := func(c *respConn) string {
		t.Helper()
		return strings.TrimSpace(strings.TrimPrefix(c.do("CLIENT", "ID"), ":"))
	}
	fields := func(list, id string) string {
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, "id="+id+" ") {
				var out []string
				for _, f := range strings.Fields(l) {
					for _, k := range []string{"flags=", "sub=", "psub=", "ssub=", "multi="} {
						if strings.HasPrefix(f, k) {
							out = append(out, f)
						}
					}
				}
				return strings.Join(out, " ")
			}
		}
		t.Fatalf("client %s not in CLIENT LIST %q", id, list)
		return ""
	}
	txn := dialRESP(t, p.Addr)
	txnID := clientID(txn)
	txn.do("MULTI")
	txn.do("SET", "{cl}a", "1")
	txn.do("INCR", "{cl}a")
	if got := fields(admin.ClientList(ctx).Val(), txnID); got != "flags=x sub=0 psub=0 ssub=0 multi=2" {
		t.Errorf("a client in MULTI with 2 commands queued: %q", got)
	}
	txn.do("EXEC")
	if got := fields(admin.ClientList(ctx).Val(), txnID); got != "flags=N sub=0 psub=0 ssub=0 multi=-1" {
		t.Errorf("after EXEC: %q", got)
	}

	sub := dialRESP(t, p.Addr)
	subID := clientID(sub)
	sub.do("SUBSCRIBE", "cl:a")
	sub.do("PSUBSCRIBE", "cl:*")
	sub.do("SSUBSCRIBE", "{cl}shard")
	if got := fields(admin.ClientList(ctx).Val(), subID); got != "flags=P sub=1 psub=1 ssub=1 multi=-1" {
		t.Errorf("a subscriber: %q", got)
	}
	if list := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").String(); !strings.Contains(list, "id="+subID+" ") || strings.Contains(list, "id="+txnID+" ") {
		t.Errorf("CLIENT LIST TYPE pubsub: %q", list)
	}
	if list := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "normal").String(); strings.Contains(list, "id="+subID+" ") {
		t.Errorf("CLIENT LIST TYPE normal lists the subscriber: %q", list)
	}

	blocked := dialRESP(t, p.Addr)
	blockedID := clientID(blocked)
	blocked.write(respCommand("BLPOP", "{cl}q", "0"))
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := fields(admin.ClientList(ctx).Val(), blockedID); got != "flags=b sub=0 psub=0 ssub=0 multi=-1" {
			return errors.New("blocked client shows " + got)
		}
		return nil
	})
	if n := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Val(); n != int64(1) {
		t.Errorf("CLIENT KILL TYPE pubsub = %v, want 1", n)
	}
	sub.expectClosed()
	admin.RPush(ctx, "{cl}q", "x")
	if got := blocked.reply(); !strings.Contains(got, "x") {
		t.Errorf("BLPOP: %q", got)
	}
}

func testTransaction(t *testing.T, p *testProxy) {
	rc := dialRESP(t, p.Addr)
	// Pipelined: a SET before MULTI must have run before the transaction.
	rc.write(respCommand("SET", "{t}a", "1") + respCommand("MULTI") + respCommand("INCR", "{t}a") +
		respCommand("PING") + respCommand("GET", "{t}a") + respCommand("EXEC") + respCommand("GET", "{t}a"))
	want := []string{"+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n",
		"*3\r\n:2\r\n+PONG\r\n$1\r\n2\r\n", "$1\r\n2\r\n"}
	for i, w := range want {
		if got := rc.reply(); got != w {
			t.Errorf("reply %d = %q, want %q", i, got, w)
		}
	}
	// Errors while queued doom the transaction, as on redis-server.
	for _, step := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SET", "{t}a", "5"}, "+QUEUED\r\n"},
		{[]string{"SET", "{u}b", "5"}, "-CROSSSLOT Keys in request don't hash to the same slot\r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"MULTI"}, "-ERR MULTI calls can not be nested\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"GET", "{t}a"}, "$1\r\n2\r\n"},
		{[]string{"EXEC"}, "-ERR EXEC without MULTI\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SET", "{t}a", "7"}, "+QUEUED\r\n"},
		{[]string{"DISCARD"}, "+OK\r\n"},
		{[]string{"GET", "{t}a"}, "$1\r\n2\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"EXEC"}, "*0\r\n"},
	} {
		if got := rc.do(step.cmd...); got != step.want {
			t.Errorf("%v = %q, want %q", step.cmd, got, step.want)
		}
	}
}

func testWatch(t *testing.T, p *testProxy) {
	ctx := context.Background()
	a := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2})
	b := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 3})
	defer a.Close()
	defer b.Close()
	a.Set(ctx, "{w}k", "0", 0)
	// A conflicting write between WATCH and EXEC makes EXEC fail.
	err := a.Watch(ctx, func(tx *redis.Tx) error {
		if err := b.Set(ctx, "{w}k", "other", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
			pp.Set(ctx, "{w}k", "mine", 0)
			return nil
		})
		return err
	}, "{w}k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after a conflicting write: err %v, want TxFailedErr", err)
	}
	if v := a.Get(ctx, "{w}k").Val(); v != "other" {
		t.Fatalf("{w}k = %q after the failed transaction", v)
	}
	// Contention: 8 clients increment with WATCH/GET/MULTI/SET/EXEC.
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2 + i%2})
			defer cl.Close()
			for range each {
				for {
					err := cl.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "{w}n").Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
							pp.Set(ctx, "{w}n", n+1, 0)
							return nil
						})
						return err
					}, "{w}n")
					if err == nil {
						break
					}
					if err != redis.TxFailedErr {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := a.Get(ctx, "{w}n").Int(); n != workers*each {
		t.Fatalf("{w}n = %d after %d optimistic increments", n, workers*each)
	}
}

func testBlocking(t *testing.T, p *testProxy) {
	ctx := context.Background()
	a := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 2})
	b := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: 3})
	defer a.Close()
	defer b.Close()
	if err := a.BLPop(ctx, 100*time.Millisecond, "bq:empty").Err(); err != redis.Nil {
		t.Fatalf("BLPOP on an empty list with a timeout: %v, want nil reply", err)
	}
	done := make(chan []string, 1)
	go func() {
		v, err := a.BLPop(ctx, 0, "bq:1").Result()
		if err != nil {
			v = []string{err.Error()}
		}
		done <- v
	}()
	// The blocked client holds no shared connection: others go on.
	waitBlocked(t, b, 1)
	// Other clients go on while it is blocked.
	if err := b.Set(ctx, "bq:other", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b.RPush(ctx, "bq:1", "job")
	select {
	case v := <-done:
		if strings.Join(v, ",") != "bq:1,job" {
			t.Fatalf("BLPOP = %v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("BLPOP not woken by RPUSH")
	}
	// CLIENT UNBLOCK of a proxy client.
	id := a.ClientID(ctx).Val()
	go func() {
		_, err := a.BRPop(ctx, 0, "bq:never").Result()
		done <- []string{errString(err)}
	}()
	waitBlocked(t, b, 1)
	if n := b.ClientUnblock(ctx, id).Val(); n != 1 {
		t.Fatalf("CLIENT UNBLOCK = %d, want 1", n)
	}
	if v := <-done; v[0] != "redis: nil" {
		t.Fatalf("unblocked BRPOP: %v", v)
	}
	if n := b.ClientUnblock(ctx, id).Val(); n != 0 {
		t.Fatalf("CLIENT UNBLOCK of an unblocked client = %d, want 0", n)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// clientBlocked returns the blocked clients INFO clients reports through
// c: the proxy's own when c is a proxy client.
func clientBlocked(t testing.TB, c *redis.Client) int {
	t.Helper()
	return infoInt(t, c.Info(context.Background(), "clients").Val(), "blocked_clients")
}

// waitBlocked waits until INFO clients through c reports n blocked
// clients.
func waitBlocked(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	clustertest.Eventually(t, 30*time.Second, func() error {
		if got := clientBlocked(t, c); got != n {
			return fmt.Errorf("%d clients blocked, want %d", got, n)
		}
		return nil
	})
}

func testBlockedHangUp(t *testing.T, c *clustertest.Cluster, p *testProxy) {
	b := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer b.Close()
	rc := dialRESP(t, p.Addr)
	rc.write(respCommand("BLPOP", "bq:gone", "0"))
	waitBlocked(t, b, 1)
	rc.nc.Close()
	// The proxy's count would drop with the session; the master's own
	// says the backend connection is no longer blocked.
	clustertest.Eventually(t, 5*time.Second, func() error {
		for _, m := range c.Seeds() {
			if n := clientBlocked(t, c.Client(m)); n != 0 {
				return fmt.Errorf("%s still has %d blocked clients after the client hung up", m, n)
			}
		}
		return nil
	})
}

func testLeaseBound(t *testing.T, p *testProxy) {
	// The bound is 4 per node: a fifth blocked client on the same master
	// waits, then gets an error.
	ctx := context.Background()
	var conns []*respConn
	for i := range 4 {
		rc := dialRESP(t, p.Addr)
		rc.write(respCommand("BLPOP", "{bound}q"+string(rune('a'+i)), "0"))
		conns = append(conns, rc)
	}
	b := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer b.Close()
	waitBlocked(t, b, 4)
	err := b.BLPop(ctx, 0, "{bound}q5").Err()
	if err == nil || !strings.Contains(err.Error(), "no dedicated backend connection free") {
		t.Fatalf("fifth blocked client: %v", err)
	}
	for i, rc := range conns {
		b.RPush(ctx, "{bound}q"+string(rune('a'+i)), "x")
		if got := rc.reply(); !strings.Contains(got, "x") {
			t.Fatalf("woken BLPOP: %q", got)
		}
	}
	if err := b.BLPop(ctx, 50*time.Millisecond, "{bound}q5").Err(); err != redis.Nil {
		t.Fatalf("BLPOP once connections are free again: %v", err)
	}
}

// TestHeldFailover kills -9 the master serving a blocked client's key and
// the keyspace notifications of that slot: the blocked client gets an
// error at once, and once the replica took over, expiry notifications of
// keys on it reach a subscriber through the proxy again.
func TestHeldFailover(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	for _, n := range c.Nodes {
		if err := c.Client(n.Addr).ConfigSet(ctx, "notify-keyspace-events", "Ex").Err(); err != nil {
			t.Fatal(err)
		}
	}
	p := startProxy(t, c, Options{}, router.Options{})
	const key = "{failover}list"
	slot := int(slotmap.Slot([]byte(key)))
	victim := ownerOf(t, c, slot)

	sub := dialRESP(t, p.Addr)
	if got := sub.do("PSUBSCRIBE", "__keyevent@0__:expired"); !strings.Contains(got, "psubscribe") {
		t.Fatalf("PSUBSCRIBE: %q", got)
	}
	blocked := dialRESP(t, p.Addr)
	blocked.write(respCommand("BLPOP", key, "0"))
	admin := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer admin.Close()
	waitBlocked(t, admin, 1)

	for _, n := range c.Nodes {
		if n.Addr == victim {
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	killed := time.Now()
	got, err := blocked.tryReply(5 * time.Second)
	if err != nil {
		t.Fatalf("the client blocked on the killed master got no reply: %v", err)
	}
	if !strings.HasPrefix(got, "-ERR slotproxy: backend connection lost") {
		t.Fatalf("BLPOP on a killed master: %q", got)
	}
	t.Logf("blocked client answered %v after the kill: %q", time.Since(killed).Round(time.Millisecond), strings.TrimSpace(got))

	// A keyspace subscription made while the master is down (and before
	// its replica took over, which takes about twice the node timeout)
	// is confirmed by the masters that are up, not held until then.
	late := dialRESP(t, p.Addr)
	late.write(respCommand("PSUBSCRIBE", "__keyevent@0__:exp*"))
	if got, err := late.tryReply(2 * time.Second); err != nil || !strings.Contains(got, "psubscribe") {
		t.Fatalf("PSUBSCRIBE with a master down: %q, %v", got, err)
	}

	// Once the slot has a new master, its keys' expiries are heard.
	var survivor string
	for _, n := range c.Nodes {
		if n.Addr != victim {
			survivor = n.Addr
			break
		}
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		slots, err := c.Client(survivor).ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		if owner := ownerIn(slots, slot); owner == victim || owner == "" {
			return errors.New("no new master yet")
		}
		return nil
	})
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no expiry notification from the promoted master within 30s")
		}
		k := "{failover}ttl" + strconv.Itoa(i)
		admin.Set(ctx, k, "x", 50*time.Millisecond)
		msg, err := sub.tryReply(time.Second)
		if err == nil {
			if !strings.Contains(msg, "{failover}ttl") {
				t.Fatalf("unexpected message %q", msg)
			}
			if msg2, err := late.tryReply(5 * time.Second); err != nil || !strings.Contains(msg2, k) {
				t.Fatalf("the subscriber of the outage got %q, %v; want the expiry of %s", msg2, err, k)
			}
			break
		}
	}
	t.Logf("expiry notifications from the promoted master heard %v after the kill", time.Since(killed).Round(time.Millisecond))
	// And a blocking command works on the new master.
	blocked2 := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer blocked2.Close()
	admin.RPush(ctx, key, "after")
	if v, err := blocked2.BLPop(ctx, time.Second, key).Result(); err != nil || v[1] != "after" {
		t.Fatalf("BLPOP on the promoted master: %v, %v", v, err)
	}
}

// TestBlockedOnStoppedMaster stops (SIGSTOP) the master a client is
// blocked on: its connection shows nothing, but once the replica took the
// slot over the client is unblocked with an error instead of waiting on a
// node that no longer serves its key.
func TestBlockedOnStoppedMaster(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c, Options{}, router.Options{})
	const key = "{stopped}list"
	victim := ownerOf(t, c, int(slotmap.Slot([]byte(key))))
	blocked := dialRESP(t, p.Addr)
	blocked.write(respCommand("BLPOP", key, "0"))
	admin := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer admin.Close()
	waitBlocked(t, admin, 1)
	var node *clustertest.Node
	for _, n := range c.Nodes {
		if n.Addr == victim {
			node = n
		}
	}
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	defer node.Cont()
	stopped := time.Now()
	got, err := blocked.tryReply(30 * time.Second)
	if err != nil {
		t.Fatalf("the client blocked on a stopped master got no reply: %v", err)
	}
	if !strings.HasPrefix(got, "-UNBLOCKED slotproxy: the master serving the keys changed") {
		t.Fatalf("BLPOP on a stopped master: %q", got)
	}
	t.Logf("blocked client answered %v after SIGSTOP of its master: %q", time.Since(stopped).Round(time.Millisecond), strings.TrimSpace(got))
	if n := clientBlocked(t, admin); n != 0 {
		t.Fatalf("%d clients still blocked", n)
	}
}

// TestTransactionInterrupted: a transaction whose slot moved while it was
// queued is not run and says why, and the next one goes to the new
// owner; one whose WATCH connection broke answers that it may or may not
// have run.
func TestTransactionInterrupted(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	// No refresh of its own during the test: only the MOVED may teach
	// the proxy the new owner.
	p := startProxyWith(t, c, Options{}, router.Options{}, time.Hour)
	const key = "{moving}k"
	slot := int(slotmap.Slot([]byte(key)))
	src := ownerOf(t, c, slot)
	dst := otherMaster(t, c, src)

	rc := dialRESP(t, p.Addr)
	rc.do("SET", key, "before")
	rc.do("MULTI")
	if got := rc.do("SET", key, "in-txn"); got != "+QUEUED\r\n" {
		t.Fatalf("SET in MULTI: %q", got)
	}
	m := beginMigration(t, c, slot, src, dst)
	m.move()
	m.finish()
	got := rc.do("EXEC")
	if !strings.HasPrefix(got, "-EXECABORT Transaction discarded: its slot moved to another master while it was queued; nothing ran (MOVED ") {
		t.Fatalf("EXEC after the slot moved: %q", got)
	}
	if v := c.Client(dst).Get(ctx, key).Val(); v != "before" {
		t.Fatalf("%s = %q on the new owner after the aborted transaction", key, v)
	}
	rc.do("MULTI")
	rc.do("SET", key, "after")
	if got := rc.do("EXEC"); got != "*1\r\n+OK\r\n" {
		t.Fatalf("EXEC once the MOVED patched the table: %q", got)
	}
	if v := c.Client(dst).Get(ctx, key).Val(); v != "after" {
		t.Fatalf("%s = %q on the new owner", key, v)
	}

	// The WATCH connection is killed on the node before EXEC.
	if got := rc.do("WATCH", key); got != "+OK\r\n" {
		t.Fatalf("WATCH: %q", got)
	}
	killed, err := c.Client(dst).Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int()
	if err != nil || killed == 0 {
		t.Fatalf("CLIENT KILL on %s: %d, %v", dst, killed, err)
	}
	rc.do("MULTI")
	rc.do("SET", key, "lost")
	if got := rc.do("EXEC"); got != "-"+msgTxnLost+"\r\n" {
		t.Fatalf("EXEC on a broken WATCH connection: %q", got)
	}
	if got := rc.do("GET", key); got != "$5\r\nafter\r\n" {
		t.Fatalf("GET after the lost transaction: %q", got)
	}
}
