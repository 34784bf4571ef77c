package proxy

// Real cluster-unaware client libraries (redis-py, ioredis, go-redis) run
// their ordinary calls against the proxy and must see one plain
// redis-server: INFO, their connect handshake, KEYS, SCAN, DBSIZE, FLUSHALL
// and Lua scripts over keys in every master's slots. The same checks run
// against a standalone redis-server first, which proves the checks right:
// what fails only against the proxy is the proxy's fault.
//
// redis-py and ioredis run as subprocesses (testdata/clients); a missing
// interpreter or module fails the test with the command that installs it
// (scripts/ensure-clients.sh), because a skipped client check would pass
// for no reason.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

const (
	// clientScanKeys is how many keys every client writes and then finds
	// again with KEYS and SCAN (the scripts use the same number).
	clientScanKeys = 10000
	// clientScriptKeys is how many keys the Lua checks touch, one per call.
	clientScriptKeys = 48
	// clientScriptTimeout bounds one run of a client script; under -race
	// the proxy is several times slower than in production.
	clientScriptTimeout = 3 * time.Minute

	// redisPython is Debian's interpreter: python3-redis installs the redis
	// module for it alone, not for a python3 that comes first on PATH.
	redisPython = "/usr/bin/python3"

	installHint = "run scripts/ensure-clients.sh (as root it installs Debian's python3-redis and runs npm ci in proxy/testdata/clients/ioredis)"
)

// clientTarget is a server the client checks run against.
type clientTarget struct {
	addr string
	// setinfo says whether the server has CLIENT SETINFO and shows lib-name
	// in CLIENT INFO: slotproxy answers it itself, redis-server has it from
	// 7.2. Without it the checks only expect the command to be refused.
	setinfo bool
	// clusterAPI says whether the server answers CLUSTER SLOTS, so that a
	// go-redis ClusterClient can use it: slotproxy does, as a one-node
	// cluster; a standalone redis-server does not.
	clusterAPI bool
}

// TestClientsStandalone runs every client check against a plain
// redis-server: the reference that the proxy must match.
func TestClientsStandalone(t *testing.T) {
	n := clustertest.Standalone(t, "")
	rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
	defer rdb.Close()
	version, err := rdb.InfoMap(t.Context(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	runClientChecks(t, clientTarget{
		addr:    n.Addr,
		setinfo: versionAtLeast(version["Server"]["redis_version"], 7, 2),
	})
}

// TestClientsProxy runs every client check against the proxy in front of a
// 3-master cluster.
func TestClientsProxy(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	runClientChecks(t, clientTarget{addr: p.Addr, setinfo: true, clusterAPI: true})
}

// runClientChecks runs each client in turn. They share the target's data:
// each starts with FLUSHALL, so they must not run in parallel.
func runClientChecks(t *testing.T, target clientTarget) {
	t.Run("redis-py", func(t *testing.T) { testRedisPy(t, target) })
	t.Run("ioredis", func(t *testing.T) { testIORedis(t, target) })
	t.Run("go-redis-resp2", func(t *testing.T) { testGoRedisPlain(t, target, 2) })
	t.Run("go-redis-resp3", func(t *testing.T) { testGoRedisPlain(t, target, 3) })
	if target.clusterAPI {
		t.Run("go-redis-cluster", func(t *testing.T) { testGoRedisCluster(t, target) })
	}
}

func versionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	mnr, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || maj == major && mnr >= minor
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func testRedisPy(t *testing.T, target clientTarget) {
	out, err := exec.Command(redisPython, "-c", "import redis").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-py is not importable by %s (%v: %s); %s", redisPython, err, strings.TrimSpace(string(out)), installHint)
	}
	runClientScript(t, redisPython, 9, "testdata/clients/redispy_check.py",
		"--addr", target.addr, "--setinfo", yesNo(target.setinfo))
}

func testIORedis(t *testing.T, target clientTarget) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v); install Node.js 18 or later, then %s", err, installHint)
	}
	dir := filepath.Join("testdata", "clients", "ioredis")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ioredis", "package.json")); err != nil {
		t.Fatalf("ioredis is not installed in %s (%v); %s", dir, err, installHint)
	}
	runClientScript(t, node, 10, filepath.Join(dir, "check.js"),
		"--addr", target.addr, "--setinfo", yesNo(target.setinfo))
}

// runClientScript runs one client script and fails t with everything it
// printed when it exits non-zero, or when its summary does not show all of
// at least checks checks passed (a script that ran none must not pass);
// its own lines name the failed checks.
func runClientScript(t *testing.T, interpreter string, checks int, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, append([]string{script}, args...)...)
	// A grandchild holding the output pipe must not keep Wait blocked past
	// the kill.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; output so far:\n%s", script, clientScriptTimeout, out)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(interpreter), script, err, out)
	}
	m := regexp.MustCompile(`(\d+)/(\d+) checks passed`).FindSubmatch(out)
	if m == nil || string(m[1]) != string(m[2]) || len(m[1]) == 0 {
		t.Fatalf("%s: no summary of all checks passed:\n%s", script, out)
	}
	if n, _ := strconv.Atoi(string(m[2])); n < checks {
		t.Fatalf("%s ran %d checks, want at least %d:\n%s", script, n, checks, out)
	}
	t.Logf("%s", out)
}

// ---------------------------------------------------------------------------
// go-redis, the Go client: the same checks as the scripts, once per
// protocol version, then a ClusterClient that takes the proxy for a
// one-node cluster.

func testGoRedisPlain(t *testing.T, target clientTarget, protocol int) {
	// MaxRetries -1: a failed command is a failed check, not a retry that
	// might hide it.
	rdb := redis.NewClient(&redis.Options{Addr: target.addr, Protocol: protocol, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })

	t.Run("FlushallFirst", func(t *testing.T) { checkGoFlushall(t, rdb) })
	t.Run("Handshake", func(t *testing.T) { checkGoHandshake(t, rdb, target, protocol) })
	t.Run("Write10000", func(t *testing.T) { checkGoWrite(t, rdb) })
	t.Run("Info", func(t *testing.T) { checkGoInfo(t, rdb) })
	t.Run("Dbsize", func(t *testing.T) { checkGoDbsize(t, rdb, clientScanKeys) })
	t.Run("Keys", func(t *testing.T) { checkGoKeys(t, rdb) })
	t.Run("Scan", func(t *testing.T) { checkGoScan(t, rdb) })
	t.Run("Scripts", func(t *testing.T) { checkGoScripts(t, rdb) })
	t.Run("Flushall", func(t *testing.T) {
		checkGoFlushall(t, rdb)
		info, err := rdb.InfoMap(t.Context(), "keyspace").Result()
		if err != nil {
			t.Fatal(err)
		}
		if db0, ok := info["Keyspace"]["db0"]; ok {
			t.Errorf("INFO keyspace after FLUSHALL still has db0:%s", db0)
		}
	})
}

func clientScanKeyNames() []string {
	keys := make([]string, clientScanKeys)
	for i := range keys {
		keys[i] = "scan:" + strconv.Itoa(i)
	}
	return keys
}

// keysWithPrefix returns the keys that start with prefix: the keys a MATCH or
// KEYS pattern of prefix+"*" selects.
func keysWithPrefix(keys []string, prefix string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// sameKeys fails t unless got holds every key of want and nothing else.
// Duplicates in got are allowed only when dupsOK (SCAN may repeat a key).
func sameKeys(t *testing.T, what string, got, want []string, dupsOK bool) {
	t.Helper()
	seen := make(map[string]int, len(got))
	for _, k := range got {
		seen[k]++
	}
	wanted := make(map[string]bool, len(want))
	var missing, extra, dups []string
	for _, k := range want {
		wanted[k] = true
		if seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range seen {
		if !wanted[k] {
			extra = append(extra, k)
		}
		if n > 1 && !dupsOK {
			dups = append(dups, k)
		}
	}
	if len(missing)+len(extra)+len(dups) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		slices.Sort(dups)
		t.Errorf("%s: %d keys for %d wanted; missing %d %v, unexpected %d %v, duplicated %d %v",
			what, len(got), len(want), len(missing), firstKeys(missing), len(extra), firstKeys(extra), len(dups), firstKeys(dups))
	}
}

func firstKeys(keys []string) []string { return keys[:min(len(keys), 5)] }

func checkGoFlushall(t *testing.T, rdb *redis.Client) {
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	checkGoDbsize(t, rdb, 0)
}

func checkGoDbsize(t *testing.T, rdb *redis.Client, want int64) {
	t.Helper()
	n, err := rdb.DBSize(t.Context()).Result()
	if err != nil {
		t.Fatalf("DBSIZE: %v", err)
	}
	if n != want {
		t.Errorf("DBSIZE = %d, want %d", n, want)
	}
}

// checkGoHandshake reads back what go-redis's connect handshake set: HELLO
// with the protocol version, then CLIENT SETINFO lib-name and lib-ver.
func checkGoHandshake(t *testing.T, rdb *redis.Client, target clientTarget, protocol int) {
	ctx := t.Context()
	info, err := rdb.ClientInfo(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	// go-redis falls back to RESP2 without a word when HELLO fails; the
	// server's resp= field says which one it agreed to.
	if info.Resp != protocol {
		t.Errorf("CLIENT INFO resp=%d, want %d (HELLO %d refused?)", info.Resp, protocol, protocol)
	}
	if !target.setinfo {
		err := rdb.Do(ctx, "client", "setinfo", "lib-name", "check").Err()
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			t.Errorf("CLIENT SETINFO on a server without it: err = %v, want a server error", err)
		}
		return
	}
	// go-redis names itself after the Go release, spaces made dashes.
	wantName := fmt.Sprintf("go-redis(,%s)", strings.ReplaceAll(runtime.Version(), " ", "-"))
	if info.LibName != wantName || info.LibVer != redis.Version() {
		t.Errorf("CLIENT INFO lib-name=%q lib-ver=%q, want %q and %q", info.LibName, info.LibVer, wantName, redis.Version())
	}
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	id := "id=" + strconv.FormatInt(info.ID, 10) + " "
	var mine []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if strings.HasPrefix(line, id) {
			mine = append(mine, line)
		}
	}
	if len(mine) != 1 || !strings.Contains(mine[0], " lib-name="+wantName+" ") {
		t.Errorf("CLIENT LIST lines of %s= %q, want one with lib-name=%s; whole list:\n%s", id, mine, wantName, list)
	}
}

func checkGoWrite(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	keys := clientScanKeyNames()
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, k, 0)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline of %d SETs: %v", len(keys), err)
	}
	for _, c := range cmds {
		if s, err := c.(*redis.StatusCmd).Result(); err != nil || s != "OK" {
			t.Fatalf("%v = %q, %v", c.Args(), s, err)
		}
	}
}

// checkGoInfo parses INFO with go-redis's InfoMap: all default sections,
// then the cluster and keyspace sections alone.
func checkGoInfo(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	info, err := rdb.InfoMap(ctx).Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	if info["Server"]["redis_version"] == "" {
		t.Errorf("INFO has no redis_version in its Server section: %v", info["Server"])
	}
	if mode := info["Server"]["redis_mode"]; mode != "standalone" {
		t.Errorf("INFO redis_mode = %q, want standalone", mode)
	}
	if v := info["Cluster"]["cluster_enabled"]; v != "0" {
		t.Errorf("INFO cluster_enabled = %q, want 0", v)
	}
	checkKeyspaceKeys(t, "INFO", info, clientScanKeys)

	cluster, err := rdb.InfoMap(ctx, "cluster").Result()
	if err != nil {
		t.Fatalf("INFO cluster: %v", err)
	}
	if v := cluster["Cluster"]["cluster_enabled"]; v != "0" || len(cluster) != 1 {
		t.Errorf("INFO cluster = %v, want only the Cluster section with cluster_enabled:0", cluster)
	}
	keyspace, err := rdb.InfoMap(ctx, "keyspace").Result()
	if err != nil {
		t.Fatalf("INFO keyspace: %v", err)
	}
	checkKeyspaceKeys(t, "INFO keyspace", keyspace, clientScanKeys)
}

// checkKeyspaceKeys checks the keys= count of db0 in a parsed INFO reply.
func checkKeyspaceKeys(t *testing.T, what string, info map[string]map[string]string, want int) {
	t.Helper()
	db0, ok := info["Keyspace"]["db0"]
	if !ok {
		t.Errorf("%s has no db0 line in its Keyspace section: %v", what, info["Keyspace"])
		return
	}
	for _, field := range strings.Split(db0, ",") {
		if n, ok := strings.CutPrefix(field, "keys="); ok {
			if n != strconv.Itoa(want) {
				t.Errorf("%s db0:%s, want keys=%d", what, db0, want)
			}
			return
		}
	}
	t.Errorf("%s db0:%s has no keys= field", what, db0)
}

func checkGoKeys(t *testing.T, rdb *redis.Client) {
	all := clientScanKeyNames()
	for _, prefix := range []string{"scan:", "scan:2", "nosuchprefix:"} {
		got, err := rdb.Keys(t.Context(), prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS %s*: %v", prefix, err)
		}
		sameKeys(t, "KEYS "+prefix+"*", got, keysWithPrefix(all, prefix), false)
	}
}

// checkGoScan follows SCAN's cursor until 0, as an application's loop
// does, without and with MATCH and COUNT.
func checkGoScan(t *testing.T, rdb *redis.Client) {
	all := clientScanKeyNames()
	for _, tc := range []struct {
		match string
		count int64
	}{{"", 0}, {"scan:1*", 100}, {"scan:1*", 5000}} {
		what := fmt.Sprintf("SCAN MATCH %q COUNT %d", tc.match, tc.count)
		var got []string
		var cursor uint64
		// A cursor that never comes back to 0 must fail, not hang: no
		// sane SCAN needs more calls than there are keys.
		for calls := 0; ; calls++ {
			if calls > clientScanKeys {
				t.Fatalf("%s: cursor not back to 0 after %d calls (last %d)", what, calls, cursor)
			}
			keys, next, err := rdb.Scan(t.Context(), cursor, tc.match, tc.count).Result()
			if err != nil {
				t.Fatalf("%s cursor %d: %v", what, cursor, err)
			}
			got = append(got, keys...)
			if cursor = next; cursor == 0 {
				break
			}
		}
		want := all
		if tc.match != "" {
			want = keysWithPrefix(all, strings.TrimSuffix(tc.match, "*"))
		}
		sameKeys(t, what, got, want, true)
	}
}

// scriptKeyNames returns keys whose slots reach every master of a
// 3-master cluster made by redis-cli (thirds of the slot space), so that
// EVALSHA is seen to work wherever SCRIPT LOAD was not sent by chance.
func scriptKeyNames(t *testing.T, prefix string) []string {
	keys := make([]string, clientScriptKeys)
	var thirds [3]bool
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
		thirds[min(int(slotmap.Slot([]byte(keys[i])))/5461, 2)] = true
	}
	if thirds != [3]bool{true, true, true} {
		t.Fatalf("the script keys do not reach every third of the slot space: %v", thirds)
	}
	return keys
}

func checkGoScripts(t *testing.T, rdb *redis.Client) {
	ctx := t.Context()
	keys := scriptKeyNames(t, "script:")
	sha, err := rdb.ScriptLoad(ctx, "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])").Result()
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	for _, k := range keys {
		got, err := rdb.EvalSha(ctx, sha, []string{k}, "v-"+k).Result()
		if err != nil || got != "v-"+k {
			t.Errorf("EVALSHA on %s (slot %d) = %v, %v; want v-%s", k, slotmap.Slot([]byte(k)), got, err, k)
		}
	}

	// Script.Run sends EVALSHA and, on NOSCRIPT, EVAL.
	incr := redis.NewScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
	for _, k := range keys {
		got, err := incr.Run(ctx, rdb, []string{"n" + k}, 3).Int()
		if err != nil || got != 3 {
			t.Errorf("Script.Run on n%s (slot %d) = %d, %v; want 3", k, slotmap.Slot([]byte("n"+k)), got, err)
		}
	}
	if exists, err := rdb.ScriptExists(ctx, sha, incr.Hash()).Result(); err != nil || !slices.Equal(exists, []bool{true, true}) {
		t.Errorf("SCRIPT EXISTS %s %s = %v, %v; want both loaded", sha, incr.Hash(), exists, err)
	}
}

// testGoRedisCluster uses the proxy through a go-redis ClusterClient given
// only the proxy's address: it must find a one-node cluster owning every
// slot and send everything there.
func testGoRedisCluster(t *testing.T, target clientTarget) {
	ctx := t.Context()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{target.addr}, MaxRetries: -1})
	t.Cleanup(func() { cc.Close() })

	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	if len(slots) != 1 || slots[0].Start != 0 || slots[0].End != slotmap.NumSlots-1 ||
		len(slots[0].Nodes) == 0 || slots[0].Nodes[0].Addr != target.addr {
		t.Errorf("CLUSTER SLOTS = %+v, want one range 0-%d served by %s", slots, slotmap.NumSlots-1, target.addr)
	}

	if err := cc.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
		return shard.FlushAll(ctx).Err()
	}); err != nil {
		t.Fatalf("FLUSHALL on every shard: %v", err)
	}

	const n = 200
	keys := make([]string, n)
	want := make([]any, n)
	for i := range keys {
		keys[i] = "cc:" + strconv.Itoa(i)
		want[i] = "v" + strconv.Itoa(i)
		if err := cc.Set(ctx, keys[i], want[i], 0).Err(); err != nil {
			t.Fatalf("SET %s (slot %d): %v", keys[i], slotmap.Slot([]byte(keys[i])), err)
		}
	}
	for i, k := range keys {
		if got, err := cc.Get(ctx, k).Result(); err != nil || got != want[i] {
			t.Errorf("GET %s (slot %d) = %q, %v; want %q", k, slotmap.Slot([]byte(k)), got, err, want[i])
		}
	}
	got, err := cc.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatalf("MGET of %d keys in many slots: %v", n, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("MGET of %d keys in many slots = %v..., want %v...", n, got[:min(len(got), 5)], want[:5])
	}

	// A pipeline, which the ClusterClient splits by node: all of it goes
	// to the proxy.
	cmds, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Incr(ctx, k+":n")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline of %d INCRs: %v", n, err)
	}
	for _, c := range cmds {
		if v, err := c.(*redis.IntCmd).Result(); err != nil || v != 1 {
			t.Errorf("%v = %d, %v; want 1", c.Args(), v, err)
		}
	}
	if size, err := cc.DBSize(ctx).Result(); err != nil || size != 2*n {
		t.Errorf("DBSIZE through the ClusterClient = %d, %v; want %d", size, err, 2*n)
	}
}
