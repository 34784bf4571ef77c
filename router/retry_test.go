package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestSplitWritten: of a failed connection's written requests, a write is
// never sent again, unless it is idempotent and no other write of its
// client follows it; a read is sent again unless a write of its client
// follows it. What is sent again keeps its order.
func TestSplitWritten(t *testing.T) {
	r := func(name string, aff uint32, ro bool) *Request {
		return &Request{Raw: []byte(name), Affinity: aff, ReadOnly: ro}
	}
	idem := func(name string, aff uint32) *Request {
		return &Request{Raw: []byte(name), Affinity: aff, Idempotent: true}
	}
	written := []*Request{
		r("GET a1", 1, true),
		r("SET a2", 2, false), r("GET a2", 2, true),
		r("GET a3", 3, true), nil, r("INCR a3", 3, false),
		// an idempotent write after a read: the read could see it
		r("GET a4", 4, true), idem("SET a4", 4), r("GET a4 after", 4, true),
		// an idempotent write before a write that must not run twice
		idem("SET a5", 5), r("INCR a5", 5, false),
		// idempotent writes, in order, after a lost write
		r("INCR a6", 6, false), idem("SET a6", 6), idem("MSET a6", 6),
	}
	again, lost := splitWritten(written)
	names := func(rs []*Request) (s []string) {
		for _, r := range rs {
			s = append(s, string(r.Raw))
		}
		return s
	}
	if got, want := names(again), []string{"GET a1", "GET a2", "SET a4", "GET a4 after", "SET a6", "MSET a6"}; !slices.Equal(got, want) {
		t.Errorf("sent again: %q, want %q", got, want)
	}
	if got, want := names(lost), []string{"INCR a6", "INCR a5", "SET a5", "GET a4", "INCR a3", "GET a3", "SET a2"}; !slices.Equal(got, want) {
		t.Errorf("failed: %q, want %q", got, want)
	}
}

type orderRecorder struct {
	done chan *Request
}

func (o orderRecorder) Complete(r *Request) { o.done <- r }

// TestRetriesKeepOrder: a client's pipeline whose master cannot be dialed
// at first is retried in the order it was sent, against a real cluster.
func TestRetriesKeepOrder(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	slots, err := slotmap.New(slotmap.Options{Seeds: c.Seeds()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if err := slots.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	d := net.Dialer{}
	rt := New(slots, Options{
		RetryTimeout: 5 * time.Second,
		ConnsPerNode: 2,
		// The first dials fail, as when a master is briefly unreachable.
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			if dials.Add(1) <= 2 {
				return nil, errors.New("injected dial failure")
			}
			return d.DialContext(ctx, "tcp", addr)
		},
	})
	t.Cleanup(rt.Close)

	const key, n = "retry:order", 200
	rec := orderRecorder{done: make(chan *Request, n)}
	reqs := make([]*Request, n)
	for i := range reqs {
		raw := fmt.Appendf(nil, "*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n", len(key), key, len(fmt.Sprint(i)), i)
		reqs[i] = &Request{Raw: raw, Slot: int(slotmap.Slot([]byte(key))), Affinity: 7, Done: rec}
		rt.Do(reqs[i], nil)
	}
	for range n {
		select {
		case <-rec.done:
		case <-time.After(10 * time.Second):
			t.Fatal("a request did not complete")
		}
	}
	if dials.Load() <= 2 {
		t.Fatalf("%d dials: the injected failures did not happen", dials.Load())
	}
	for i, r := range reqs {
		if want := fmt.Sprintf(":%d\r\n", i+1); string(r.Reply) != want {
			t.Fatalf("RPUSH #%d answered %q, want %q: the pipeline ran out of order", i, r.Reply, want)
		}
	}
	owner := slots.Table().Master(slotmap.Slot([]byte(key)))
	list, err := c.Client(owner).LRange(t.Context(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range list {
		if v != fmt.Sprint(i) {
			t.Fatalf("list[%d] = %s: the pushes ran out of order", i, v)
		}
	}
}
