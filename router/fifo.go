package router

// fifo is a growable ring of requests written to a connection and waiting
// for their replies, oldest first. A nil entry stands for the reply to an
// ASKING sent just before the request that follows it.
type fifo struct {
	buf        []*Request
	head, size int
}

func (q *fifo) len() int { return q.size }

func (q *fifo) push(r *Request) {
	if q.size == len(q.buf) {
		n := max(2*len(q.buf), 64)
		buf := make([]*Request, n)
		k := copy(buf, q.buf[q.head:])
		copy(buf[k:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = r
	q.size++
}

// pop removes the oldest entry; ok is false when the ring is empty.
func (q *fifo) pop() (r *Request, ok bool) {
	if q.size == 0 {
		return nil, false
	}
	r = q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return r, true
}

// drain removes and returns every entry, oldest first.
func (q *fifo) drain() []*Request {
	out := make([]*Request, 0, q.size)
	for {
		r, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}
