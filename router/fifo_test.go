package router

import "testing"

// fifoRequests returns n distinct requests, told apart by Slot.
func fifoRequests(n int) []*Request {
	rs := make([]*Request, n)
	for i := range rs {
		rs[i] = &Request{Slot: i}
	}
	return rs
}

func fifoPopAll(t *testing.T, q *fifo, want []*Request) {
	t.Helper()
	for i, w := range want {
		r, ok := q.pop()
		if !ok {
			t.Fatalf("pop %d: empty, want request %v", i, w)
		}
		if r != w {
			t.Fatalf("pop %d: got %p, want %p (out of order)", i, r, w)
		}
	}
}

func TestFIFOEmpty(t *testing.T) {
	var q fifo
	if r, ok := q.pop(); ok || r != nil {
		t.Errorf("pop on an empty ring = %v, %v", r, ok)
	}
	if got := q.drain(); len(got) != 0 {
		t.Errorf("drain of an empty ring = %v", got)
	}
	if q.len() != 0 {
		t.Errorf("len = %d", q.len())
	}
}

// TestFIFOOrderAcrossGrowth pushes far beyond the first allocation.
func TestFIFOOrderAcrossGrowth(t *testing.T) {
	var q fifo
	rs := fifoRequests(1000)
	for i, r := range rs {
		q.push(r)
		if q.len() != i+1 {
			t.Fatalf("len = %d after %d pushes", q.len(), i+1)
		}
	}
	fifoPopAll(t, &q, rs)
	if _, ok := q.pop(); ok || q.len() != 0 {
		t.Fatalf("ring not empty after popping everything: len %d", q.len())
	}
}

// TestFIFOWrapAround grows the ring while its content wraps past the end of
// the buffer, the case where a copy in the wrong order would reorder replies.
func TestFIFOWrapAround(t *testing.T) {
	var q fifo
	rs := fifoRequests(400)
	next, popped := 0, 0
	push := func(n int) {
		for range n {
			q.push(rs[next])
			next++
		}
	}
	pop := func(n int) {
		t.Helper()
		fifoPopAll(t, &q, rs[popped:popped+n])
		popped += n
	}
	push(60) // buffer of 64
	pop(50)  // head at 50
	push(50) // wraps: 60 entries, 14 at the end of the buffer and 46 at its start
	if q.len() != 60 {
		t.Fatalf("len = %d, want 60", q.len())
	}
	push(10) // grows while wrapped
	pop(30)
	push(200) // grows again
	for popped < next {
		pop(1)
	}
	if q.len() != 0 {
		t.Fatalf("len = %d after popping everything", q.len())
	}
	// Reuse after emptying, repeatedly wrapping the now larger buffer.
	for round := range 20 {
		q2 := fifoRequests(37)
		for _, r := range q2 {
			q.push(r)
		}
		fifoPopAll(t, &q, q2)
		if q.len() != 0 {
			t.Fatalf("round %d: len = %d", round, q.len())
		}
	}
}

// TestFIFONilEntries: a nil entry (the reply slot of an ASKING) keeps its
// place in the order.
func TestFIFONilEntries(t *testing.T) {
	var q fifo
	r1, r2 := &Request{}, &Request{}
	q.push(nil)
	q.push(r1)
	q.push(nil)
	q.push(r2)
	for i, want := range []*Request{nil, r1, nil, r2} {
		r, ok := q.pop()
		if !ok || r != want {
			t.Fatalf("pop %d = %p, %v; want %p, true", i, r, ok, want)
		}
	}
}

func TestFIFODrain(t *testing.T) {
	var q fifo
	rs := fifoRequests(100)
	for _, r := range rs[:70] {
		q.push(r)
	}
	fifoPopAll(t, &q, rs[:40])
	for _, r := range rs[70:] {
		q.push(r) // wraps and grows
	}
	got := q.drain()
	if len(got) != 60 {
		t.Fatalf("drain returned %d entries, want 60", len(got))
	}
	for i, r := range got {
		if r != rs[40+i] {
			t.Fatalf("drain[%d] is request %d, want %d", i, r.Slot, 40+i)
		}
	}
	if q.len() != 0 {
		t.Fatalf("len = %d after drain", q.len())
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop after drain returned an entry")
	}
	// The ring keeps no pointer to what it gave back, so completed
	// requests are not kept alive by a connection.
	for i, r := range q.buf {
		if r != nil {
			t.Fatalf("buf[%d] still holds request %d", i, r.Slot)
		}
	}
	q.push(rs[0])
	fifoPopAll(t, &q, rs[:1])
}
