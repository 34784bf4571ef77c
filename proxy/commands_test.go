package proxy

// Integration tests of the commands the proxy answers itself or sends to
// every master (KEYS, SCAN, SCRIPT, FUNCTION, CONFIG SET, WAIT, INFO...).
// The differential test compares the proxy's replies with one
// redis-server's; these check what it cannot: the effect on each cluster
// node, asked directly, and the proxy's own rules (a SCAN cursor that is a
// position in the slot space, RANDOMKEY weighted by the masters' sizes,
// scripts the proxy remembers and loads again).

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestProxyCommands runs the subtests on one cluster of three masters
// with a replica each (WAIT and CONFIG SET need replicas), in order. Each
// subtest starts from a keyspace it empties itself.
func TestProxyCommands(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	f := newCmdCluster(t, c)

	t.Run("KeysDBSizeFlush", func(t *testing.T) { testKeysDBSizeFlush(t, f) })
	t.Run("RandomKey", func(t *testing.T) { testRandomKey(t, f) })
	t.Run("Scan", func(t *testing.T) { testScan(t, f) })
	t.Run("Scripts", func(t *testing.T) { testScripts(t, f) })
	t.Run("EvalShaReloads", func(t *testing.T) { testEvalShaReloads(t, f) })
	t.Run("Functions", func(t *testing.T) { testFunctions(t, f) })
	t.Run("Config", func(t *testing.T) { testConfig(t, f) })
	t.Run("Wait", func(t *testing.T) { testWait(t, f) })
	t.Run("ServerCommands", func(t *testing.T) { testServerCommands(t, f) })
	t.Run("SlotArgument", func(t *testing.T) { testSlotArgument(t, f) })
	t.Run("Info", func(t *testing.T) { testInfoThroughProxy(t, f) })
	// The busy scripts come last: a kill that fails leaves a master busy
	// until the script gives up by itself.
	t.Run("ScriptKill", func(t *testing.T) { testScriptKill(t, f, f.p, false) })
	t.Run("ScriptKillOneBackendConnection", func(t *testing.T) {
		// ConnsPerNode 1, the production default: the two clients'
		// commands share the one connection to the busy master.
		testScriptKill(t, f, startProxy(t, c, Options{}, router.Options{ConnsPerNode: 1}), true)
	})
}

// cmdCluster is the cluster of TestProxyCommands and what the subtests
// need to know of it.
type cmdCluster struct {
	c       *clustertest.Cluster
	p       *testProxy
	cl      *redis.Client // a plain RESP2 client of p
	masters []string
	owners  [slotmap.NumSlots]string
}

func newCmdCluster(t *testing.T, c *clustertest.Cluster) *cmdCluster {
	t.Helper()
	p := startProxy(t, c, Options{}, router.Options{})
	masters, err := c.MasterAddrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3", len(masters))
	}
	return &cmdCluster{c: c, p: p, cl: p.client(t, ""), masters: masters, owners: slotOwners(t, c)}
}

// ownerOfKey is the master that serves key.
func (f *cmdCluster) ownerOfKey(key string) string {
	return f.owners[slotmap.Slot([]byte(key))]
}

// keysOn names keys prefix0, prefix1... and groups them by master until
// each master has n.
func (f *cmdCluster) keysOn(prefix string, n int) map[string][]string {
	by := make(map[string][]string)
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		m := f.ownerOfKey(k)
		if len(by[m]) < n {
			by[m] = append(by[m], k)
		}
		done := true
		for _, addr := range f.masters {
			done = done && len(by[addr]) == n
		}
		if done {
			return by
		}
	}
}

// flush empties every master directly, not through the proxy under test.
func (f *cmdCluster) flush(t *testing.T) {
	t.Helper()
	for _, m := range f.masters {
		if err := f.c.Client(m).FlushAll(context.Background()).Err(); err != nil {
			t.Fatalf("FLUSHALL on %s: %v", m, err)
		}
	}
}

// set writes key=key for each key, through the proxy.
func (f *cmdCluster) set(t *testing.T, keys ...string) {
	t.Helper()
	ctx := context.Background()
	pipe := f.cl.Pipeline()
	for _, k := range keys {
		pipe.Set(ctx, k, k, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("SET through the proxy: %v", err)
	}
}

// dbsizes returns each master's own DBSIZE.
func (f *cmdCluster) dbsizes(t *testing.T) map[string]int64 {
	t.Helper()
	sizes := make(map[string]int64)
	for _, m := range f.masters {
		n, err := f.c.Client(m).DBSize(context.Background()).Result()
		if err != nil {
			t.Fatalf("DBSIZE on %s: %v", m, err)
		}
		sizes[m] = n
	}
	return sizes
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func flatten(by map[string][]string) []string {
	var all []string
	for _, ks := range by {
		all = append(all, ks...)
	}
	return all
}

// wantError fails t unless err is the error reply want (without '-').
func wantError(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || errors.Is(err, redis.Nil) || err.Error() != want {
		t.Errorf("%s: error %v, want %q", what, err, want)
	}
}

// ---------------------------------------------------------------------------

func testKeysDBSizeFlush(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	by := f.keysOn("kd:", 40)
	all := flatten(by)
	f.set(t, all...)

	got, err := f.cl.Keys(ctx, "kd:*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	if !slices.Equal(sortedCopy(got), sortedCopy(all)) {
		t.Errorf("KEYS kd:* through the proxy: %d keys %v, want each of the %d written once", len(got), firstKeys(sortedCopy(got)), len(all))
	}
	for _, m := range f.masters {
		own, err := f.c.Client(m).Keys(ctx, "kd:*").Result()
		if err != nil || !slices.Equal(sortedCopy(own), sortedCopy(by[m])) {
			t.Errorf("KEYS on %s itself: %d keys, %v; want its %d", m, len(own), err, len(by[m]))
		}
	}
	if got, err := f.cl.Keys(ctx, "nomatch:*").Result(); err != nil || got == nil || len(got) != 0 {
		t.Errorf("KEYS matching nothing: %#v, %v; want an empty array", got, err)
	}

	var sum int64
	for _, n := range f.dbsizes(t) {
		sum += n
	}
	if n, err := f.cl.DBSize(ctx).Result(); err != nil || n != sum || n != int64(len(all)) {
		t.Errorf("DBSIZE through the proxy: %d, %v; the masters hold %d, %d written", n, err, sum, len(all))
	}

	if r, err := f.cl.FlushAll(ctx).Result(); err != nil || r != "OK" {
		t.Fatalf("FLUSHALL: %q, %v", r, err)
	}
	for m, n := range f.dbsizes(t) {
		if n != 0 {
			t.Errorf("after FLUSHALL through the proxy, %s holds %d keys", m, n)
		}
	}

	f.set(t, all...)
	if r, err := f.cl.FlushDBAsync(ctx).Result(); err != nil || r != "OK" {
		t.Fatalf("FLUSHDB ASYNC: %q, %v", r, err)
	}
	// An asynchronous flush frees the memory later, but the keyspace is
	// empty when it answers.
	for m, n := range f.dbsizes(t) {
		if n != 0 {
			t.Errorf("after FLUSHDB ASYNC through the proxy, %s holds %d keys", m, n)
		}
	}
	if n, err := f.cl.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE after the flush: %d, %v", n, err)
	}
	wantError(t, "FLUSHALL SOMETIMES", f.cl.Do(ctx, "FLUSHALL", "SOMETIMES").Err(), "ERR syntax error")
}

// ---------------------------------------------------------------------------

func testRandomKey(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	if k, err := f.cl.RandomKey(ctx).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("RANDOMKEY on an empty cluster: %q, %v; want nil", k, err)
	}
	rc := dialRESP(t, f.p.Addr)
	if r := rc.do("RANDOMKEY"); r != "$-1\r\n" {
		t.Errorf("RANDOMKEY on an empty cluster, raw: %q", r)
	}

	by := f.keysOn("rk:", 30)
	big, small := f.masters[0], f.masters[1]
	f.set(t, by[big]...)
	onBig := make(map[string]bool)
	for _, k := range by[big] {
		onBig[k] = true
	}
	randomKeys := func(n int) []string {
		t.Helper()
		pipe := f.cl.Pipeline()
		cmds := make([]*redis.StringCmd, n)
		for i := range cmds {
			cmds[i] = pipe.RandomKey(ctx)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("%d RANDOMKEY: %v", n, err)
		}
		keys := make([]string, n)
		for i, c := range cmds {
			keys[i] = c.Val()
		}
		return keys
	}
	for _, k := range randomKeys(50) {
		if !onBig[k] {
			t.Fatalf("RANDOMKEY with keys only on %s: %q, not one of them", big, k)
		}
	}

	// 30 keys on one master, 10 on another: three in four should come
	// from the first. The bounds are loose enough never to fail by chance
	// (400 draws: the share's standard deviation is about 2%).
	f.set(t, by[small][:10]...)
	onSmall := make(map[string]bool)
	for _, k := range by[small][:10] {
		onSmall[k] = true
	}
	fromBig := 0
	for _, k := range randomKeys(400) {
		switch {
		case onBig[k]:
			fromBig++
		case onSmall[k]:
		default:
			t.Fatalf("RANDOMKEY: %q, which was never written", k)
		}
	}
	if share := float64(fromBig) / 400; share < 0.55 || share > 0.92 {
		t.Errorf("RANDOMKEY with 30:10 keys on two masters: %.0f%% from the first, want about 75%%", 100*share)
	}
}

// ---------------------------------------------------------------------------

// scanTypes are the types SCAN TYPE is checked with, as TYPE names them.
var scanTypes = []string{"string", "hash", "list", "set", "zset", "stream"}

// scanCall is one SCAN call's reply.
type scanCall struct {
	keys []string
	next uint64
}

func (f *cmdCluster) scanOnce(t *testing.T, args ...any) scanCall {
	t.Helper()
	v, err := f.cl.Do(context.Background(), append([]any{"SCAN"}, args...)...).Slice()
	if err != nil || len(v) != 2 {
		t.Fatalf("SCAN %v: %#v, %v", args, v, err)
	}
	next, err := strconv.ParseUint(v[0].(string), 10, 64)
	if err != nil {
		t.Fatalf("SCAN %v: cursor %q", args, v[0])
	}
	var keys []string
	for _, k := range v[1].([]any) {
		keys = append(keys, k.(string))
	}
	return scanCall{keys: keys, next: next}
}

// scanIteration runs a whole SCAN iteration with opts and checks the
// cursor: its low 14 bits are the next slot to visit, increasing call
// after call until 0, and a call returns only keys of the slots between
// its cursor's and the next one's.
func (f *cmdCluster) scanIteration(t *testing.T, opts ...any) (keys []string, calls int) {
	t.Helper()
	cursor := uint64(0)
	for {
		c := f.scanOnce(t, append([]any{strconv.FormatUint(cursor, 10)}, opts...)...)
		calls++
		from, to := cursor%slotmap.NumSlots, c.next%slotmap.NumSlots
		if c.next == 0 {
			to = slotmap.NumSlots
		}
		if to <= from {
			t.Fatalf("SCAN %d %v: next cursor %d, whose slot %d is not after %d", cursor, opts, c.next, to, from)
		}
		for _, k := range c.keys {
			if s := uint64(slotmap.Slot([]byte(k))); s < from || s >= to {
				t.Errorf("SCAN %d %v returned %q of slot %d, outside the call's slots %d-%d", cursor, opts, k, s, from, to-1)
			}
		}
		keys = append(keys, c.keys...)
		if c.next == 0 {
			return keys, calls
		}
		if calls > slotmap.NumSlots {
			t.Fatalf("SCAN %v: no end after %d calls", opts, calls)
		}
		cursor = c.next
	}
}

func testScan(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	byType := make(map[string][]string)
	var all []string
	pipe := f.cl.Pipeline()
	for _, typ := range scanTypes {
		for i := range 30 {
			k := fmt.Sprintf("sc:%s:%d", typ, i)
			byType[typ] = append(byType[typ], k)
			all = append(all, k)
			switch typ {
			case "string":
				pipe.Set(ctx, k, "v", 0)
			case "hash":
				pipe.HSet(ctx, k, "f", "v")
			case "list":
				pipe.RPush(ctx, k, "v")
			case "set":
				pipe.SAdd(ctx, k, "v")
			case "zset":
				pipe.ZAdd(ctx, k, redis.Z{Score: 1, Member: "v"})
			case "stream":
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"f", "v"}})
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// Whole iterations return every key once, and COUNT sizes the calls:
	// about COUNT keys each, so about len(all)/COUNT calls.
	for _, count := range []int{1, 10, 50, 16384} {
		keys, calls := f.scanIteration(t, "COUNT", strconv.Itoa(count))
		if !slices.Equal(sortedCopy(keys), sortedCopy(all)) {
			t.Errorf("SCAN COUNT %d: a whole iteration returned %d keys, want each of the %d once", count, len(keys), len(all))
		}
		want := (len(all) + count - 1) / count
		if calls < want/3 || calls > 3*want+8 {
			t.Errorf("SCAN COUNT %d: a whole iteration of %d keys took %d calls, want about %d", count, len(all), calls, want)
		}
	}
	if keys, calls := f.scanIteration(t); calls < 180/10/3 || len(keys) != len(all) {
		t.Errorf("SCAN without COUNT: %d keys in %d calls, want COUNT 10's", len(keys), calls)
	}

	// A cursor names its slot and, above it, how many slots to visit.
	k0 := byType["hash"][0]
	slot := uint64(slotmap.Slot([]byte(k0)))
	var inSlot []string
	for _, k := range all {
		if uint64(slotmap.Slot([]byte(k))) == slot {
			inSlot = append(inSlot, k)
		}
	}
	for _, cursor := range []uint64{slot, slotmap.NumSlots + slot} {
		c := f.scanOnce(t, strconv.FormatUint(cursor, 10), "COUNT", "1000")
		if c.next%slotmap.NumSlots != (slot+1)%slotmap.NumSlots || !slices.Equal(sortedCopy(c.keys), sortedCopy(inSlot)) {
			t.Errorf("SCAN %d (slot %d, one slot): %v next %d; want %v and slot %d next", cursor, slot, c.keys, c.next, inSlot, slot+1)
		}
	}
	// A window of 100 slots from slot 0.
	c := f.scanOnce(t, strconv.Itoa(100*slotmap.NumSlots), "COUNT", "1000")
	if c.next%slotmap.NumSlots != 100 {
		t.Errorf("SCAN of a cursor with a window of 100 from slot 0: next %d, want slot 100", c.next)
	}
	for _, k := range c.keys {
		if slotmap.Slot([]byte(k)) >= 100 {
			t.Errorf("SCAN of the slots 0-99 returned %q of slot %d", k, slotmap.Slot([]byte(k)))
		}
	}
	// The largest cursor ("-1" as strtoul reads it) visits the last slot.
	for _, cursor := range []string{"18446744073709551615", "-1"} {
		if c := f.scanOnce(t, cursor); c.next != 0 || len(c.keys) > 0 && slotmap.Slot([]byte(c.keys[0])) != slotmap.NumSlots-1 {
			t.Errorf("SCAN %s: %v next %d, want the last slot's keys and the end", cursor, c.keys, c.next)
		}
	}

	// A slot is the smallest step: its keys come in one call, COUNT or not.
	tag := tagInSlotRange(0, slotmap.NumSlots)
	var dense []string
	for i := range 40 {
		dense = append(dense, fmt.Sprintf("sd:{%s}:%d", tag, i))
	}
	f.set(t, dense...)
	dslot := uint64(slotmap.Slot([]byte("{" + tag + "}")))
	if c := f.scanOnce(t, strconv.FormatUint(slotmap.NumSlots+dslot, 10), "COUNT", "1"); len(c.keys) < len(dense) {
		t.Errorf("SCAN COUNT 1 of a slot with %d keys: %d keys, want them all", len(dense), len(c.keys))
	}

	// MATCH and TYPE filter what a call found; the calls go on.
	wantFiltered := func(what string, want []string, opts ...any) {
		t.Helper()
		got, _ := f.scanIteration(t, opts...)
		if !slices.Equal(sortedCopy(got), sortedCopy(want)) {
			t.Errorf("SCAN %s: %d keys %v, want %d", what, len(got), firstKeys(sortedCopy(got)), len(want))
		}
	}
	wantFiltered("MATCH sc:hash:*", byType["hash"], "MATCH", "sc:hash:*", "COUNT", "20")
	var twenties []string
	for _, typ := range scanTypes {
		for i := 20; i < 30; i++ {
			twenties = append(twenties, fmt.Sprintf("sc:%s:%d", typ, i))
		}
	}
	wantFiltered("MATCH sc:*:2?", twenties, "MATCH", "sc:*:2?")
	for _, typ := range scanTypes {
		want := byType[typ]
		if typ == "string" {
			want = append(slices.Clone(want), dense...)
		}
		wantFiltered("TYPE "+typ, want, "COUNT", "100", "TYPE", typ)
	}
	wantFiltered("TYPE LIST MATCH sc:*:2?", twenties[20:30], "TYPE", "LIST", "MATCH", "sc:*:2?")
	wantFiltered("TYPE nosuchtype", nil, "TYPE", "nosuchtype")

	for _, c := range []struct {
		args []any
		want string
	}{
		{[]any{"SCAN", "abc"}, "ERR invalid cursor"},
		{[]any{"SCAN", "1x"}, "ERR invalid cursor"},
		{[]any{"SCAN", " 1"}, "ERR invalid cursor"},
		{[]any{"SCAN", "0", "COUNT", "0"}, "ERR syntax error"},
		{[]any{"SCAN", "0", "COUNT", "-5"}, "ERR syntax error"},
		{[]any{"SCAN", "0", "COUNT", "many"}, "ERR value is not an integer or out of range"},
		{[]any{"SCAN", "0", "COUNT"}, "ERR syntax error"},
		{[]any{"SCAN", "0", "COLOR", "blue"}, "ERR syntax error"},
	} {
		wantError(t, fmt.Sprint(c.args), f.cl.Do(ctx, c.args...).Err(), c.want)
	}
}

// ---------------------------------------------------------------------------

func sha1Hex(body string) string {
	sum := sha1.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// scriptOn reports whether master has the script sha in its cache.
func (f *cmdCluster) scriptOn(t *testing.T, master, sha string) bool {
	t.Helper()
	ex, err := f.c.Client(master).ScriptExists(context.Background(), sha).Result()
	if err != nil {
		t.Fatalf("SCRIPT EXISTS on %s: %v", master, err)
	}
	return ex[0]
}

func testScripts(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	if err := f.cl.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	body := "return 'scripts-" + strconv.FormatInt(time.Now().UnixNano(), 10) + "'"
	sha := sha1Hex(body)
	if got, err := f.cl.ScriptLoad(ctx, body).Result(); err != nil || got != sha {
		t.Fatalf("SCRIPT LOAD: %q, %v; want %s", got, err, sha)
	}
	for _, m := range f.masters {
		if !f.scriptOn(t, m, sha) {
			t.Errorf("SCRIPT LOAD through the proxy did not reach %s", m)
		}
	}
	unknown := sha1Hex("never loaded")
	exists := func(shas ...string) []bool {
		t.Helper()
		ex, err := f.cl.ScriptExists(ctx, shas...).Result()
		if err != nil {
			t.Fatalf("SCRIPT EXISTS: %v", err)
		}
		return ex
	}
	if ex := exists(sha, unknown, strings.ToUpper(sha)); !slices.Equal(ex, []bool{true, false, true}) {
		t.Errorf("SCRIPT EXISTS loaded, unknown, loaded in capitals: %v", ex)
	}

	// Lost on one master (a failover would do that): the proxy knows the
	// body, loads it where it is missing, so it still exists.
	if err := f.c.Client(f.masters[1]).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ex := exists(sha); !ex[0] {
		t.Errorf("SCRIPT EXISTS after a master lost a script the proxy knows: false")
	}

	// A script loaded on every master behind the proxy's back exists; once
	// one master loses it, the proxy cannot bring it back and says so.
	other := "return 'loaded-directly'"
	osha := sha1Hex(other)
	for _, m := range f.masters {
		if err := f.c.Client(m).ScriptLoad(ctx, other).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if ex := exists(osha); !ex[0] {
		t.Errorf("SCRIPT EXISTS of a script every master has: false")
	}
	if err := f.c.Client(f.masters[2]).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ex := exists(osha, sha); !slices.Equal(ex, []bool{false, true}) {
		t.Errorf("SCRIPT EXISTS of a script one master lost and the proxy never saw, and of one it knows: %v, want [false true]", ex)
	}

	// SCRIPT FLUSH empties every master and the proxy's memory.
	if r, err := f.cl.ScriptFlush(ctx).Result(); err != nil || r != "OK" {
		t.Fatalf("SCRIPT FLUSH: %q, %v", r, err)
	}
	for _, m := range f.masters {
		if f.scriptOn(t, m, sha) {
			t.Errorf("SCRIPT FLUSH through the proxy left the script on %s", m)
		}
	}
	if ex := exists(sha); ex[0] {
		t.Errorf("SCRIPT EXISTS after SCRIPT FLUSH: true")
	}
	for _, m := range f.masters {
		key := f.keysOn("sf:", 1)[m][0]
		err := f.cl.EvalSha(ctx, sha, []string{key}).Err()
		wantError(t, "EVALSHA after SCRIPT FLUSH, key on "+m, err, "NOSCRIPT No matching script. Please use EVAL.")
	}
	if r, err := f.cl.Do(ctx, "SCRIPT", "FLUSH", "ASYNC").Result(); err != nil || r != "OK" {
		t.Errorf("SCRIPT FLUSH ASYNC: %v, %v", r, err)
	}

	// A script's keys must share a slot, as on a cluster node.
	a, b := "{a}x", "{b}x"
	wantError(t, "EVAL with keys in two slots",
		f.cl.Eval(ctx, "return 1", []string{a, b}).Err(), "CROSSSLOT Keys in request don't hash to the same slot")
	wantError(t, "EVALSHA with keys in two slots",
		f.cl.EvalSha(ctx, sha1Hex("return 1"), []string{a, b}).Err(), "CROSSSLOT Keys in request don't hash to the same slot")
	if v, err := f.cl.Eval(ctx, "return redis.call('SET', KEYS[1], ARGV[1])", []string{"{a}1"}, "v").Result(); err != nil || v != "OK" {
		t.Errorf("EVAL with one key: %v, %v", v, err)
	}
	if v, err := f.cl.Eval(ctx, "return #KEYS + #ARGV", []string{"{a}1", "{a}2"}, "x").Result(); err != nil || v != int64(3) {
		t.Errorf("EVAL with two keys of one slot: %v, %v", v, err)
	}
	if v, err := f.cl.Eval(ctx, "return 'nokeys'", nil).Result(); err != nil || v != "nokeys" {
		t.Errorf("EVAL without keys: %v, %v", v, err)
	}

	wantError(t, "SCRIPT KILL with nothing running", f.cl.ScriptKill(ctx).Err(), "NOTBUSY No scripts in execution right now.")
}

// testEvalShaReloads: a master that lost a script (as a promoted replica
// or a reshard target has) still runs the EVALSHA, for keys on each master.
func testEvalShaReloads(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	loaded := "return 'loaded:' .. redis.call('GET', KEYS[1])"
	evaled := "return 'evaled:' .. redis.call('GET', KEYS[1])"
	if err := f.cl.ScriptLoad(ctx, loaded).Err(); err != nil {
		t.Fatal(err)
	}
	// EVAL teaches the proxy a script as SCRIPT LOAD does.
	anyKey := f.keysOn("es:", 1)[f.masters[0]][0]
	f.set(t, anyKey)
	if err := f.cl.Eval(ctx, evaled, []string{anyKey}).Err(); err != nil {
		t.Fatal(err)
	}
	by := f.keysOn("es:", 2)
	for _, m := range f.masters {
		f.set(t, by[m]...)
		for i, body := range []string{loaded, evaled} {
			key := by[m][i]
			if err := f.c.Client(m).ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			want := strings.SplitN(body[len("return '"):], ":", 2)[0] + ":" + key
			if v, err := f.cl.EvalSha(ctx, sha1Hex(body), []string{key}).Result(); err != nil || v != want {
				t.Errorf("EVALSHA on %s after it lost the script: %v, %v; want %q", m, v, err, want)
			}
			if !f.scriptOn(t, m, sha1Hex(body)) {
				t.Errorf("after the EVALSHA, %s still lacks the script: the proxy did not load it", m)
			}
			if err := f.c.Client(m).ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			// In capitals, as redis-server takes a sha too.
			if v, err := f.cl.Do(ctx, "EVALSHA_RO", strings.ToUpper(sha1Hex(body)), 1, key).Result(); err != nil || v != want {
				t.Errorf("EVALSHA_RO (sha in capitals) on %s after it lost the script: %v, %v; want %q", m, v, err, want)
			}
		}
	}
}

// busyScript spins until SCRIPT KILL, or for 8s at most, so that a kill
// that fails does not leave a master busy for the rest of the tests.
const busyScript = `local t0 = redis.call('TIME')
while true do
  local t = redis.call('TIME')
  if (t[1] - t0[1]) > 8 then return 'gave up' end
end`

// testScriptKill runs a busy script through one client of p and kills it
// through another, whose commands go over the same backend connection as
// the script's when sameConn is set, over the other one of the harness'
// two per master when not.
func testScriptKill(t *testing.T, f *cmdCluster, p *testProxy, sameConn bool) {
	ctx := context.Background()
	m := f.masters[2]
	key := f.keysOn("busy:", 1)[m][0]
	// The master answers other clients, and SCRIPT KILL, once a script
	// has run this long.
	if err := f.c.Client(m).ConfigSet(ctx, "lua-time-limit", "50").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever happened, the master must be free for what follows.
		clustertest.Eventually(t, 15*time.Second, func() error { return f.c.Client(m).Ping(ctx).Err() })
		if err := f.c.Client(m).ConfigSet(ctx, "lua-time-limit", "5000").Err(); err != nil {
			t.Error(err)
		}
	})

	runner := dialRESP(t, p.Addr)
	killer := dialRESP(t, p.Addr)
	if !sameConn {
		// A session's id picks its connection to a master (router.Request.Affinity).
		for clientID(t, killer)%2 == clientID(t, runner)%2 {
			killer = dialRESP(t, p.Addr)
		}
	}
	runner.write(respCommand("EVAL", busyScript, "1", key))
	deadline := time.Now().Add(2500 * time.Millisecond)
	for {
		r := killer.do("SCRIPT", "KILL")
		if r == "+OK\r\n" {
			break
		}
		if r != "-NOTBUSY No scripts in execution right now.\r\n" || time.Now().After(deadline) {
			t.Fatalf("SCRIPT KILL while a script is busy on %s: %q, want +OK", m, r)
		}
	}
	r, err := runner.tryReply(5 * time.Second)
	if err != nil || !strings.HasPrefix(r, "-ERR Script killed by user with SCRIPT KILL...") {
		t.Errorf("the busy EVAL after SCRIPT KILL: %q, %v; want redis' script-killed error", r, err)
	}
	if r := killer.do("SCRIPT", "KILL"); r != "-NOTBUSY No scripts in execution right now.\r\n" {
		t.Errorf("SCRIPT KILL once it is killed: %q", r)
	}
	if r := runner.do("GET", key); r != "$-1\r\n" {
		t.Errorf("the runner after its script was killed: GET %q", r)
	}
}

// clientID is the proxy's id of the client on rc.
func clientID(t *testing.T, rc *respConn) int64 {
	t.Helper()
	r := rc.do("CLIENT", "ID")
	id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r, ":"), "\r\n"), 10, 64)
	if err != nil || !strings.HasPrefix(r, ":") {
		t.Fatalf("CLIENT ID: %q", r)
	}
	return id
}

// ---------------------------------------------------------------------------

const functionLib = `#!lua name=cmdtestlib
redis.register_function('ct_get', function(keys, args) return redis.call('GET', keys[1]) end)
redis.register_function{function_name='ct_get_ro', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}
redis.register_function('ct_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)`

// librariesOn returns the library names master has.
func (f *cmdCluster) librariesOn(t *testing.T, master string) []string {
	t.Helper()
	libs, err := f.c.Client(master).FunctionList(context.Background(), redis.FunctionListQuery{}).Result()
	if err != nil {
		t.Fatalf("FUNCTION LIST on %s: %v", master, err)
	}
	var names []string
	for _, l := range libs {
		names = append(names, l.Name)
	}
	return names
}

func (f *cmdCluster) wantLibraries(t *testing.T, when string, want ...string) {
	t.Helper()
	for _, m := range f.masters {
		if got := f.librariesOn(t, m); !slices.Equal(got, want) {
			t.Errorf("%s: %s has libraries %v, want %v", when, m, got, want)
		}
	}
}

func testFunctions(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	if err := f.cl.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if name, err := f.cl.FunctionLoad(ctx, functionLib).Result(); err != nil || name != "cmdtestlib" {
		t.Fatalf("FUNCTION LOAD: %q, %v", name, err)
	}
	f.wantLibraries(t, "after FUNCTION LOAD", "cmdtestlib")
	wantError(t, "FUNCTION LOAD again", f.cl.FunctionLoad(ctx, functionLib).Err(), "ERR Library 'cmdtestlib' already exists")
	if name, err := f.cl.FunctionLoadReplace(ctx, functionLib).Result(); err != nil || name != "cmdtestlib" {
		t.Errorf("FUNCTION LOAD REPLACE: %q, %v", name, err)
	}

	by := f.keysOn("fn:", 1)
	for _, m := range f.masters {
		key := by[m][0]
		if v, err := f.cl.FCall(ctx, "ct_set", []string{key}, "val:"+key).Result(); err != nil || v != "OK" {
			t.Errorf("FCALL ct_set on a key of %s: %v, %v", m, v, err)
		}
		if v, err := f.c.Client(m).Get(ctx, key).Result(); err != nil || v != "val:"+key {
			t.Errorf("after FCALL ct_set, %s holds %q, %v", m, v, err)
		}
		if v, err := f.cl.FCall(ctx, "ct_get", []string{key}).Result(); err != nil || v != "val:"+key {
			t.Errorf("FCALL ct_get on a key of %s: %v, %v", m, v, err)
		}
		if v, err := f.cl.FCallRo(ctx, "ct_get_ro", []string{key}).Result(); err != nil || v != "val:"+key {
			t.Errorf("FCALL_RO ct_get_ro on a key of %s: %v, %v", m, v, err)
		}
	}
	wantError(t, "FCALL with keys in two slots",
		f.cl.FCall(ctx, "ct_get", []string{"{a}1", "{b}1"}).Err(), "CROSSSLOT Keys in request don't hash to the same slot")

	libs, err := f.cl.FunctionList(ctx, redis.FunctionListQuery{WithCode: true}).Result()
	if err != nil || len(libs) != 1 || libs[0].Name != "cmdtestlib" || len(libs[0].Functions) != 3 || libs[0].Code != functionLib {
		t.Errorf("FUNCTION LIST WITHCODE through the proxy: %+v, %v", libs, err)
	}
	if _, err := f.cl.Do(ctx, "FUNCTION", "STATS").Result(); err != nil {
		t.Errorf("FUNCTION STATS: %v", err)
	}
	dump, err := f.cl.FunctionDump(ctx).Result()
	if err != nil || dump == "" {
		t.Fatalf("FUNCTION DUMP: %d bytes, %v", len(dump), err)
	}
	wantError(t, "FUNCTION KILL with nothing running", f.cl.FunctionKill(ctx).Err(), "NOTBUSY No scripts in execution right now.")

	if r, err := f.cl.FunctionDelete(ctx, "cmdtestlib").Result(); err != nil || r != "OK" {
		t.Errorf("FUNCTION DELETE: %q, %v", r, err)
	}
	f.wantLibraries(t, "after FUNCTION DELETE")
	wantError(t, "FCALL after FUNCTION DELETE",
		f.cl.FCall(ctx, "ct_get", []string{by[f.masters[0]][0]}).Err(), "ERR Function not found")
	wantError(t, "FUNCTION DELETE of a library no more", f.cl.FunctionDelete(ctx, "cmdtestlib").Err(), "ERR Library not found")

	if r, err := f.cl.FunctionRestore(ctx, dump).Result(); err != nil || r != "OK" {
		t.Errorf("FUNCTION RESTORE: %q, %v", r, err)
	}
	f.wantLibraries(t, "after FUNCTION RESTORE", "cmdtestlib")
	for _, m := range f.masters {
		key := by[m][0]
		if v, err := f.cl.FCallRo(ctx, "ct_get_ro", []string{key}).Result(); err != nil || v != "val:"+key {
			t.Errorf("FCALL_RO after FUNCTION RESTORE, key on %s: %v, %v", m, v, err)
		}
	}
	if r, err := f.cl.FunctionFlush(ctx).Result(); err != nil || r != "OK" {
		t.Errorf("FUNCTION FLUSH: %q, %v", r, err)
	}
	f.wantLibraries(t, "after FUNCTION FLUSH")
	if libs, err := f.cl.FunctionList(ctx, redis.FunctionListQuery{}).Result(); err != nil || len(libs) != 0 {
		t.Errorf("FUNCTION LIST after FUNCTION FLUSH: %+v, %v", libs, err)
	}
}

// ---------------------------------------------------------------------------

func testConfig(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	if v, err := f.cl.ConfigGet(ctx, "maxmemory-samples").Result(); err != nil || v["maxmemory-samples"] != "5" {
		t.Errorf("CONFIG GET maxmemory-samples: %v, %v", v, err)
	}
	wantError(t, "CONFIG SET by default", f.cl.ConfigSet(ctx, "maxmemory-samples", "7").Err(), msgConfigSet)
	nodeValues := func() map[string]string {
		t.Helper()
		vals := make(map[string]string)
		for _, n := range f.c.Nodes {
			v, err := f.c.Client(n.Addr).ConfigGet(ctx, "maxmemory-samples").Result()
			if err != nil {
				t.Fatalf("CONFIG GET on %s: %v", n.Addr, err)
			}
			vals[n.Addr] = v["maxmemory-samples"]
		}
		return vals
	}
	for addr, v := range nodeValues() {
		if v != "5" {
			t.Errorf("the refused CONFIG SET changed %s: maxmemory-samples %s", addr, v)
		}
	}
	wantError(t, "CONFIG RESETSTAT", f.cl.ConfigResetStat(ctx).Err(),
		"ERR slotproxy does not support 'CONFIG RESETSTAT': it acts on the nodes' own statistics")
	wantError(t, "CONFIG REWRITE", f.cl.ConfigRewrite(ctx).Err(),
		"ERR slotproxy does not support 'CONFIG REWRITE': it acts on the nodes' own files")

	all := startProxy(t, f.c, Options{ConfigSetAllNodes: true}, router.Options{})
	acl := all.client(t, "")
	t.Cleanup(func() {
		for _, n := range f.c.Nodes {
			f.c.Client(n.Addr).ConfigSet(ctx, "maxmemory-samples", "5")
		}
	})
	if len(f.c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 3 masters and 3 replicas", len(f.c.Nodes))
	}
	// A replica joins the slot table once the cluster calls it online,
	// which after its first sync takes a gossip round or two.
	clustertest.Eventually(t, 10*time.Second, func() error {
		n := 0
		if tb := all.Router.Table(); tb != nil {
			for _, sh := range tb.Shards() {
				n += len(sh.Replicas)
			}
		}
		if n != 3 {
			return fmt.Errorf("%d replicas in the proxy's slot table, want 3", n)
		}
		return nil
	})
	if r, err := acl.ConfigSet(ctx, "maxmemory-samples", "7").Result(); err != nil || r != "OK" {
		t.Fatalf("CONFIG SET with ConfigSetAllNodes: %q, %v", r, err)
	}
	for addr, v := range nodeValues() {
		if v != "7" {
			t.Errorf("after CONFIG SET to every node, %s has maxmemory-samples %s, want 7", addr, v)
		}
	}
	if err := acl.ConfigSet(ctx, "maxmemory-samples", "not-a-number").Err(); err == nil ||
		!strings.HasPrefix(err.Error(), "ERR CONFIG SET failed") {
		t.Errorf("CONFIG SET of a bad value to every node: %v, want the nodes' error", err)
	}
	if v, err := acl.ConfigGet(ctx, "maxmemory-samples").Result(); err != nil || v["maxmemory-samples"] != "7" {
		t.Errorf("CONFIG GET after CONFIG SET: %v, %v", v, err)
	}
}

// ---------------------------------------------------------------------------

func testWait(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	// WAIT counts the replicas of the client's own writes: one
	// connection throughout.
	conn := f.cl.Conn()
	defer conn.Close()
	by := f.keysOn("wt:", 2)
	for _, m := range f.masters {
		for _, k := range by[m] {
			if err := conn.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := conn.Wait(ctx, 1, 1000).Result(); err != nil || n != 1 {
		t.Errorf("WAIT 1 1000 after writes to every master: %d, %v; want 1", n, err)
	}
	if err := conn.Set(ctx, by[f.masters[1]][0], "again", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Wait(ctx, 1, 1000).Result(); err != nil || n != 1 {
		t.Errorf("WAIT 1 1000 after a write to one master: %d, %v; want 1", n, err)
	}
	// The replicas have what WAIT said they acknowledged.
	for _, m := range f.masters {
		rc := dialRESP(t, replicaOf(t, f.c, m))
		if r := rc.do("READONLY"); r != "+OK\r\n" {
			t.Fatalf("READONLY on a replica: %q", r)
		}
		want := "$1\r\nv\r\n"
		if m == f.masters[1] {
			want = "$5\r\nagain\r\n"
		}
		if r := rc.do("GET", by[m][0]); r != want {
			t.Errorf("the replica of %s after WAIT: GET %s = %q, want %q", m, by[m][0], r, want)
		}
	}

	start := time.Now()
	n, err := conn.Wait(ctx, 0, 0).Result()
	if err != nil || n < 0 || n > 1 {
		t.Errorf("WAIT 0 0: %d, %v", n, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("WAIT 0 0 took %v, want an answer at once", d)
	}
	// More replicas than there are: the answer when the time is up.
	if err := conn.Set(ctx, by[f.masters[0]][0], "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if n, err := conn.Wait(ctx, 2, 200).Result(); err != nil || n != 1 {
		t.Errorf("WAIT 2 200 with one replica each: %d, %v; want 1", n, err)
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("WAIT 2 200 answered after %v, before its timeout", d)
	}
	// WAIT 2 0 would block the shared connection for ever: the proxy
	// bounds it to maxWaitMillis and answers the count acknowledged.
	start = time.Now()
	if n, err := conn.Wait(ctx, 2, 0).Result(); err != nil || n != 1 {
		t.Errorf("WAIT 2 0 with one replica each: %d, %v; want 1", n, err)
	}
	if d := time.Since(start); d < maxWaitMillis*time.Millisecond*9/10 || d > 3*maxWaitMillis*time.Millisecond {
		t.Errorf("WAIT 2 0 answered after %v, want about %d ms", d, maxWaitMillis)
	}

	wantError(t, "WAIT 0 -1", conn.Do(ctx, "WAIT", "0", "-1").Err(), "ERR timeout is negative")
	wantError(t, "WAIT x 0", conn.Do(ctx, "WAIT", "x", "0").Err(), "ERR value is not an integer or out of range")
	wantError(t, "WAIT 0 x", conn.Do(ctx, "WAIT", "0", "x").Err(), "ERR timeout is not an integer or out of range")
	wantError(t, "WAIT 0", conn.Do(ctx, "WAIT", "0").Err(), "ERR wrong number of arguments for 'wait' command")
}

// ---------------------------------------------------------------------------

func testServerCommands(t *testing.T, f *cmdCluster) {
	rc := dialRESP(t, f.p.Addr)
	if r := rc.do("ROLE"); r != "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n" {
		t.Errorf("ROLE: %q", r)
	}
	r := rc.do("LASTSAVE")
	last, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r, ":"), "\r\n"), 10, 64)
	if err != nil || !strings.HasPrefix(r, ":") || last <= 0 || last > time.Now().Unix() {
		t.Errorf("LASTSAVE: %q, want an integer no later than now", r)
	}
	before := time.Now().Unix()
	tm, err := f.cl.Time(context.Background()).Result()
	if err != nil || tm.Unix() < before-1 || tm.Unix() > time.Now().Unix()+1 {
		t.Errorf("TIME: %v, %v; want about now", tm, err)
	}
	r = rc.do("TIME")
	parts := strings.Split(r, "\r\n")
	if len(parts) != 6 || parts[0] != "*2" {
		t.Errorf("TIME raw: %q, want two integers", r)
	} else {
		sec, err1 := strconv.ParseInt(parts[2], 10, 64)
		usec, err2 := strconv.ParseInt(parts[4], 10, 64)
		if err1 != nil || err2 != nil || sec < before-1 || usec < 0 || usec >= 1e6 {
			t.Errorf("TIME raw: %q, want seconds and microseconds", r)
		}
	}

	// A cluster node's own replies, compared byte for byte.
	by := f.keysOn("mv:", 1)
	m := f.masters[0]
	key := by[m][0]
	f.set(t, key)
	node := dialRESP(t, m)
	for _, args := range [][]string{
		{"MOVE", key, "1"},
		{"SWAPDB", "0", "1"},
		{"SELECT", "1"},
		{"SELECT", "0"},
		{"SELECT", "x"},
	} {
		want := node.do(args...)
		if got := rc.do(args...); got != want {
			t.Errorf("%v through the proxy: %q, the cluster node answers %q", args, got, want)
		}
	}
	if v, err := f.c.Client(m).Get(context.Background(), key).Result(); err != nil || v != key {
		t.Errorf("after MOVE, %s holds %q, %v", key, v, err)
	}
}

// ---------------------------------------------------------------------------

func testSlotArgument(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	by := f.keysOn("sa:", 60)
	f.set(t, flatten(by)...)
	// Tags put several keys in one slot.
	for _, m := range f.masters {
		tag := by[m][0]
		for i := range 5 {
			f.set(t, fmt.Sprintf("{%s}:%d", tag, i))
		}
	}
	for _, m := range f.masters {
		node := dialRESP(t, m)
		slots := []int{int(slotmap.Slot([]byte(by[m][0]))), int(slotmap.Slot([]byte(by[m][1])))}
		// And a slot of m's without a key of the test, if there is one.
		for s := range slotmap.NumSlots {
			if f.owners[s] == m && s != slots[0] && s != slots[1] {
				slots = append(slots, s)
				break
			}
		}
		rc := dialRESP(t, f.p.Addr)
		for _, s := range slots {
			for _, args := range [][]string{
				{"CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(s)},
				{"CLUSTER", "GETKEYSINSLOT", strconv.Itoa(s), "100"},
				{"CLUSTER", "GETKEYSINSLOT", strconv.Itoa(s), "2"},
			} {
				want := node.do(args...)
				if got := rc.do(args...); got != want {
					t.Errorf("%v through the proxy: %q; its master %s answers %q", args, got, m, want)
				}
			}
		}
		n, err := f.cl.ClusterCountKeysInSlot(ctx, slots[0]).Result()
		if err != nil || n != 6 {
			t.Errorf("CLUSTER COUNTKEYSINSLOT %d (a tagged slot): %d, %v; want 6", slots[0], n, err)
		}
	}

	node := dialRESP(t, f.masters[0])
	rc := dialRESP(t, f.p.Addr)
	for _, args := range [][]string{
		{"CLUSTER", "COUNTKEYSINSLOT", "16384"},
		{"CLUSTER", "COUNTKEYSINSLOT", "-1"},
		{"CLUSTER", "COUNTKEYSINSLOT", "abc"},
		{"CLUSTER", "GETKEYSINSLOT", "16384", "1"},
		{"CLUSTER", "GETKEYSINSLOT", "-1", "1"},
		{"CLUSTER", "GETKEYSINSLOT", "abc", "1"},
		{"CLUSTER", "GETKEYSINSLOT", "0", "-1"},
		{"CLUSTER", "GETKEYSINSLOT", "0", "abc"},
	} {
		want := node.do(args...)
		if got := rc.do(args...); got != want {
			t.Errorf("%v through the proxy: %q; a cluster node answers %q", args, got, want)
		}
	}
}

// ---------------------------------------------------------------------------

// infoField returns the value of name in an INFO text, and whether it is
// there.
func infoField(text, name string) (string, bool) {
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v, true
		}
	}
	return "", false
}

func testInfoThroughProxy(t *testing.T, f *cmdCluster) {
	ctx := context.Background()
	f.flush(t)
	by := f.keysOn("if:", 25)
	all := flatten(by)
	f.set(t, all...)
	for _, k := range all[:9] {
		if err := f.cl.Expire(ctx, k, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	text, err := f.cl.Info(ctx, "keyspace").Result()
	if err != nil {
		t.Fatal(err)
	}
	db0, ok := infoField(text, "db0")
	if !ok || !strings.HasPrefix(db0, fmt.Sprintf("keys=%d,expires=9,avg_ttl=", len(all))) {
		t.Errorf("INFO keyspace db0: %q, want keys=%d,expires=9", db0, len(all))
	}
	if strings.Contains(text, "# Server") {
		t.Errorf("INFO keyspace has other sections: %q", text)
	}

	text, err = f.cl.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := infoField(text, "redis_mode"); v != "standalone" {
		t.Errorf("INFO server redis_mode: %q, want standalone", v)
	}
	if v, _ := infoField(text, "tcp_port"); v != f.p.Addr[strings.LastIndexByte(f.p.Addr, ':')+1:] {
		t.Errorf("INFO server tcp_port: %q, want the proxy's port of %s", v, f.p.Addr)
	}

	for _, section := range []string{"proxy", "everything"} {
		text, err := f.cl.Info(ctx, section).Result()
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"masters": "3", "replicas": "3", "slots_covered": "16384", "masters_in_info": "3"} {
			if v, _ := infoField(text, name); v != want {
				t.Errorf("INFO %s %s: %q, want %s", section, name, v, want)
			}
		}
	}
	text, err = f.cl.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := infoField(text, "slots_covered"); ok || strings.Contains(text, "# Proxy") {
		t.Errorf("INFO without arguments shows the proxy section, which only INFO everything and INFO proxy show")
	}
	if _, ok := infoField(text, "db0"); !ok {
		t.Errorf("INFO without arguments lacks the keyspace")
	}
}
