package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestClusterThreeMastersOneReplicaEach(t *testing.T) {
	c := New(t, Options{Masters: 3, Replicas: 1})
	ctx := t.Context()

	if len(c.Nodes) != 6 {
		t.Fatalf("got %d nodes, want 6", len(c.Nodes))
	}
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Seeds()[:3]; !sameSet(masters, want) {
		t.Fatalf("masters %v, want the first three nodes %v", masters, want)
	}

	shards, err := c.Client(c.Nodes[0].Addr).ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	covered := 0
	for _, sh := range shards {
		for _, r := range sh.Slots {
			covered += int(r.End - r.Start + 1)
		}
	}
	if covered != totalSlots {
		t.Fatalf("shards cover %d slots, want %d", covered, totalSlots)
	}

	const key = "clustertest:key"
	owner := ownerOf(t, c, key)
	if err := c.Client(owner).Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatalf("SET on owner %s: %v", owner, err)
	}
	if got, err := c.Client(owner).Get(ctx, key).Result(); err != nil || got != "v1" {
		t.Fatalf("GET on owner %s = %q, %v; want v1", owner, got, err)
	}
	other := masters[(slices.Index(masters, owner)+1)%len(masters)]
	if err := c.Client(other).Get(ctx, key).Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
		t.Fatalf("GET on non-owner %s: err %v, want MOVED", other, err)
	}

	// Killing a master: WaitHealthy returns once its replica has taken over.
	// Replication is asynchronous: without WAIT the replica may not have the
	// key yet when its master dies.
	if n, err := c.Client(owner).Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on %s = %d, %v; want 1", owner, n, err)
	}
	dead := c.node(owner)
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover of %s settled in %v", owner, time.Since(began).Round(time.Millisecond))
	masters, err = c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 || slices.Contains(masters, owner) {
		t.Fatalf("masters after killing %s: %v", owner, masters)
	}
	newOwner := ownerOf(t, c, key)
	if got, err := c.Client(newOwner).Get(ctx, key).Result(); err != nil || got != "v1" {
		t.Fatalf("GET on promoted %s = %q, %v; want v1", newOwner, got, err)
	}

	pids := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		pids[i] = n.PID()
	}
	dir := c.dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d after Close: kill(pid, 0) = %v, want ESRCH", pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s after Close: %v", dir, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestClusterByHandWithPassword covers the path redis-cli refuses (fewer
// than 3 masters) together with requirepass and masterauth.
func TestClusterByHandWithPassword(t *testing.T) {
	const password = "s3cret"
	c := New(t, Options{Masters: 1, Replicas: 1, Password: password})
	ctx := t.Context()

	if c.Password() != password {
		t.Fatalf("Password() = %q", c.Password())
	}
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(masters, c.Seeds()[:1]) {
		t.Fatalf("masters %v, want %v", masters, c.Seeds()[:1])
	}
	for _, n := range c.Nodes {
		anon := redis.NewClient(&redis.Options{Addr: n.Addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
		err := anon.Ping(ctx).Err()
		anon.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Errorf("unauthenticated PING to %s: %v, want NOAUTH", n.Addr, err)
		}
		if err := c.Client(n.Addr).Ping(ctx).Err(); err != nil {
			t.Errorf("authenticated PING to %s: %v", n.Addr, err)
		}
	}
	// The replica is in sync (WaitHealthy saw its link up), so a write on the
	// master shows up there: masterauth works.
	master := c.Client(c.Nodes[0].Addr)
	if err := master.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := master.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1", n, err)
	}
	replica := c.Client(c.Nodes[1].Addr)
	if err := replica.Do(ctx, "READONLY").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := replica.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET on replica = %q, %v; want v", got, err)
	}
}

func TestClusterTwoMasters(t *testing.T) {
	c := New(t, Options{Masters: 2})
	masters, err := c.MasterAddrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(masters, c.Seeds()) {
		t.Fatalf("masters %v, want %v (ordered by first slot)", masters, c.Seeds())
	}
}

func TestStandalone(t *testing.T) {
	ctx := t.Context()
	n := Standalone(t, "")
	cl := newClient(n.Addr, "", nil)
	defer cl.Close()
	if err := cl.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ClusterInfo(ctx).Err(); err == nil || !strings.Contains(err.Error(), "cluster support disabled") {
		t.Fatalf("CLUSTER INFO on standalone: %v, want cluster support disabled", err)
	}

	// A stopped server answers nothing; after Cont it answers again.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	quick := redis.NewClient(&redis.Options{Addr: n.Addr, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1, DisableIdentity: true})
	defer quick.Close()
	if err := quick.Ping(ctx).Err(); err == nil {
		t.Fatal("PING to a stopped server succeeded")
	}
	if err := n.Cont(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Cont: %v", err)
	}

	pid := n.PID()
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(pid, 0) after Kill = %v, want ESRCH", err)
	}
	if err := n.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
}

func TestStandalonePassword(t *testing.T) {
	n := Standalone(t, "pw")
	anon := newClient(n.Addr, "", nil)
	defer anon.Close()
	if err := anon.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated PING: %v, want NOAUTH", err)
	}
	auth := newClient(n.Addr, "pw", nil)
	defer auth.Close()
	if err := auth.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}

// ownerOf returns the master serving key's slot, from CLUSTER KEYSLOT and
// CLUSTER SHARDS.
func ownerOf(t *testing.T, c *Cluster, key string) string {
	t.Helper()
	ctx := t.Context()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(masters[0])
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role == "master" {
					return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				}
			}
		}
	}
	t.Fatalf("no master serves slot %d of %q", slot, key)
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestStartFailureKillsEverything: a Start that cannot finish (here its
// context ends once the processes are up, during creation) leaves no
// process behind and says what the nodes logged.
func TestStartFailureKillsEverything(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir := t.TempDir()
	logf := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		t.Log(msg)
		if strings.Contains(msg, "processes up") {
			cancel()
		}
	}
	c, err := Start(ctx, Options{Masters: 3, Replicas: 1, Dir: dir, Logf: logf})
	if err == nil {
		c.Close()
		t.Fatal("Start succeeded although its context ended during creation")
	}
	t.Logf("Start: %.300s...", err)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "redis.log") {
		t.Errorf("Start error %v; want the deadline and node logs", err)
	}
	if pids := childRedisServers(t); len(pids) > 0 {
		t.Fatalf("redis-server children left after a failed Start: %v", pids)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Options.Dir removed: %v", err)
	}
}

// childRedisServers returns the pids of this process's redis-server
// children, from /proc.
func childRedisServers(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited while we looked
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(redis-server") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s)[0])
		pids = append(pids, pid)
	}
	return pids
}
