package proxy

// Real cluster-unaware client libraries (redis-py, ioredis, go-redis) use
// the commands that hold a connection, as applications write them:
// transactions, WATCH retry loops, Pub/Sub and BLPOP. As in clients_test.go
// the same checks run against a standalone redis-server first, which proves
// the checks right; what fails only against the proxy is the proxy's fault.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

const (
	// heldWatchClients clients each add heldWatchIncrements to one counter
	// with WATCH/GET/MULTI/SET/EXEC (the scripts use the same numbers).
	heldWatchClients    = 5
	heldWatchIncrements = 20
	// heldMessages is how many messages each Pub/Sub check publishes.
	heldMessages = 100
	// heldWait bounds every wait on another connection: a lost wake-up or
	// message fails the check instead of hanging the run.
	heldWait = 10 * time.Second
)

// heldUsers are hash tags that land on each master of a 3-master cluster
// made by redis-cli (thirds of the slot space), so that transactions are
// seen to run on every master.
var heldUsers = []string{"user:1", "user:3", "user:4"}

// TestClientsHeldStandalone runs every check against a plain redis-server:
// the reference that the proxy must match.
func TestClientsHeldStandalone(t *testing.T) {
	n := clustertest.Standalone(t, "")
	// Concurrent WATCH clients of a fast local server may happen never to
	// collide: retries are counted, not required.
	runHeldChecks(t, n.Addr, false)
}

// TestClientsHeldProxy runs every check against the proxy in front of a
// 3-master cluster.
func TestClientsHeldProxy(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	runHeldChecks(t, p.Addr, true)
}

// runHeldChecks runs each client in turn; wantRetries says whether the
// concurrent WATCH clients must have seen at least one aborted EXEC.
func runHeldChecks(t *testing.T, addr string, wantRetries bool) {
	t.Run("redis-py", func(t *testing.T) { testRedisPyHeld(t, addr, wantRetries) })
	t.Run("ioredis", func(t *testing.T) { testIORedisHeld(t, addr, wantRetries) })
	t.Run("go-redis-resp2", func(t *testing.T) { testGoRedisHeld(t, addr, 2, wantRetries) })
	t.Run("go-redis-resp3", func(t *testing.T) { testGoRedisHeld(t, addr, 3, wantRetries) })
}

func testRedisPyHeld(t *testing.T, addr string, wantRetries bool) {
	out, err := exec.Command(redisPython, "-c", "import redis").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-py is not importable by %s (%v: %s); %s", redisPython, err, strings.TrimSpace(string(out)), installHint)
	}
	runClientScript(t, redisPython, 6, "testdata/clients/redispy_held.py",
		"--addr", addr, "--want-retries", yesNo(wantRetries))
}

func testIORedisHeld(t *testing.T, addr string, wantRetries bool) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v); install Node.js 18 or later, then %s", err, installHint)
	}
	dir := filepath.Join("testdata", "clients", "ioredis")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ioredis", "package.json")); err != nil {
		t.Fatalf("ioredis is not installed in %s (%v); %s", dir, err, installHint)
	}
	runClientScript(t, node, 6, filepath.Join(dir, "held.js"),
		"--addr", addr, "--want-retries", yesNo(wantRetries))
}

func testGoRedisHeld(t *testing.T, addr string, protocol int, wantRetries bool) {
	// MaxRetries -1: a failed command is a failed check, not a retry that
	// might hide it.
	opts := &redis.Options{Addr: addr, Protocol: protocol, MaxRetries: -1}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })

	t.Run("Transaction", func(t *testing.T) { checkGoHeldTransaction(t, rdb) })
	t.Run("WatchConflict", func(t *testing.T) { checkGoHeldWatchConflict(t, rdb) })
	t.Run("WatchOtherReads", func(t *testing.T) { checkGoHeldWatchOtherReads(t, rdb) })
	t.Run("WatchRetry", func(t *testing.T) { checkGoHeldWatchRetry(t, rdb, wantRetries) })
	t.Run("PubSub", func(t *testing.T) { checkGoHeldPubSub(t, rdb) })
	t.Run("PSubscribe", func(t *testing.T) { checkGoHeldPSubscribe(t, rdb) })
	t.Run("PublishReceivers", func(t *testing.T) { checkGoHeldReceivers(t, rdb) })
	t.Run("BLPOP", func(t *testing.T) { checkGoHeldBLPop(t, rdb, opts) })
}

func checkGoHeldTransaction(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	var thirds [3]bool
	for _, u := range heldUsers {
		thirds[min(int(slotmap.Slot([]byte(u)))/5461, 2)] = true
	}
	if thirds != [3]bool{true, true, true} {
		t.Fatalf("the users' hash tags do not reach every third of the slot space: %v", thirds)
	}
	for _, u := range heldUsers {
		profile, visits, tags := "{"+u+"}:profile", "{"+u+"}:visits", "{"+u+"}:tags"
		if err := rdb.Del(ctx, profile, visits, tags).Err(); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		var (
			hset    *redis.IntCmd
			incr    *redis.IntCmd
			incrby  *redis.IntCmd
			sadd    *redis.IntCmd
			hgetall *redis.MapStringStringCmd
			get     *redis.StringCmd
			members *redis.StringSliceCmd
		)
		_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			hset = p.HSet(ctx, profile, "name", u, "plan", "free")
			incr = p.Incr(ctx, visits)
			incrby = p.IncrBy(ctx, visits, 41)
			sadd = p.SAdd(ctx, tags, "a", "b", "a")
			hgetall = p.HGetAll(ctx, profile)
			get = p.Get(ctx, visits)
			members = p.SMembers(ctx, tags)
			return nil
		})
		if err != nil {
			t.Fatalf("MULTI/EXEC on {%s}: %v", u, err)
		}
		got := fmt.Sprint(hset.Val(), incr.Val(), incrby.Val(), sadd.Val(), hgetall.Val(), get.Val(), slices.Sorted(slices.Values(members.Val())))
		want := fmt.Sprint(int64(2), int64(1), int64(42), int64(2), map[string]string{"name": u, "plan": "free"}, "42", []string{"a", "b"})
		if got != want {
			t.Errorf("MULTI/EXEC on {%s} = %s, want %s", u, got, want)
		}

		// A command that fails when EXEC runs it does not stop the
		// others, and its error comes back in its place.
		cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, profile)
			p.Incr(ctx, visits)
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") || len(cmds) != 2 ||
			cmds[0].Err() == nil || cmds[1].(*redis.IntCmd).Val() != 43 || cmds[1].Err() != nil {
			t.Errorf("EXEC with INCR of a hash on {%s} = %v, %v; want a WRONGTYPE error, then 43", u, cmds, err)
		}
	}

	// A command refused while queued dooms the transaction: nothing runs.
	visits := "{" + heldUsers[0] + "}:visits"
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, visits)
		p.Do(ctx, "set", visits)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") && !strings.Contains(err.Error(), "wrong number of arguments") {
		t.Errorf("EXEC of a doomed transaction: err = %v, want EXECABORT or the SET's arity error", err)
	}
	if v, err := rdb.Get(ctx, visits).Result(); v != "43" || err != nil {
		t.Errorf("GET %s after a doomed transaction = %q, %v; want 43", visits, v, err)
	}
}

func checkGoHeldWatchConflict(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	key := "{held:go}:watched"
	if err := rdb.Set(ctx, key, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// rdb's pool gives the SET below a connection other than the
	// transaction's: another client, as far as the server can tell.
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		if v, err := tx.Get(ctx, key).Result(); v != "0" || err != nil {
			return fmt.Errorf("GET %s while watching = %q, %v", key, v, err)
		}
		if err := rdb.Set(ctx, key, "changed", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "mine", 0)
			return nil
		})
		return err
	}, key)
	if !errors.Is(err, redis.TxFailedErr) {
		t.Errorf("EXEC after another client changed the WATCHed key: err = %v, want %v", err, redis.TxFailedErr)
	}
	if v := rdb.Get(ctx, key).Val(); v != "changed" {
		t.Errorf("GET %s after the aborted EXEC = %q, want changed", key, v)
	}

	// Unchanged, the same transaction runs.
	err = rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "mine", 0)
			return nil
		})
		return err
	}, key)
	if err != nil {
		t.Errorf("EXEC with the WATCHed key unchanged: %v", err)
	}
	if v := rdb.Get(ctx, key).Val(); v != "mine" {
		t.Errorf("GET %s after EXEC = %q, want mine", key, v)
	}
}

// checkGoHeldWatchOtherReads reads and writes keys of other masters on the
// watching connection before MULTI, as an application reading its
// settings does: on one redis-server any key may be used there.
func checkGoHeldWatchOtherReads(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	key := "{" + heldUsers[0] + "}:balance"
	others := []string{"{" + heldUsers[1] + "}:rate", "{" + heldUsers[2] + "}:rate"}
	if err := rdb.Set(ctx, key, "10", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range others {
		if err := rdb.Set(ctx, k, "2", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, key).Int()
		if err != nil {
			return fmt.Errorf("GET %s: %w", key, err)
		}
		for _, k := range others {
			rate, err := tx.Get(ctx, k).Int()
			if err != nil {
				return fmt.Errorf("GET %s (slot %d) while watching %s (slot %d): %w", k, slotmap.Slot([]byte(k)), key, slotmap.Slot([]byte(key)), err)
			}
			if err := tx.Incr(ctx, k+":reads").Err(); err != nil {
				return fmt.Errorf("INCR %s:reads while watching %s: %w", k, key, err)
			}
			n *= rate
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, n, 0)
			return nil
		})
		return err
	}, key)
	if err != nil {
		t.Fatalf("WATCH transaction: %v", err)
	}
	if v := rdb.Get(ctx, key).Val(); v != "40" {
		t.Errorf("GET %s after EXEC = %q, want 40", key, v)
	}
}

// checkGoHeldWatchRetry runs go-redis's optimistic-locking loop from many
// goroutines at once: each Watch that fails with TxFailedErr is retried.
func checkGoHeldWatchRetry(t *testing.T, rdb *redis.Client, wantRetries bool) {
	ctx, cancel := context.WithTimeout(t.Context(), 6*heldWait)
	defer cancel()
	key := "{held:go}:counter"
	if err := rdb.Set(ctx, key, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	incr := func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, key).Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, n+1, 0)
			return nil
		})
		return err
	}
	var (
		retries atomic.Int64
		wg      sync.WaitGroup
		start   = make(chan struct{})
		errs    = make(chan error, heldWatchClients)
	)
	for range heldWatchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range heldWatchIncrements {
				for {
					err := rdb.Watch(ctx, incr, key)
					if err == nil {
						break
					}
					if !errors.Is(err, redis.TxFailedErr) {
						errs <- err
						return
					}
					retries.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a WATCH client failed: %v", err)
	}
	want := heldWatchClients * heldWatchIncrements
	got, err := rdb.Get(ctx, key).Int()
	if err != nil || got != want {
		t.Errorf("counter = %d, %v after %d clients x %d increments; want %d", got, err, heldWatchClients, heldWatchIncrements, want)
	}
	t.Logf("%d clients x %d increments, counter %d, %d retries", heldWatchClients, heldWatchIncrements, got, retries.Load())
	if wantRetries && retries.Load() == 0 {
		t.Errorf("no EXEC was aborted among %d concurrent clients", heldWatchClients)
	}
}

func checkGoHeldPubSub(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	channel := "held:go:news"
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	heldConfirmed(t, ps, "subscribe", channel)
	// PING in subscribed mode is answered as a message; go-redis's
	// health check sends it.
	if err := ps.Ping(ctx, "hc"); err != nil {
		t.Fatalf("PING while subscribed: %v", err)
	}
	if msg, err := ps.ReceiveTimeout(ctx, heldWait); err != nil || fmt.Sprintf("%#v", msg) != fmt.Sprintf("%#v", &redis.Pong{Payload: "hc"}) {
		t.Fatalf("PING hc while subscribed = %#v, %v; want a pong with hc", msg, err)
	}
	for i := range heldMessages {
		msg := "m" + strconv.Itoa(i)
		if n, err := rdb.Publish(ctx, channel, msg).Result(); n != 1 || err != nil {
			t.Fatalf("PUBLISH %s %s = %d, %v; want 1 subscriber", channel, msg, n, err)
		}
	}
	for i := range heldMessages {
		want := redis.Message{Channel: channel, Payload: "m" + strconv.Itoa(i)}
		if got := heldReceive(t, ps, i); got.Channel != want.Channel || got.Pattern != "" || got.Payload != want.Payload {
			t.Fatalf("message %d = %+v, want %+v", i, got, want)
		}
	}
	if err := ps.Unsubscribe(ctx, channel); err != nil {
		t.Fatalf("UNSUBSCRIBE: %v", err)
	}
	heldConfirmed(t, ps, "unsubscribe", channel)
	if n, err := rdb.Publish(ctx, channel, "late").Result(); n != 0 || err != nil {
		t.Errorf("PUBLISH after UNSUBSCRIBE = %d, %v; want 0 subscribers", n, err)
	}
}

func checkGoHeldPSubscribe(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	pattern := "held:go:p:*"
	ps := rdb.PSubscribe(ctx, pattern)
	defer ps.Close()
	heldConfirmed(t, ps, "psubscribe", pattern)
	if n, err := rdb.Publish(ctx, "held:go:other", "x").Result(); n != 0 || err != nil {
		t.Errorf("PUBLISH to a channel the pattern does not match = %d, %v; want 0 subscribers", n, err)
	}
	want := make([]redis.Message, heldMessages)
	for i := range want {
		want[i] = redis.Message{Pattern: pattern, Channel: "held:go:p:" + strconv.Itoa(i%3), Payload: "m" + strconv.Itoa(i)}
		if n, err := rdb.Publish(ctx, want[i].Channel, want[i].Payload).Result(); n != 1 || err != nil {
			t.Fatalf("PUBLISH %s %s = %d, %v; want 1 subscriber", want[i].Channel, want[i].Payload, n, err)
		}
	}
	for i, w := range want {
		if got := heldReceive(t, ps, i); got.Pattern != w.Pattern || got.Channel != w.Channel || got.Payload != w.Payload {
			t.Fatalf("pmessage %d = %+v, want %+v", i, got, w)
		}
	}
}

// checkGoHeldReceivers counts a message's receivers as redis-server does:
// one per subscribed client and per matching pattern, each of which gets
// its own copy.
func checkGoHeldReceivers(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	channel, pattern := "held:go:all", "held:go:a*"
	var subs []*redis.PubSub
	for _, kind := range []string{"subscribe", "subscribe", "psubscribe"} {
		var ps *redis.PubSub
		if kind == "subscribe" {
			ps = rdb.Subscribe(ctx, channel)
			heldConfirmed(t, ps, kind, channel)
		} else {
			ps = rdb.PSubscribe(ctx, pattern)
			heldConfirmed(t, ps, kind, pattern)
		}
		defer ps.Close()
		subs = append(subs, ps)
	}
	if n, err := rdb.Publish(ctx, channel, "m").Result(); n != 3 || err != nil {
		t.Errorf("PUBLISH %s with 2 subscribers and 1 matching pattern = %d, %v; want 3", channel, n, err)
	}
	for i, ps := range subs {
		got := heldReceive(t, ps, 0)
		if got.Channel != channel || got.Payload != "m" || (got.Pattern != "") != (i == 2) {
			t.Errorf("subscriber %d got %+v", i, got)
		}
	}
}

// heldConfirmed reads the confirmation of a (un)subscription: a message
// published after it must reach the subscriber.
func heldConfirmed(t *testing.T, ps *redis.PubSub, kind, name string) {
	t.Helper()
	msg, err := ps.ReceiveTimeout(t.Context(), heldWait)
	if err != nil {
		t.Fatalf("%s %s: no confirmation: %v", kind, name, err)
	}
	sub, ok := msg.(*redis.Subscription)
	if !ok || sub.Kind != kind || sub.Channel != name {
		t.Fatalf("%s %s: first reply %#v, want its confirmation", kind, name, msg)
	}
}

func heldReceive(t *testing.T, ps *redis.PubSub, i int) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), heldWait)
	defer cancel()
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatalf("message %d of %d: %v", i, heldMessages, err)
	}
	return msg
}

// checkGoHeldBLPop blocks one client in BLPOP 0 and wakes it from another
// once INFO says it is blocked, so that the push cannot come first.
func checkGoHeldBLPop(t *testing.T, rdb *redis.Client, opts *redis.Options) {
	ctx := t.Context()
	key := "{held:go}:queue"
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if n := clientBlocked(t, rdb); n != 0 {
		t.Fatalf("blocked_clients = %d before BLPOP, want 0", n)
	}
	blocker := redis.NewClient(opts)
	defer blocker.Close()
	type popped struct {
		v   []string
		err error
	}
	done := make(chan popped, 1)
	go func() {
		v, err := blocker.BLPop(ctx, 0, key).Result()
		done <- popped{v, err}
	}()
	waitBlocked(t, rdb, 1)
	select {
	case p := <-done:
		t.Fatalf("BLPOP on an empty list returned %v, %v before any push", p.v, p.err)
	default:
	}
	if n, err := rdb.RPush(ctx, key, "first", "second").Result(); n != 2 || err != nil {
		t.Fatalf("RPUSH = %d, %v; want 2", n, err)
	}
	select {
	case p := <-done:
		if p.err != nil || !slices.Equal(p.v, []string{key, "first"}) {
			t.Errorf("BLPOP = %q, %v; want [%s first]", p.v, p.err, key)
		}
	case <-time.After(heldWait):
		t.Fatalf("BLPOP not woken within %v of the RPUSH", heldWait)
	}
	if left := rdb.LRange(ctx, key, 0, -1).Val(); !slices.Equal(left, []string{"second"}) {
		t.Errorf("list after BLPOP = %q, want [second]", left)
	}
	waitBlocked(t, rdb, 0)

	// A timeout that runs out gives a null reply.
	// go-redis sends whole seconds, at least 1.
	if v, err := blocker.BLPop(ctx, time.Second, "{held:go}:empty").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("BLPOP on an empty list with timeout 1 = %q, %v; want redis.Nil", v, err)
	}
}
