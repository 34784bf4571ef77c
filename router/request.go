// Package router is slotproxy's backend side: per-master pools of pipelined,
// multiplexed connections, and the redirect and retry policy. A request is
// routed by its hash slot to the master the current slot table names, and
// its reply comes back to whoever sent it through the request's Completer.
//
// router knows nothing of client sessions: it forwards bytes it is given and
// hands back the bytes a master answered.
package router

import (
	"time"

	"github.com/slotproxy/slotproxy/slotmap"
)

// NoSlot is the Slot of a request without keys: any master may serve it.
const NoSlot = -1

// Completer is told when a request has its reply. Complete is called once
// per Do, from a router goroutine; it must not block.
type Completer interface {
	Complete(r *Request)
}

// Request is one command on its way to a master and back. The sender fills
// Raw, Slot, ReadOnly, Affinity and Done, calls Router.Do, and must not
// touch the request again until Done.Complete is called with it.
type Request struct {
	// Raw is the whole command encoded as a RESP array of bulk strings,
	// written to the master as it is. It must stay valid until completion.
	Raw []byte
	// Slot is the hash slot of the command's keys, or NoSlot.
	Slot int
	// ReadOnly marks reads. A read, or an Idempotent write, may run twice:
	// only they are sent again after their connection broke once they
	// were written.
	ReadOnly bool
	// Idempotent marks a write whose effect and reply are the same however
	// often it runs (a plain SET): sent again, it cannot be told apart from
	// the first run.
	Idempotent bool
	// Affinity picks the connection to a node: requests with the same
	// Affinity share one, so a client's commands to a master run in the
	// order it sent them. A session uses its own number.
	Affinity uint32
	// Done is told when Reply is ready.
	Done Completer
	// Node, when set, is the address of the node that must serve the
	// request, whatever its slot: the proxy's own commands sent to every
	// master. Retries go to the same node.
	Node string
	// Urgent, with Node, sends the request over a connection to that node
	// that carries only urgent requests: SCRIPT KILL must not wait behind
	// the busy script it is meant to stop.
	Urgent bool
	// RESP3 sends the request over connections that speak RESP3 (HELLO 3
	// at connect), for a client that does: replies are forwarded as they
	// are, never translated.
	RESP3 bool
	// Script, when set, is a command that makes the node know the script
	// the request runs (SCRIPT LOAD body). On a NOSCRIPT reply it is sent
	// right before the request, once, on the same connection: a master
	// promoted by a failover, or given the slot by a reshard, has an empty
	// script cache.
	Script []byte

	// Reply holds the master's reply, byte for byte, or an error reply of
	// the proxy's own when the request failed. Its storage is reused by
	// the next Do with the same Request.
	Reply []byte

	table     *slotmap.Table // the table to route by; nil: the current one
	target    string         // a node forced by a redirect, for the next send only
	pre       []byte         // one command sent right before this one (ASKING, a script load); its reply is dropped
	redirects int            // MOVED/ASK followed so far
	attempts  int            // sends that failed before a reply
	deadline  time.Time      // when TRYAGAIN/CLUSTERDOWN/unreachable retries stop
	sent      int64          // unix ns of its latest write to a node, for the node's latency
	answered  int64          // unix ns when its reply was read
	node      string         // the node whose reply it got
}

// Served returns the node whose reply the request got and how long after
// its (last) write that reply came; "" and 0 for a reply of the proxy's
// own (an error, a failure).
func (r *Request) Served() (node string, wait time.Duration) {
	if r.node == "" {
		return "", 0
	}
	return r.node, time.Duration(r.answered - r.sent)
}

// Redirected reports whether the request followed a MOVED or ASK.
func (r *Request) Redirected() bool { return r.redirects > 0 }

// Retried reports whether the request was queued to be sent again
// (TRYAGAIN, CLUSTERDOWN, an unreachable master, a broken connection).
func (r *Request) Retried() bool { return r.attempts > 0 }

// reset prepares r for a new Do.
func (r *Request) reset() {
	r.target = ""
	r.pre = nil
	r.redirects = 0
	r.attempts = 0
	r.node = ""
	r.deadline = time.Time{}
}

// fail sets an error reply of the proxy's own and completes r.
func (r *Request) fail(msg string) {
	r.Reply = append(append(append(r.Reply[:0], '-'), msg...), '\r', '\n')
	r.Done.Complete(r)
}

// answer copies a master's reply into r and completes it.
func (r *Request) answer(reply []byte) {
	r.Reply = append(r.Reply[:0], reply...)
	r.Done.Complete(r)
}
