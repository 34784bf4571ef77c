package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// TestShutdownDrains runs pipelined INCRs from many clients through a
// Shutdown. Every client must see only its connection end, never an error
// reply; every INCR the cluster applied must have been acknowledged, and
// every acknowledged one applied: the proxy answers what it sent on before
// it closes a client. Clients that wait (parked, idle after a command,
// subscribed, in MULTI) are closed at once, and a client blocked in BLPOP
// is told its command may or may not have run first, so Shutdown returns
// before its grace; new connections are refused from the start.
func TestShutdownDrains(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	ctx := context.Background()

	// The waiting kinds of clients.
	parked := dialRaw(t, p.Addr)
	idle := dialRaw(t, p.Addr)
	idle.send("PING")
	idle.frame()
	subscribed := dialRaw(t, p.Addr)
	subscribed.send("SUBSCRIBE", "drain:news")
	subscribed.frame()
	multi := dialRaw(t, p.Addr)
	multi.send("MULTI")
	multi.frame()
	multi.send("INCR", "drain:multi")
	multi.frame()
	blocked := dialRaw(t, p.Addr)
	blocked.send("BLPOP", "drain:list", "0")
	rdb := p.client(t, "")
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := clientBlocked(t, rdb); n != 1 {
			return fmt.Errorf("%d blocked clients, want 1", n)
		}
		return nil
	})

	const clients, pipeline = 20, 10
	acked := make([]int, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	started := make(chan struct{}, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1, Protocol: 2, PoolSize: 1})
			defer rdb.Close()
			key := "drain:{" + strconv.Itoa(i) + "}"
			for n := 0; ; n++ {
				if n == 1 {
					started <- struct{}{}
				}
				cmds, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
					for range pipeline {
						pipe.Incr(ctx, key)
					}
					return nil
				})
				for _, cmd := range cmds {
					if cmd.Err() == nil {
						acked[i]++
					}
				}
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	for range clients {
		<-started
	}
	grace, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Server.Shutdown(grace); err != nil {
		t.Errorf("Shutdown = %v, want nil: every client should have ended before the grace", err)
	}
	wg.Wait()

	if nc, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		nc.Close()
		t.Errorf("the proxy still accepts connections after Shutdown")
	}
	for i, err := range errs {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			t.Errorf("client %d: an error reply during the shutdown: %v", i, err)
		}
	}
	direct := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Password: c.Password(), MaxRetries: -1})
	defer direct.Close()
	total := 0
	for i := range clients {
		key := "drain:{" + strconv.Itoa(i) + "}"
		got, err := direct.Get(ctx, key).Int()
		if err != nil {
			t.Fatalf("GET %s from the cluster: %v", key, err)
		}
		if got != acked[i] {
			t.Errorf("%s = %d in the cluster, but the client had %d INCRs acknowledged", key, got, acked[i])
		}
		total += acked[i]
	}
	t.Logf("%d clients, %d INCRs acknowledged before the shutdown, all applied and none more", clients, total)

	const unblocked = "-ERR slotproxy: backend connection lost; the command may or may not have run\r\n"
	if f, err := blocked.next(5 * time.Second); err != nil || string(f) != unblocked {
		t.Errorf("the blocked client read %q, %v; want %q", f, err, unblocked)
	}
	for name, rc := range map[string]*rawConn{"parked": parked, "idle": idle, "subscribed": subscribed, "in MULTI": multi, "blocked": blocked} {
		if f, err := rc.next(5 * time.Second); err == nil {
			t.Errorf("the %s client read %q after Shutdown, want its connection closed", name, f)
		} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Errorf("the %s client's connection is still open after Shutdown", name)
		}
	}
	if n, err := direct.Exists(ctx, "drain:multi").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS drain:multi = %d, %v: the unfinished MULTI ran", n, err)
	}
}

// TestShutdownGraceEnds checks that a client that does not take its
// replies is closed once the grace runs out, and Shutdown says so.
func TestShutdownGraceEnds(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	ctx := context.Background()
	big := make([]byte, 4<<20)
	if err := p.client(t, "").Set(ctx, "grace:big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// 16 GETs of 4 MiB: far more than the sockets hold, less than the
	// output limit. The client reads one byte, to know the replies are
	// coming, and no more.
	hog := dialRaw(t, p.Addr)
	for range 16 {
		hog.send("GET", "grace:big")
	}
	hog.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := hog.nc.Read(make([]byte, 1)); err != nil {
		t.Fatalf("no reply to the GETs: %v", err)
	}
	grace, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := p.Server.Shutdown(grace); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if n := p.Server.Clients(); n != 0 {
		t.Errorf("%d clients after Shutdown, want 0", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
