package proxy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestKeyspaceAcrossTopologyChanges walks one SCAN iteration through a
// manual failover, a slot migration caught half done and a slot migrated
// whole between two calls, and runs an EVALSHA on a master promoted by the
// failover, whose script cache is empty.
func TestKeyspaceAcrossTopologyChanges(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c, Options{}, router.Options{})
	cl := p.client(t, "")

	const n = 3000
	want := make(map[string]bool, n)
	pipe := cl.Pipeline()
	for i := range n {
		k := "sk:" + strconv.Itoa(i)
		want[k] = true
		pipe.Set(ctx, k, i, 0)
	}
	// Two slots with ten keys each, for the migrations below.
	halfTag, wholeTag := tagInSlotRange(6000, 7000), tagInSlotRange(9000, 10000)
	for _, tag := range []string{halfTag, wholeTag} {
		for i := range 10 {
			k := "sk:{" + tag + "}:" + strconv.Itoa(i)
			want[k] = true
			pipe.Set(ctx, k, i, 0)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	body := "return redis.call('GET', KEYS[1])"
	sum := sha1.Sum([]byte(body))
	sha := hex.EncodeToString(sum[:])
	if got, err := cl.ScriptLoad(ctx, body).Result(); err != nil || got != sha {
		t.Fatalf("SCRIPT LOAD: %q, %v", got, err)
	}

	// SCAN with COUNT 100 visits a few hundred slots a call: the changes
	// below land between calls, on slots before and after the cursor,
	// whose low 14 bits are the next slot.
	const count = 100
	seen := map[string]int{}
	cursor := uint64(0)
	calls, returned := 0, 0
	position := func() int { return int(cursor % slotmap.NumSlots) }
	step := func() {
		t.Helper()
		keys, next, err := cl.Scan(ctx, cursor, "sk:*", count).Result()
		if err != nil {
			t.Fatalf("SCAN %d: %v", cursor, err)
		}
		for _, k := range keys {
			seen[k]++
		}
		if next != 0 && int(next%slotmap.NumSlots) <= position() {
			t.Fatalf("SCAN %d answered cursor %d: the slot did not advance", cursor, next)
		}
		cursor = next
		calls++
		returned += len(keys)
	}
	for position() < 3000 {
		step()
	}
	if position() >= 4000 {
		t.Fatalf("the iteration went from slot 0 past 4000 without stopping in [3000, 4000): cursor %d", cursor)
	}

	// A manual failover of the master of slot 4000: its replica's dict
	// has another order, which a node cursor would not survive.
	oldMaster := ownerOf(t, c, 4000)
	replica := replicaOf(t, c, oldMaster)
	failover(t, c, replica)
	clustertest.Eventually(t, 20*time.Second, func() error {
		if tb := p.Slots.Table(); tb == nil || tb.Master(4000) != replica {
			return fmt.Errorf("the proxy does not see %s as the new master yet", replica)
		}
		return nil
	})
	for position() < 4000 {
		step() // on the promoted master
	}

	// EVALSHA on the promoted master, which never saw SCRIPT LOAD.
	key := keyInSlotRange(4000, 5000)
	if n, err := c.Client(replica).ScriptExists(ctx, sha).Result(); err != nil || n[0] {
		t.Fatalf("SCRIPT EXISTS on the promoted master: %v, %v; want false", n, err)
	}
	if v, err := cl.EvalSha(ctx, sha, []string{key}).Result(); err != nil || v != strconv.Itoa(keyIndex(key)) {
		t.Fatalf("EVALSHA after the failover: %#v, %v", v, err)
	}
	if n, err := c.Client(replica).ScriptExists(ctx, sha).Result(); err != nil || !n[0] {
		t.Errorf("SCRIPT EXISTS on the promoted master after EVALSHA: %v, %v; want the proxy to have loaded it", n, err)
	}

	// A slot ahead of the cursor, half migrated while the iteration
	// crosses it, and another migrated whole between two calls.
	half := int(slotmap.Slot([]byte("{" + halfTag + "}")))
	src := ownerOf(t, c, half)
	halfMig := beginMigration(t, c, half, src, otherMaster(t, c, src))
	halfKeys, err := c.Client(src).ClusterGetKeysInSlot(ctx, half, 100).Result()
	if err != nil {
		t.Fatal(err)
	}
	halfMig.move(halfKeys[:len(halfKeys)/2]...)
	whole := int(slotmap.Slot([]byte("{" + wholeTag + "}")))
	wsrc := ownerOf(t, c, whole)
	wholeMig := beginMigration(t, c, whole, wsrc, otherMaster(t, c, wsrc))
	wholeMig.move()
	wholeMig.finish()
	for cursor != 0 {
		step()
		if (cursor == 0 || position() > half) && halfMig != nil {
			halfMig.move()
			halfMig.finish()
			halfMig = nil
		}
	}
	// COUNT is a hint, but the calls should return about that many keys
	// each, not a thousand slots' worth.
	if avg := returned / calls; avg < count/4 || avg > 4*count {
		t.Errorf("%d keys in %d SCAN calls: %d a call, want about %d", returned, calls, avg, count)
	}
	for k := range want {
		if seen[k] == 0 {
			t.Errorf("SCAN missed %q", k)
		}
	}
	for k := range seen {
		if !want[k] {
			t.Errorf("SCAN returned %q, which was never written", k)
		}
	}
	t.Logf("%d keys, %d distinct returned in %d calls", n, len(seen), calls)
}

// failover promotes replica with CLUSTER FAILOVER, once its replication
// link is up, asking again while it has not taken over (a manual
// failover gives up when the master does not answer in time).
func failover(t testing.TB, c *clustertest.Cluster, replica string) {
	t.Helper()
	ctx := context.Background()
	clustertest.Eventually(t, 20*time.Second, func() error {
		info, err := c.Client(replica).Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("%s: replication link not up", replica)
		}
		return nil
	})
	var asked time.Time
	clustertest.Eventually(t, 30*time.Second, func() error {
		if time.Since(asked) > 5*time.Second {
			if err := c.Client(replica).Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
				t.Fatalf("CLUSTER FAILOVER on %s: %v", replica, err)
			}
			asked = time.Now()
		}
		role, err := c.Client(replica).Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			return nil
		}
		return fmt.Errorf("%s is not a master yet", replica)
	})
}

// ownerOf asks the cluster which master serves slot.
func ownerOf(t testing.TB, c *clustertest.Cluster, slot int) string {
	t.Helper()
	return slotOwners(t, c)[slot]
}

// replicaOf returns a replica of the master at addr.
func replicaOf(t testing.TB, c *clustertest.Cluster, master string) string {
	t.Helper()
	ctx := context.Background()
	id := nodeID(t, c, master)
	var found string
	clustertest.Eventually(t, 10*time.Second, func() error {
		nodes, err := c.Client(master).Do(ctx, "CLUSTER", "REPLICAS", id).StringSlice()
		if err != nil {
			return err
		}
		for _, line := range nodes {
			var nid, addr string
			fmt.Sscan(line, &nid, &addr)
			if i := indexByte(addr, '@'); i >= 0 {
				addr = addr[:i]
			}
			found = addr
			return nil
		}
		return fmt.Errorf("%s has no replica yet", master)
	})
	return found
}

func indexByte(s string, b byte) int {
	for i := range len(s) {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// keyInSlotRange returns a key "sk:N" (one that the test wrote) whose
// slot is in [lo, hi).
func keyInSlotRange(lo, hi int) string {
	for i := range 3000 {
		k := "sk:" + strconv.Itoa(i)
		if s := int(slotmap.Slot([]byte(k))); s >= lo && s < hi {
			return k
		}
	}
	panic("no key in the slot range")
}

func keyIndex(k string) int {
	n, _ := strconv.Atoi(k[len("sk:"):])
	return n
}

// tagInSlotRange returns a hash tag whose slot is in [lo, hi).
func tagInSlotRange(lo, hi int) string {
	for i := 0; ; i++ {
		tag := "t" + strconv.Itoa(i)
		if s := int(slotmap.Slot([]byte(tag))); s >= lo && s < hi {
			return tag
		}
	}
}

// TestParseCursor pins SCAN's cursor syntax, which is C's strtoul as
// redis-server calls it.
func TestParseCursor(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"16383", 16383, true}, {"", 0, true}, {"+5", 5, true},
		{"-1", ^uint64(0), true}, {"-0", 0, true}, {"18446744073709551615", ^uint64(0), true},
		{"18446744073709551616", 0, false}, {" 1", 0, false}, {"1 ", 0, false},
		{"-", 0, false}, {"+", 0, false}, {"+-1", 0, false}, {"abc", 0, false}, {"0x10", 0, false},
	} {
		got, ok := parseCursor([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCursor(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// ptStrtoulCursor is how redis-server reads a SCAN cursor: strtoul(s,
// &end, 10) over the C string (which ends at a NUL), refused when s
// starts with a space, when end is not the string's end (with no digits
// strtoul leaves end at s), or on overflow.
func ptStrtoulCursor(b []byte) (uint64, bool) {
	if z := bytes.IndexByte(b, 0); z >= 0 {
		b = b[:z]
	}
	if len(b) > 0 && strings.IndexByte(" \t\n\v\f\r", b[0]) >= 0 {
		return 0, false
	}
	i, neg := 0, false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if i == start {
		return 0, len(b) == 0
	}
	if i != len(b) || overflow {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// FuzzParseCursor checks SCAN's cursor parsing against strtoul as
// redis-server calls it, and that any cursor accepted names a slot and a
// window inside the slot space.
// redis-server's strtoul stops at a NUL: "1\x00junk" is 1, "\x00" is 0.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		"0", "", "16383", "16384", "1048577", "+5", "-1", "-0", "00012",
		"18446744073709551615", "18446744073709551616", "-18446744073709551616",
		" 1", "1 ", "-", "+", "+-1", "0x10", "1\t", "1\x00junk", "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := parseCursor(in)
		if want, wantOK := ptStrtoulCursor(in); got != want || ok != wantOK {
			t.Fatalf("parseCursor(%q) = %d, %v; redis-server reads %d, %v", in, got, ok, want, wantOK)
		}
		if !ok {
			return
		}
		// Decoded as scan does: the low part a slot, the high part how
		// many slots the call visits.
		j := &scanJob{start: int(got % numSlots)}
		j.setWindow(int(min(got/numSlots, numSlots)))
		if j.start < 0 || j.start >= j.end || j.end > numSlots {
			t.Fatalf("cursor %d visits slots [%d, %d)", got, j.start, j.end)
		}
	})
}
