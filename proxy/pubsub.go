package proxy

import (
	"sort"
	"sync"

	"github.com/slotproxy/slotproxy/router"
)

// subscriber is a session's Pub/Sub state. Messages reach the client from
// the hub's reader goroutines, not from the session's: a subscribed client
// is mostly idle, and its session may be parked without a goroutine.
//
// mu orders every write to the client while the session is subscribed:
// the session's replies and the deliveries take it, so their bytes never
// interleave.
type subscriber struct {
	s *session

	mu sync.Mutex
	// sets are the names subscribed, by kind; changed by the session's
	// goroutine under mu, read by deliveries under mu.
	sets  [3]map[string]struct{}
	proto int // the session's protocol as of its last reply
	// hold keeps deliveries in pending from a subscription until the
	// batch's replies, its confirmation among them, are written: a
	// message must not overtake the confirmation of its channel.
	hold    bool
	pending []byte
	gone    bool // unsubscribed from everything or cut off: deliveries dropped
}

func newSubscriber(s *session) *subscriber {
	sub := &subscriber{s: s, proto: s.proto}
	for i := range sub.sets {
		sub.sets[i] = make(map[string]struct{})
	}
	return sub
}

// count is what redis-server's replies count: channels and patterns
// together, shard channels apart. Called on the session's goroutine.
func (sub *subscriber) count(kind subKind) int {
	if kind == subShard {
		return len(sub.sets[subShard])
	}
	return len(sub.sets[subChannel]) + len(sub.sets[subPattern])
}

func (sub *subscriber) total() int {
	return len(sub.sets[0]) + len(sub.sets[1]) + len(sub.sets[2])
}

// answerSubscribed serves a command of a subscribed session; it reports
// false for a command served as usual. A RESP2 client in subscribed mode
// may only (un)subscribe, PING, QUIT and RESET, as with redis-server; a
// RESP3 client may run anything, the messages coming as pushes.
func (s *session) answerSubscribed(cmd *Command, args [][]byte, raw []byte) bool {
	if s.proto == 3 || s.held.sub.total() == 0 {
		return false
	}
	switch cmd.Name {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "quit", "reset":
		return false
	case "ping":
		if len(args) > 2 {
			s.reject(wrongArity("ping"))
			return true
		}
		off := len(s.local)
		s.local = appendArrayHeader(s.local, 2)
		s.local = appendBulkString(s.local, "pong")
		if len(args) == 2 {
			s.local = appendBulk(s.local, args[1])
		} else {
			s.local = appendBulkString(s.local, "")
		}
		s.replyLocal(off)
		return true
	}
	s.rejectCmd(cmd, "ERR Can't execute '"+cmd.Name+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
	return true
}

// answerPubSub serves the Pub/Sub commands.
func (s *session) answerPubSub(cmd *Command, args [][]byte, raw []byte) {
	switch cmd.Name {
	case "publish":
		s.publish(args, raw)
	case "spublish":
		s.spublish(cmd, args, raw)
	case "subscribe":
		s.subscribe(subChannel, args[1:])
	case "psubscribe":
		s.subscribe(subPattern, args[1:])
	case "ssubscribe":
		s.subscribe(subShard, args[1:])
	case "unsubscribe":
		s.unsubscribe(subChannel, args[1:])
	case "punsubscribe":
		s.unsubscribe(subPattern, args[1:])
	case "sunsubscribe":
		s.unsubscribe(subShard, args[1:])
	default:
		s.answerPubSubInfo(cmd, args, raw)
		return
	}
	s.show()
}

// publish sends PUBLISH to the node the hub hears channels on. A node
// passes a message to the others over the cluster bus after it replied:
// PUBLISHes spread over the masters could reach the subscribers out of
// the order they were made in, even from one client.
func (s *session) publish(args [][]byte, raw []byte) {
	h := s.srv.peekHub()
	node := ""
	if h != nil {
		h.mu.Lock()
		node = h.primary
		h.mu.Unlock()
	}
	if node == "" {
		s.forward(args, raw, router.NoSlot, false, false)
		return
	}
	if raw == nil {
		raw = appendCommand(nil, args)
	}
	s.wrote(router.NoSlot)
	channel := string(args[1])
	s.sendNodes([]string{node}, raw, false, func(s *session, b []byte, parts []value) []byte {
		return appendInt(b, h.receivers(subChannel, node, channel, parts[0].num))
	})
}

// spublish routes SPUBLISH by its shard channel, and counts the
// receivers as publish does.
func (s *session) spublish(cmd *Command, args [][]byte, raw []byte) {
	slot := s.keySlot(cmd, args)
	h := s.srv.peekHub()
	if h == nil || slot < 0 {
		s.forward(args, raw, slot, false, false)
		return
	}
	if raw == nil {
		raw = appendCommand(nil, args)
	}
	s.wrote(slot)
	channel := string(args[1])
	r := s.jobRequest(raw, slot, "", false)
	s.startJob(&routedJob{r: r, merge: func(s *session, b []byte, v value) []byte {
		return appendInt(b, h.receivers(subShard, s.masterOf(slot), channel, v.num))
	}}, false)
}

// receivers turns the count of receivers node answered to PUBLISH (or
// SPUBLISH) of channel into the one a single server gives: the proxy's
// clients on the channel and its matching patterns, plus the node's other
// subscribers. The hub's connection counts once per channel or pattern
// it holds on node; while a subscription is being made or dropped the
// node may or may not count it yet, so the hub is taken out at most for
// what it may hold, and never below none.
func (h *hub) receivers(kind subKind, node, channel string, n int64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.links[node]
	var local, held int64
	count := func(key topicKey) {
		tp := h.topics[key]
		if tp != nil {
			local += int64(len(tp.subs))
		}
		if tp != nil || k != nil && k.holds(key) {
			held++
		}
	}
	count(topicKey{kind, channel})
	if kind == subChannel {
		patterns := make(map[string]bool)
		for key := range h.topics {
			if key.kind == subPattern {
				patterns[key.name] = true
			}
		}
		if k != nil {
			for _, on := range []map[topicKey]bool{k.subs, k.leaving} {
				for key := range on {
					if key.kind == subPattern {
						patterns[key.name] = true
					}
				}
			}
		}
		for pat := range patterns {
			if globMatch([]byte(pat), []byte(channel)) {
				count(topicKey{subPattern, pat})
			}
		}
	}
	return local + max(0, n-held)
}

// subscribe serves SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE. Once it replies,
// the hub has the subscriptions confirmed by the cluster: a message
// published after the client saw its confirmation reaches it.
func (s *session) subscribe(kind subKind, names [][]byte) {
	h := s.srv.hub()
	if h == nil {
		s.replyError("ERR slotproxy: server closing")
		return
	}
	// Commands earlier in the batch, a PUBLISH among them, run before the
	// subscription, as on one server.
	s.settle()
	held := s.holding()
	if held.sub == nil {
		held.sub = newSubscriber(s)
	}
	sub := held.sub
	set := sub.sets[kind]
	var added []string
	off := len(s.local)
	sub.mu.Lock()
	sub.hold = true
	for _, name := range names {
		if _, ok := set[string(name)]; !ok {
			set[string(name)] = struct{}{}
			added = append(added, string(name))
		}
		s.local = appendSubReply(s.local, verbs[kind].sub, name, sub.count(kind), s.proto)
	}
	sub.mu.Unlock()
	if err := h.add(sub, kind, added); err != nil {
		h.remove(sub, kind, added)
		sub.mu.Lock()
		for _, name := range added {
			delete(set, name)
		}
		sub.mu.Unlock()
		s.local = appendError(s.local[:off], "CLUSTERDOWN "+err.Error())
	}
	s.replyLocal(off)
}

// unsubscribe serves UNSUBSCRIBE, PUNSUBSCRIBE and SUNSUBSCRIBE: a reply
// per name, every name subscribed when none is given, one with a nil name
// when there is none at all.
func (s *session) unsubscribe(kind subKind, names [][]byte) {
	off := len(s.local)
	var sub *subscriber
	if s.held != nil {
		sub = s.held.sub
	}
	if sub == nil || len(names) == 0 && len(sub.sets[kind]) == 0 {
		n := 0
		if sub != nil {
			n = sub.count(kind)
		}
		s.local = appendPushHeader(s.local, 3, s.proto)
		s.local = appendBulkString(s.local, verbs[kind].unsub)
		if len(names) == 0 {
			s.local = appendNull(s.local, s.proto)
			s.local = appendInt(s.local, int64(n))
		} else {
			for i, name := range names {
				if i > 0 {
					s.local = appendPushHeader(s.local, 3, s.proto)
					s.local = appendBulkString(s.local, verbs[kind].unsub)
				}
				s.local = appendBulk(s.local, name)
				s.local = appendInt(s.local, int64(n))
			}
		}
		s.replyLocal(off)
		return
	}
	set := sub.sets[kind]
	if len(names) == 0 {
		all := make([]string, 0, len(set))
		for name := range set {
			all = append(all, name)
		}
		sort.Strings(all)
		for _, name := range all {
			names = append(names, []byte(name))
		}
	}
	var removed []string
	sub.mu.Lock()
	for _, name := range names {
		if _, ok := set[string(name)]; ok {
			delete(set, string(name))
			removed = append(removed, string(name))
		}
		s.local = appendSubReply(s.local, verbs[kind].unsub, name, sub.count(kind), s.proto)
	}
	sub.mu.Unlock()
	if h := s.srv.peekHub(); h != nil {
		// As on one server, a PUBLISH made once the client has its
		// confirmation does not count the client: the nodes confirmed
		// the hub's unsubscribe first.
		waitGone(h.remove(sub, kind, removed))
	}
	s.replyLocal(off)
	// The subscriber is dropped once the batch's replies are written
	// (writeSubscribed), so that messages held for them still follow.
}

// appendSubReply appends a (un)subscribe confirmation: the verb, the name
// and the count of subscriptions after it.
func appendSubReply(b []byte, verb string, name []byte, n int, proto int) []byte {
	b = appendPushHeader(b, 3, proto)
	b = appendBulkString(b, verb)
	b = appendBulk(b, name)
	return appendInt(b, int64(n))
}

// answerPubSubInfo serves PUBSUB's subcommands from the proxy's registry:
// the subscriptions of the proxy's own clients, which the hub mirrors on
// the nodes. Clients subscribed on the nodes directly, or through another
// proxy, are not counted: the nodes' own counts include the hub's
// connections, which stand for any number of clients, and cannot be
// told apart from those.
func (s *session) answerPubSubInfo(cmd *Command, args [][]byte, raw []byte) {
	h := s.srv.peekHub()
	off := len(s.local)
	switch cmd.Name {
	case "pubsub|channels", "pubsub|shardchannels":
		kind := subChannel
		if cmd.Name == "pubsub|shardchannels" {
			kind = subShard
		}
		var pattern []byte
		if len(args) >= 3 {
			pattern = args[2] // and, as redis-server, ignore the rest
		}
		names := h.names(kind, pattern)
		s.local = appendArrayHeader(s.local, len(names))
		for _, n := range names {
			s.local = appendBulkString(s.local, n)
		}
	case "pubsub|numsub", "pubsub|shardnumsub":
		kind := subChannel
		if cmd.Name == "pubsub|shardnumsub" {
			kind = subShard
		}
		counts := h.counts(kind, args[2:])
		s.local = appendArrayHeader(s.local, 2*len(counts))
		for i, n := range counts {
			s.local = appendBulk(s.local, args[2+i])
			s.local = appendInt(s.local, int64(n))
		}
	case "pubsub|numpat":
		s.local = appendInt(s.local, int64(len(h.names(subPattern, nil))))
	default:
		// PUBSUB HELP: any node's text is the server's.
		s.forward(args, raw, router.NoSlot, true, false)
		return
	}
	s.replyLocal(off)
}

// writeSubscribed writes the session's replies while it is subscribed,
// under the lock deliveries take, then the messages held for them.
func (s *session) writeSubscribed(sub *subscriber, b []byte) error {
	sub.mu.Lock()
	sub.proto = s.proto
	err := s.writeNow(b)
	if sub.hold {
		sub.hold = false
		if err == nil && len(sub.pending) > 0 {
			err = s.writeNow(sub.pending)
		}
		sub.pending = sub.pending[:0]
		if cap(sub.pending) > maxKeptBuffer {
			sub.pending = nil
		}
	}
	if sub.total() == 0 {
		sub.gone = true
	}
	sub.mu.Unlock()
	if sub.gone && s.held != nil && s.held.sub == sub {
		s.held.sub = nil
		s.dropHeld()
	}
	return err
}

// deliver writes a message to the client, from a hub reader goroutine: at
// once when nothing is waiting, behind the backlog otherwise. A client
// whose unread output passes the limit is cut off; the others go on.
func (sub *subscriber) deliver(kind subKind, name []byte, m *message) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.gone {
		return
	}
	if _, ok := sub.sets[kind][string(name)]; !ok {
		return // unsubscribed since the reader looked the topic up
	}
	s := sub.s
	b := m.bytes(sub.proto)
	limit := s.srv.maxOutputBytes()
	if sub.hold {
		if len(sub.pending)+len(b) > limit {
			sub.cutOff()
			return
		}
		sub.pending = append(sub.pending, b...)
		return
	}
	if o := s.out; o != nil {
		o.mu.Lock()
		over := o.writing && len(o.buf)+len(b) > limit
		o.mu.Unlock()
		if over {
			sub.cutOff()
			return
		}
	}
	if err := s.writeNow(b); err != nil {
		sub.gone = true
		if err == errSlowClient {
			s.srv.kill(s)
		}
	}
}

// cutOff disconnects a subscriber that does not read its messages. Under
// sub.mu. The session is killed as CLIENT KILL does, so that a parked one
// wakes up and ends.
func (sub *subscriber) cutOff() {
	sub.gone = true
	s := sub.s
	s.srv.closedBy(closedOutputLimit)
	s.srv.noteRefused("client disconnected", "output_limit", s.nc, "limit_bytes", s.srv.maxOutputBytes())
	s.srv.kill(s)
}

// unsubscribeAll ends every subscription of the session, writing nothing:
// the session is closing or being RESET.
func (s *session) unsubscribeAll() {
	sub := s.held.sub
	sub.mu.Lock()
	sub.gone = true
	var names [3][]string
	for kind, set := range sub.sets {
		for name := range set {
			names[kind] = append(names[kind], name)
		}
		clear(set)
	}
	sub.pending = nil
	sub.hold = false
	sub.mu.Unlock()
	s.held.sub = nil
	if h := s.srv.peekHub(); h != nil {
		for kind := range names {
			h.remove(sub, subKind(kind), names[kind])
		}
	}
}
