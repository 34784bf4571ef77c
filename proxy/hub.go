package proxy

import (
	"bytes"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/slotproxy/slotproxy/slotmap"
)

// The hub multiplexes the subscriptions of every client of a Server over
// one subscriber connection per master: a thousand clients on ten channels
// cost ten SUBSCRIBEs on one backend connection, not a thousand
// connections.
//
// Where a subscription is made:
//   - a channel or a pattern on one master, the primary: a PUBLISH in a
//     cluster reaches every node, so any one of them hears it;
//   - a keyspace channel (__keyspace@, __keyevent@), or a pattern that
//     may match one, on every master: notifications stay on their node;
//   - a shard channel on the master of its slot.
//
// A channel message (not a keyspace one) heard on several connections is
// taken only from the primary's, so each is delivered once.
//
// One goroutine, the keeper, makes the backend match the registry: it
// dials, subscribes, unsubscribes, pings, and moves subscriptions after a
// failover or a slot change. Each connection has a reader goroutine that
// takes the confirmations and delivers the messages. Sessions only change
// the registry and wait for their topics to be confirmed.

const (
	// reconcileEvery paces the keeper's check of the slot table: a
	// failover moves the subscriptions within about this much after the
	// table shows it.
	reconcileEvery = 500 * time.Millisecond
	// linkPingEvery is how often an idle subscriber connection is pinged,
	// so that a hung node is noticed.
	linkPingEvery = 2 * time.Second
	// linkTimeout is how long a node may leave a command of the hub
	// unanswered before its connection is dropped and re-made.
	linkTimeout = 3 * time.Second
	// subscribeWait bounds how long a client's SUBSCRIBE waits for the
	// cluster to confirm it.
	subscribeWait = 10 * time.Second
	// maxDialBackoff bounds the pause between dials of a node that failed.
	maxDialBackoff = 2 * time.Second
	// subscribeChunk bounds the names of one SUBSCRIBE the hub sends.
	subscribeChunk = 256
)

var errNotConfirmed = errors.New("slotproxy: subscription not confirmed by the cluster")

type subKind uint8

const (
	subChannel subKind = iota
	subPattern
	subShard
)

// verbs of each kind: the command, its reverse, and the message type.
var verbs = [...]struct{ sub, unsub, msg string }{
	subChannel: {"subscribe", "unsubscribe", "message"},
	subPattern: {"psubscribe", "punsubscribe", "pmessage"},
	subShard:   {"ssubscribe", "sunsubscribe", "smessage"},
}

type topicKey struct {
	kind subKind
	name string
}

// topic is one channel, pattern or shard channel with subscribers.
type topic struct {
	// subs is copied on write, under hub.mu, so that a reader delivers
	// from it without the lock.
	subs  []*subscriber
	ready chan struct{} // closed once every node it needs confirmed it
	done  bool          // ready is closed
}

// hubRef is the Server's hub, made by the first subscription.
type hubRef struct {
	mu     sync.Mutex
	h      *hub
	closed bool
}

// hub returns the server's hub, making it; nil once the server closed.
func (s *Server) hub() *hub {
	r := &s.pubsub
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if r.h == nil {
		r.h = newHub(s)
	}
	return r.h
}

// peekHub returns the hub if one was made.
func (s *Server) peekHub() *hub {
	r := &s.pubsub
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h
}

// close stops the hub and closes its connections.
func (r *hubRef) close() {
	r.mu.Lock()
	h := r.h
	r.closed = true
	r.mu.Unlock()
	if h != nil {
		h.close()
	}
}

type hub struct {
	srv *Server

	mu      sync.Mutex
	topics  map[topicKey]*topic
	links   map[string]*link // by node address, live ones only
	primary string           // the node of the plain channels and patterns
	retryAt map[string]time.Time
	backoff map[string]time.Duration
	closed  bool
	// departing holds the topics whose last subscriber left, until no
	// link holds them.
	departing map[topicKey]chan struct{}

	kick    chan struct{}
	stop    chan struct{}
	keeper  sync.WaitGroup
	readers sync.WaitGroup
}

func newHub(srv *Server) *hub {
	h := &hub{
		srv:       srv,
		topics:    make(map[topicKey]*topic),
		links:     make(map[string]*link),
		retryAt:   make(map[string]time.Time),
		backoff:   make(map[string]time.Duration),
		departing: make(map[topicKey]chan struct{}),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	h.keeper.Add(1)
	go h.keep()
	return h
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for key, ch := range h.departing {
		close(ch)
		delete(h.departing, key)
	}
	links := make([]*link, 0, len(h.links))
	for _, k := range h.links {
		links = append(links, k)
	}
	h.mu.Unlock()
	close(h.stop)
	h.keeper.Wait()
	for _, k := range links {
		k.l.Interrupt()
	}
	h.readers.Wait()
}

// poke asks the keeper for a reconcile soon.
func (h *hub) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// add registers sub for names and waits until the cluster confirmed each.
// A name sub already had is not passed.
func (h *hub) add(sub *subscriber, kind subKind, names []string) error {
	if len(names) == 0 {
		return nil
	}
	waits := make([]chan struct{}, 0, len(names))
	h.mu.Lock()
	for _, name := range names {
		key := topicKey{kind, name}
		tp := h.topics[key]
		if tp == nil {
			tp = &topic{ready: make(chan struct{})}
			h.topics[key] = tp
		}
		subs := make([]*subscriber, len(tp.subs), len(tp.subs)+1)
		copy(subs, tp.subs)
		tp.subs = append(subs, sub)
		if !tp.done {
			waits = append(waits, tp.ready)
		}
	}
	h.mu.Unlock()
	if len(waits) == 0 {
		return nil
	}
	h.poke()
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	for _, w := range waits {
		select {
		case <-w:
		case <-t.C:
			return errNotConfirmed
		}
	}
	return nil
}

// remove unregisters sub from names; the keeper unsubscribes the topics
// left without subscribers. It returns a channel per such topic, closed
// once no node counts the hub as its subscriber any more.
func (h *hub) remove(sub *subscriber, kind subKind, names []string) []chan struct{} {
	if len(names) == 0 {
		return nil
	}
	var gone []chan struct{}
	h.mu.Lock()
	for _, name := range names {
		key := topicKey{kind, name}
		tp := h.topics[key]
		if tp == nil {
			continue
		}
		subs := make([]*subscriber, 0, len(tp.subs))
		for _, o := range tp.subs {
			if o != sub {
				subs = append(subs, o)
			}
		}
		if len(subs) > 0 {
			tp.subs = subs
			continue
		}
		delete(h.topics, key)
		ch := h.departing[key]
		if ch == nil {
			ch = make(chan struct{})
			h.departing[key] = ch
		}
		gone = append(gone, ch)
	}
	h.mu.Unlock()
	h.poke()
	return gone
}

// held reports whether a link may still be counted by its node as a
// subscriber of key. Under h.mu.
func (h *hub) held(key topicKey) bool {
	for _, k := range h.links {
		if k.holds(key) {
			return true
		}
	}
	return false
}

// waitGone waits, at most subscribeWait, for the channels remove returned.
func waitGone(gone []chan struct{}) {
	if len(gone) == 0 {
		return
	}
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	for _, ch := range gone {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// counts returns the number of subscribers of each name, for PUBSUB
// NUMSUB and SHARDNUMSUB.
func (h *hub) counts(kind subKind, names [][]byte) []int {
	n := make([]int, len(names))
	if h == nil {
		return n
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, name := range names {
		if tp := h.topics[topicKey{kind, string(name)}]; tp != nil {
			n[i] = len(tp.subs)
		}
	}
	return n
}

// names returns the names of kind with subscribers that match pattern
// (every one for nil), sorted.
func (h *hub) names(kind subKind, pattern []byte) []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	var out []string
	for key := range h.topics {
		if key.kind == kind && (pattern == nil || globMatch(pattern, []byte(key.name))) {
			out = append(out, key.name)
		}
	}
	h.mu.Unlock()
	sort.Strings(out)
	return out
}

// isKeyspace reports whether a channel carries a node's keyspace
// notifications, which only that node publishes.
func isKeyspace(ch []byte) bool {
	return bytes.HasPrefix(ch, []byte("__keyspace@")) || bytes.HasPrefix(ch, []byte("__keyevent@"))
}

// mayMatchKeyspace reports whether a pattern may match a keyspace
// channel: it starts with '_' or with a glob metacharacter.
func mayMatchKeyspace(pat string) bool {
	return pat != "" && (pat[0] == '_' || pat[0] == '*' || pat[0] == '?' || pat[0] == '[' || pat[0] == '\\')
}

// nodesFor appends the nodes a topic must be subscribed on.
func (h *hub) nodesFor(nodes []string, key topicKey, t *slotmap.Table, masters []string) []string {
	switch {
	case key.kind == subShard:
		if addr := t.Master(slotmap.Slot([]byte(key.name))); addr != "" {
			nodes = append(nodes, addr)
		}
	case key.kind == subChannel && isKeyspace([]byte(key.name)),
		key.kind == subPattern && mayMatchKeyspace(key.name):
		nodes = append(nodes, masters...)
	case h.primary != "":
		nodes = append(nodes, h.primary)
	}
	return nodes
}

// keep runs the keeper until the hub closes.
func (h *hub) keep() {
	defer h.keeper.Done()
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.kick:
		case <-tick.C:
		}
		h.reconcile()
	}
}

// usable reports whether addr may be used now: it has a live link, or
// is not waiting out a dial backoff. Under h.mu.
func (h *hub) usable(addr string, now time.Time) bool {
	return h.links[addr] != nil || !now.Before(h.retryAt[addr])
}

// choosePrimary keeps the primary while it is a master that can be
// reached, else takes a master that can. Under h.mu.
func (h *hub) choosePrimary(masters []string, now time.Time) {
	for _, m := range masters {
		if m == h.primary && h.usable(m, now) {
			return
		}
	}
	for _, m := range masters {
		if h.links[m] != nil {
			h.primary = m
			return
		}
	}
	for _, m := range masters {
		if h.usable(m, now) {
			h.primary = m
			return
		}
	}
	if len(masters) > 0 {
		h.primary = masters[0]
	}
}

// reconcile makes the backend subscriptions match the registry and the
// current slot table.
func (h *hub) reconcile() {
	t := h.srv.router.Table()
	if t == nil {
		return
	}
	masters := mastersOf(t)
	now := time.Now()

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.choosePrimary(masters, now)
	want := make(map[string]map[topicKey]bool)
	var nodes []string
	for key := range h.topics {
		nodes = h.nodesFor(nodes[:0], key, t, masters)
		for _, addr := range nodes {
			if want[addr] == nil {
				want[addr] = make(map[topicKey]bool)
			}
			want[addr][key] = true
		}
	}
	var dial []string
	for addr := range want {
		if h.links[addr] == nil && !now.Before(h.retryAt[addr]) {
			dial = append(dial, addr)
		}
	}
	h.mu.Unlock()

	for _, addr := range dial {
		h.dial(addr)
	}

	type out struct {
		k *link
		b []byte
	}
	var writes []out
	var drop []*link
	h.mu.Lock()
	for addr, k := range h.links {
		w := want[addr]
		if len(w) == 0 && len(k.subs) == 0 && len(k.leaving) == 0 {
			// Nothing to hear from this node any more (or it left the
			// table), and the node confirmed every unsubscribe: a
			// connection closed earlier would leave the node counting
			// the hub in PUBLISH's replies for a while after the
			// clients saw their UNSUBSCRIBE confirmed.
			drop = append(drop, k)
			continue
		}
		if len(k.sent) > 0 && now.Sub(k.waitSince) > linkTimeout {
			h.srv.opts.Logger.Warn("pubsub connection unresponsive, re-making it", "node", addr)
			drop = append(drop, k)
			continue
		}
		var b []byte
		var add, del [3][]string
		for key := range w {
			if _, ok := k.subs[key]; !ok {
				add[key.kind] = append(add[key.kind], key.name)
			}
		}
		for key := range k.subs {
			if !w[key] {
				del[key.kind] = append(del[key.kind], key.name)
			}
		}
		for kind := range add {
			b = k.queue(b, subKind(kind), true, add[kind], now)
			b = k.queue(b, subKind(kind), false, del[kind], now)
		}
		if len(k.sent) == 0 && now.Sub(k.lastPing) > linkPingEvery {
			b = k.queuePing(b, now)
		}
		if len(b) > 0 {
			writes = append(writes, out{k, b})
		}
	}
	// Topics confirmed by every node they need release their waiters. A
	// node that cannot be dialed (a master down until its failover) is
	// not waited for, as long as one node confirmed: its subscriptions
	// are made on whichever master serves its slots next.
	for key, tp := range h.topics {
		if tp.done {
			continue
		}
		nodes = h.nodesFor(nodes[:0], key, t, masters)
		ok, confirmed := true, 0
		for _, addr := range nodes {
			k := h.links[addr]
			switch {
			case k != nil && k.subs[key]:
				confirmed++
			case k == nil && now.Before(h.retryAt[addr]):
			default:
				ok = false
			}
		}
		if ok && confirmed > 0 {
			tp.done = true
			close(tp.ready)
		}
	}
	for key, ch := range h.departing {
		if !h.held(key) {
			close(ch)
			delete(h.departing, key)
		}
	}
	h.mu.Unlock()

	for _, k := range drop {
		k.l.Interrupt()
	}
	for _, w := range writes {
		if err := w.k.l.Write(w.b); err != nil {
			w.k.l.Interrupt()
		}
	}
}

// dial opens a subscriber connection to addr and starts its reader, or
// sets a backoff before the next attempt.
func (h *hub) dial(addr string) {
	l, err := h.srv.router.Lease(addr, false)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		d := min(max(2*h.backoff[addr], 100*time.Millisecond), maxDialBackoff)
		h.backoff[addr] = d
		h.retryAt[addr] = time.Now().Add(d)
		h.srv.opts.Logger.Warn("pubsub connection failed", "node", addr, "err", err, "retry_in", d)
		return
	}
	if h.closed {
		l.Close()
		return
	}
	delete(h.backoff, addr)
	delete(h.retryAt, addr)
	k := &link{h: h, l: l, addr: addr, subs: make(map[topicKey]bool), leaving: make(map[topicKey]bool), lastPing: time.Now()}
	h.links[addr] = k
	h.readers.Add(1)
	go k.read()
}
