package router_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/router"
)

// TestRequestOptions covers what a request may ask beyond its slot: a
// node of its own, RESP3 connections, and a script re-loaded on NOSCRIPT.
func TestRequestOptions(t *testing.T) {
	e := rtStart(t)
	ctx := context.Background()
	masters, err := e.c.MasterAddrs(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v, %v", masters, err)
	}
	rt := e.router(t, router.Options{})

	t.Run("Node", func(t *testing.T) {
		// A key that is not on masters[0]: sent there by Node, whatever
		// its slot, the node answers for itself (no MOVED follows: the
		// command is keyless for the router).
		for _, m := range masters {
			c := &rtCall{done: make(rtRecorder, 1), sent: time.Now()}
			c.req = &router.Request{Raw: rtCmd("CLUSTER", "MYID"), Slot: router.NoSlot, Node: m, ReadOnly: true, Done: c.done}
			rt.Do(c.req, nil)
			got, _ := c.wait(t, 5*time.Second)
			want, err := e.c.Client(m).ClusterMyID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got != rtBulk(want) {
				t.Errorf("CLUSTER MYID sent to %s answered %q, want %q", m, got, rtBulk(want))
			}
		}
	})

	t.Run("RESP3", func(t *testing.T) {
		if got := rtDo(t, rt, false, "HSET", "r3:h", "f", "v"); got != ":1\r\n" {
			t.Fatalf("HSET: %q", got)
		}
		c := &rtCall{done: make(rtRecorder, 1), sent: time.Now()}
		c.req = &router.Request{Raw: rtCmd("HGETALL", "r3:h"), Slot: rtSlot("r3:h"), ReadOnly: true, RESP3: true, Done: c.done}
		rt.Do(c.req, nil)
		if got, _ := c.wait(t, 5*time.Second); got != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
			t.Errorf("HGETALL over RESP3: %q, want a map", got)
		}
		// The RESP2 connections are untouched by it.
		if got := rtDo(t, rt, true, "HGETALL", "r3:h"); got != "*2\r\n$1\r\nf\r\n$1\r\nv\r\n" {
			t.Errorf("HGETALL over RESP2: %q", got)
		}
	})

	t.Run("NoScript", func(t *testing.T) {
		body := "return 'r:' .. redis.call('GET', KEYS[1])"
		sum := sha1.Sum([]byte(body))
		sha := hex.EncodeToString(sum[:])
		key := "script:k"
		rtDo(t, rt, false, "SET", key, "v")
		evalsha := func(script []byte) string {
			c := &rtCall{done: make(rtRecorder, 1), sent: time.Now()}
			c.req = &router.Request{Raw: rtCmd("EVALSHA", sha, "1", key), Slot: rtSlot(key), Script: script, Done: c.done}
			rt.Do(c.req, nil)
			got, _ := c.wait(t, 5*time.Second)
			return got
		}
		if got := evalsha(nil); !strings.HasPrefix(got, "-NOSCRIPT") {
			t.Fatalf("EVALSHA of an unknown script without Script: %q", got)
		}
		load := rtCmd("SCRIPT", "LOAD", body)
		if got := evalsha(load); got != rtBulk("r:v") {
			t.Fatalf("EVALSHA with Script: %q, want the script's reply", got)
		}
		// The script is now known there: the next EVALSHA needs no load.
		if got := evalsha(nil); got != rtBulk("r:v") {
			t.Fatalf("EVALSHA after the load: %q", got)
		}
		// A Script that does not load what the EVALSHA names gives the
		// NOSCRIPT back after one try, not a loop.
		rtDo(t, rt, false, "SCRIPT", "FLUSH")
		for _, m := range masters {
			e.c.Client(m).ScriptFlush(ctx)
		}
		if got := evalsha(rtCmd("SCRIPT", "LOAD", "return 1")); !strings.HasPrefix(got, "-NOSCRIPT") {
			t.Fatalf("EVALSHA with a wrong Script: %q, want NOSCRIPT", got)
		}
	})
}
