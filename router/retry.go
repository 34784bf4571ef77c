package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// Requests are retried in the order their client sent them. A request to
// retry waits in its Affinity's queue; every later request with that
// Affinity joins the queue behind it, whatever node it is for, and the
// queue is routed again, in order, when its backoff ends. Without this a
// pipeline caught by a failed connection or a failover would run its
// writes out of order.
type retries struct {
	mu     sync.Mutex
	queues map[uint32]*retryQueue // by Affinity
	active atomic.Int32           // len(queues), read without the lock on the hot path
}

type retryQueue struct {
	reqs []*Request
}

// queueBehind appends r to its Affinity's retry queue if there is one.
func (rt *Router) queueBehind(r *Request) bool {
	if rt.retries.active.Load() == 0 {
		return false
	}
	rt.retries.mu.Lock()
	defer rt.retries.mu.Unlock()
	q := rt.retries.queues[r.Affinity]
	if q == nil {
		return false
	}
	q.reqs = append(q.reqs, r)
	return true
}

// requeue queues r to be sent again after a backoff. It reports false,
// leaving r untouched but for its deadline, once r's retry deadline has
// passed or the router is closed: the caller then fails r with msg.
func (rt *Router) requeue(r *Request, msg string, reason int) bool {
	now := time.Now()
	if r.deadline.IsZero() {
		r.deadline = now.Add(rt.opts.RetryTimeout)
	}
	if rt.closed.Load() || now.After(r.deadline) {
		return false
	}
	r.attempts++
	rt.stats.retries[reason].Add(1)
	r.table = nil // route by the table of when it is sent again
	rq := &rt.retries
	rq.mu.Lock()
	defer rq.mu.Unlock()
	q := rq.queues[r.Affinity]
	if q == nil {
		q = &retryQueue{}
		rq.queues[r.Affinity] = q
		rq.active.Add(1)
		wait := min(time.Duration(r.attempts)*10*time.Millisecond, 200*time.Millisecond)
		a := r.Affinity
		time.AfterFunc(wait, func() { rt.flushRetries(a) })
	}
	q.reqs = append(q.reqs, r)
	return true
}

// retry is requeue for a single request, failing it with msg past its
// deadline.
func (rt *Router) retry(r *Request, msg string, reason int) {
	if !rt.requeue(r, msg, reason) {
		if rt.closed.Load() {
			msg = msgClosed
		}
		r.fail(msg)
	}
}

// flushRetries routes an Affinity's queue again, in order. A request that
// must wait again opens a new queue, and the ones after it join it.
func (rt *Router) flushRetries(a uint32) {
	rq := &rt.retries
	rq.mu.Lock()
	q := rq.queues[a]
	delete(rq.queues, a)
	rq.active.Add(-1)
	rq.mu.Unlock()
	for _, r := range q.reqs {
		rt.route(r)
	}
}
