package proxy

import (
	"errors"
	"time"

	"github.com/slotproxy/slotproxy/router"
)

// link is one subscriber connection of the hub.
type link struct {
	h    *hub
	l    *router.Lease
	addr string

	// Under hub.mu:
	subs      map[topicKey]bool // subscribed on the node; true once confirmed
	leaving   map[topicKey]bool // unsubscribed, the node's confirmation awaited
	sent      []sentCmd         // commands waiting for their replies, in order
	waitSince time.Time         // when the node last answered or was first waited for
	lastPing  time.Time

	msg message // the message being delivered, reused
}

// sentCmd is a command written to a link, waiting for its replies: one
// per name for the (un)subscribe commands, one for PING.
type sentCmd struct {
	kind  subKind
	sub   bool // a subscribe, not an unsubscribe
	ping  bool
	names []string
	got   int
}

// queue appends the commands that (un)subscribe names and records them.
// Under hub.mu.
func (k *link) queue(b []byte, kind subKind, sub bool, names []string, now time.Time) []byte {
	verb := verbs[kind].unsub
	if sub {
		verb = verbs[kind].sub
	}
	for len(names) > 0 {
		n := min(len(names), subscribeChunk)
		if kind == subShard {
			// A node refuses an SSUBSCRIBE whose channels are in
			// several slots.
			n = 1
		}
		chunk := names[:n]
		names = names[n:]
		b = appendArrayHeader(b, 1+len(chunk))
		b = appendBulkString(b, verb)
		for _, name := range chunk {
			b = appendBulkString(b, name)
			key := topicKey{kind, name}
			if sub {
				k.subs[key] = false
			} else {
				delete(k.subs, key)
				k.leaving[key] = true
			}
		}
		k.push(sentCmd{kind: kind, sub: sub, names: chunk}, now)
	}
	return b
}

// holds reports whether the node may count the link as a subscriber of
// key: it is subscribed, or its unsubscribe is not confirmed yet. Under
// hub.mu.
func (k *link) holds(key topicKey) bool {
	_, ok := k.subs[key]
	return ok || k.leaving[key]
}

func (k *link) queuePing(b []byte, now time.Time) []byte {
	k.lastPing = now
	k.push(sentCmd{ping: true}, now)
	return append(b, "*1\r\n$4\r\nPING\r\n"...)
}

func (k *link) push(c sentCmd, now time.Time) {
	if len(k.sent) == 0 {
		k.waitSince = now
	}
	k.sent = append(k.sent, c)
}

// read takes the node's replies and messages until the connection ends,
// then hands its subscriptions back to the keeper.
func (k *link) read() {
	h := k.h
	defer h.readers.Done()
	var err error
	for {
		var b []byte
		b, err = k.l.Read(true)
		if err != nil {
			break
		}
		k.handle(b)
	}
	k.l.Close()
	h.mu.Lock()
	if h.links[k.addr] == k {
		delete(h.links, k.addr)
	}
	closed := h.closed
	if !closed && !errors.Is(err, router.ErrInterrupted) {
		// Not at once: a node that just died refuses the dial anyway.
		// A connection the keeper closed itself leaves the node usable,
		// so that the primary does not move for nothing: a move may
		// deliver again a message the new primary hears late over the
		// cluster bus.
		h.retryAt[k.addr] = time.Now().Add(100 * time.Millisecond)
	}
	h.mu.Unlock()
	if !closed && !errors.Is(err, router.ErrInterrupted) {
		h.srv.opts.Logger.Warn("pubsub connection lost", "node", k.addr, "err", err)
	}
	h.poke()
}

// handle takes one frame from the node.
func (k *link) handle(b []byte) {
	v, ok := parseValue(b)
	if !ok {
		return
	}
	switch {
	case v.isError():
		// A MOVED patches the table, by which the keeper subscribes again.
		k.h.srv.router.Redirection(b, k.addr)
		k.confirm("", "", string(v.str))
		return
	case v.typ == '+': // PONG outside subscribed mode
		k.confirm("pong", "", "")
		return
	case v.typ != '*' && v.typ != '>' || len(v.elems) < 2:
		return
	}
	verb := string(v.elems[0].str)
	switch verb {
	case "message", "smessage":
		if len(v.elems) == 3 {
			kind := subChannel
			if verb == "smessage" {
				kind = subShard
			}
			k.deliver(kind, nil, v.elems[1].str, v.elems[2].str)
		}
	case "pmessage":
		if len(v.elems) == 4 {
			k.deliver(subPattern, v.elems[1].str, v.elems[2].str, v.elems[3].str)
		}
	default:
		k.confirm(verb, string(v.elems[1].str), "")
	}
}

// confirm takes a reply to the oldest command waiting: a confirmation of
// verb for name, or an error.
func (k *link) confirm(verb, name, errMsg string) {
	h := k.h
	h.mu.Lock()
	defer h.mu.Unlock()
	k.waitSince = time.Now()
	if len(k.sent) == 0 || !k.expects(verb) {
		if verb == "sunsubscribe" {
			// The node gave the shard channel's slot away and dropped
			// the subscription on its own: the keeper makes it again
			// on the slot's new master.
			delete(k.subs, topicKey{subShard, name})
			h.poke()
		}
		return
	}
	c := &k.sent[0]
	if errMsg != "" {
		// The whole command failed (a MOVED for an SSUBSCRIBE): the
		// keeper tries again by the table, which the redirection patched.
		for _, n := range c.names {
			if c.sub {
				delete(k.subs, topicKey{c.kind, n})
			} else {
				delete(k.leaving, topicKey{c.kind, n})
			}
		}
		c.got = len(c.names)
	} else if !c.ping {
		key := topicKey{c.kind, name}
		if !c.sub {
			delete(k.leaving, key)
		} else if _, ok := k.subs[key]; ok {
			k.subs[key] = true
		}
		c.got++
	}
	if c.ping || c.got >= len(c.names) {
		k.sent[0] = sentCmd{}
		k.sent = k.sent[1:]
		h.poke() // a topic may be ready now
	}
}

// expects reports whether verb answers the oldest command waiting. Under
// hub.mu.
func (k *link) expects(verb string) bool {
	c := &k.sent[0]
	switch {
	case verb == "":
		return true // an error answers any command
	case c.ping:
		return verb == "pong"
	case c.sub:
		return verb == verbs[c.kind].sub
	}
	return verb == verbs[c.kind].unsub
}

// deliver hands a message to the sessions subscribed to its topic.
func (k *link) deliver(kind subKind, pattern, channel, payload []byte) {
	h := k.h
	name := channel
	if kind == subPattern {
		name = pattern
	}
	h.mu.Lock()
	// Only the primary's copy of a message that every node hears.
	if kind != subShard && k.addr != h.primary && !isKeyspace(channel) {
		h.mu.Unlock()
		return
	}
	tp := h.topics[topicKey{kind, string(name)}]
	var subs []*subscriber
	if tp != nil {
		subs = tp.subs
	}
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	m := &k.msg
	m.reset(kind, pattern, channel, payload)
	for _, sub := range subs {
		sub.deliver(kind, name, m)
	}
}

// message is one message, encoded at most once per protocol.
type message struct {
	kind                      subKind
	pattern, channel, payload []byte
	enc                       [2][]byte
	built                     [2]bool
}

func (m *message) reset(kind subKind, pattern, channel, payload []byte) {
	m.kind, m.pattern, m.channel, m.payload = kind, pattern, channel, payload
	m.built = [2]bool{}
}

// bytes returns the message as redis-server sends it to a client that
// speaks proto.
func (m *message) bytes(proto int) []byte {
	i := 0
	if proto == 3 {
		i = 1
	}
	if !m.built[i] {
		b := m.enc[i][:0]
		n := 3
		if m.kind == subPattern {
			n = 4
		}
		b = appendPushHeader(b, n, proto)
		b = appendBulkString(b, verbs[m.kind].msg)
		if m.kind == subPattern {
			b = appendBulk(b, m.pattern)
		}
		b = appendBulk(b, m.channel)
		b = appendBulk(b, m.payload)
		m.enc[i], m.built[i] = b, true
	}
	return m.enc[i]
}
