package proxy

import (
	"bytes"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clientMeta is what a client said about itself. A session replaces it
// whole on change, so that CLIENT LIST, run by another session, reads it
// without a lock.
type clientMeta struct {
	name    string // CLIENT SETNAME, HELLO SETNAME
	libName string // CLIENT SETINFO LIB-NAME
	libVer  string // CLIENT SETINFO LIB-VER
	resp    int    // the protocol HELLO chose
}

// noMeta is the clientMeta of a client that has said nothing of itself:
// most never do, and they share it rather than each holding a copy.
var noMeta = clientMeta{resp: 2}

// clientMeta returns what the client said about itself.
func (s *session) clientMeta() *clientMeta {
	if m := s.meta.Load(); m != nil {
		return m
	}
	return &noMeta
}

// client serves the CLIENT subcommands the proxy answers: the proxy's
// clients are the clients a CLIENT command speaks of, never the proxy's
// own connections to the masters.
func (s *session) client(sub string, args [][]byte) []byte {
	b := s.local
	switch sub {
	case "setname":
		return s.setName(args[2])
	case "getname":
		if m := s.clientMeta(); m.name != "" {
			return appendBulkString(b, m.name)
		}
		return appendNull(b, s.proto)
	case "id":
		return appendInt(b, int64(s.id))
	case "setinfo":
		return s.setInfo(args[2], args[3])
	case "info":
		return appendVerbatim(b, string(s.appendClientLine(nil, time.Now()))+"\n", s.proto)
	case "list":
		return s.clientList(args[2:])
	case "kill":
		return s.clientKill(args[2:])
	case "no-evict", "no-touch":
		if !bytes.EqualFold(args[2], []byte("on")) && !bytes.EqualFold(args[2], []byte("off")) {
			return appendError(b, msgSyntax)
		}
		return appendSimple(b, "OK")
	case "reply":
		switch {
		case bytes.EqualFold(args[2], []byte("on")):
			s.replyMode = replyOn
		case bytes.EqualFold(args[2], []byte("off")):
			s.replyMode = replyOff
		case bytes.EqualFold(args[2], []byte("skip")):
			// Under OFF, SKIP changes nothing, as in redis-server.
			if s.replyMode != replyOff {
				s.replyMode = replySkip
			}
		default:
			return appendError(b, msgSyntax)
		}
		s.replyCmd = true
		return appendSimple(b, "OK")
	case "tracking":
		switch {
		case bytes.EqualFold(args[2], []byte("off")):
			return appendSimple(b, "OK") // it is off
		case bytes.EqualFold(args[2], []byte("on")):
			return appendError(b, msgNoTracking)
		}
		return appendError(b, msgSyntax)
	case "trackinginfo":
		b = appendMapHeader(b, 3, s.proto)
		b = appendBulkString(b, "flags")
		b = appendSetHeader(b, 1, s.proto)
		b = appendBulkString(b, "off")
		b = appendBulkString(b, "redirect")
		b = appendInt(b, -1)
		b = appendBulkString(b, "prefixes")
		return appendArrayHeader(b, 0)
	case "getredir":
		return appendInt(b, -1)
	case "caching":
		return appendError(b, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
	}
	return appendError(b, unknownSubcommand("client", []byte(sub)))
}

const msgNoTracking = "ERR slotproxy does not support 'CLIENT TRACKING' yet: client-side caching through the proxy is not there"

// muteReplies applies CLIENT REPLY to the entries the command just
// handled added, from index from on; prev is the mode before it. Out of
// line: answerBatch's frame is on every session's stack.
//
//go:noinline
func (s *session) muteReplies(from int, prev replyMode) {
	mute := prev != replyOn
	if s.replyCmd {
		// CLIENT REPLY OFF and SKIP send no reply of their own; ON does.
		s.replyCmd = false
		mute = s.replyMode != replyOn
	} else if prev == replySkip {
		s.replyMode = replyOn
	}
	if mute {
		for i := from; i < len(s.entries); i++ {
			s.entries[i].mute = true
		}
	}
}

// setInfo serves CLIENT SETINFO LIB-NAME|LIB-VER value, validated as
// redis-server 7.2 validates it.
func (s *session) setInfo(attr, val []byte) []byte {
	m := *s.clientMeta()
	var name string
	switch {
	case bytes.EqualFold(attr, []byte("lib-name")):
		name = "lib-name"
	case bytes.EqualFold(attr, []byte("lib-ver")):
		name = "lib-ver"
	default:
		return appendError(s.local, sanitize("ERR Unrecognized option '"+string(cut(attr, 128))+"'"))
	}
	if !validName(val) {
		return appendError(s.local, "ERR "+name+" cannot contain spaces, newlines or special characters.")
	}
	if name == "lib-name" {
		m.libName = string(val)
	} else {
		m.libVer = string(val)
	}
	s.meta.Store(&m)
	return appendSimple(s.local, "OK")
}

// appendClientLine appends s's line of CLIENT LIST, in redis-server 7.2's
// format. The figures of a redis-server's own buffers have no meaning
// here and are 0.
func (s *session) appendClientLine(b []byte, now time.Time) []byte {
	m := s.clientMeta()
	idle := int64(0)
	if since := s.idleSince.Load(); since != 0 {
		idle = (now.UnixNano() - since) / int64(time.Second)
	}
	cmd := "NULL"
	if c := s.lastRun.Load(); c != nil {
		cmd = c.Name
	}
	b = append(b, "id="...)
	b = strconv.AppendUint(b, s.id, 10)
	b = append(b, " addr="...)
	b = append(b, addrString(s.nc.RemoteAddr())...)
	b = append(b, " laddr="...)
	b = append(b, addrString(s.nc.LocalAddr())...)
	b = append(b, " fd="...)
	b = strconv.AppendInt(b, int64(s.fd), 10)
	b = append(b, " name="...)
	b = append(b, m.name...)
	b = append(b, " age="...)
	b = strconv.AppendInt(b, (now.UnixNano()-s.created)/int64(time.Second), 10)
	b = append(b, " idle="...)
	b = strconv.AppendInt(b, idle, 10)
	b = append(b, " flags="...)
	held := s.shown.Load()
	if held == nil {
		held = &heldShown{multi: -1}
	}
	flags := len(b)
	if held.sub+held.psub+held.ssub > 0 {
		b = append(b, 'P')
	}
	if held.multi >= 0 {
		b = append(b, 'x')
	}
	if s.blockedOn.Load() != nil {
		b = append(b, 'b')
	}
	if len(b) == flags {
		b = append(b, 'N')
	}
	b = append(b, " db=0 sub="...)
	b = strconv.AppendInt(b, int64(held.sub), 10)
	b = append(b, " psub="...)
	b = strconv.AppendInt(b, int64(held.psub), 10)
	b = append(b, " ssub="...)
	b = strconv.AppendInt(b, int64(held.ssub), 10)
	b = append(b, " multi="...)
	b = strconv.AppendInt(b, int64(held.multi), 10)
	b = append(b, " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd="...)
	b = append(b, cmd...)
	b = append(b, " user="...)
	b = append(b, s.userName()...)
	b = append(b, " redir=-1 resp="...)
	b = strconv.AppendInt(b, int64(m.resp), 10)
	b = append(b, " lib-name="...)
	b = append(b, m.libName...)
	b = append(b, " lib-ver="...)
	b = append(b, m.libVer...)
	// As redis-server 8 counts them; 0 when the proxy keeps no stats.
	b = append(b, " tot-net-in="...)
	b = strconv.AppendUint(b, s.netIn.Load(), 10)
	b = append(b, " tot-net-out="...)
	b = strconv.AppendUint(b, s.netOut.Load(), 10)
	b = append(b, " tot-cmds="...)
	b = strconv.AppendUint(b, s.cmds.Load(), 10)
	return b
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// clientList serves CLIENT LIST [TYPE type] [ID id ...].
func (s *session) clientList(args [][]byte) []byte {
	var ids map[uint64]bool
	typ := ""
	for len(args) > 0 {
		switch {
		case bytes.EqualFold(args[0], []byte("type")) && len(args) >= 2:
			typ = strings.ToLower(string(args[1]))
			switch typ {
			case "normal", "pubsub", "master", "replica", "slave":
			default:
				return appendError(s.local, sanitize("ERR Unknown client type '"+string(cut(args[1], 128))+"'"))
			}
			args = args[2:]
		case bytes.EqualFold(args[0], []byte("id")) && len(args) >= 2:
			ids = make(map[uint64]bool)
			for _, a := range args[1:] {
				id, err := strconv.ParseInt(string(a), 10, 64)
				if err != nil {
					return appendError(s.local, "ERR Invalid client ID")
				}
				if id > 0 { // no client has another id: it matches none
					ids[uint64(id)] = true
				}
			}
			args = nil
		default:
			return appendError(s.local, msgSyntax)
		}
	}
	var text []byte
	if typ == "" || typ == "normal" || typ == "pubsub" {
		now := time.Now()
		for _, c := range s.srv.clientSessions() {
			if (ids == nil || ids[c.id]) && (typ == "" || c.pubsub() == (typ == "pubsub")) {
				text = c.appendClientLine(text, now)
				text = append(text, '\n')
			}
		}
	}
	return appendVerbatim(s.local, string(text), s.proto)
}

// clientKill serves CLIENT KILL addr:port and CLIENT KILL with filters
// (ID, ADDR, LADDR, TYPE, USER, SKIPME), over the proxy's clients.
func (s *session) clientKill(args [][]byte) []byte {
	if len(args) == 1 {
		// The old form: one address, an error when nobody has it.
		n := s.killWhere(func(c *session) bool { return addrString(c.nc.RemoteAddr()) == string(args[0]) }, false)
		if n == 0 {
			return appendError(s.local, "ERR No such client")
		}
		return appendSimple(s.local, "OK")
	}
	if len(args)%2 != 0 {
		return appendError(s.local, msgSyntax)
	}
	var (
		id          uint64
		addr, laddr string
		haveAddr    bool
		haveLaddr   bool
		typ         string
		user        string
		none        bool // a filter no client of the proxy can match
		skipMe      = true
	)
	for i := 0; i < len(args); i += 2 {
		opt, val := strings.ToLower(string(args[i])), args[i+1]
		switch opt {
		case "id":
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n <= 0 {
				return appendError(s.local, "ERR client-id should be greater than 0")
			}
			id = uint64(n)
		case "addr":
			addr, haveAddr = string(val), true
		case "laddr":
			laddr, haveLaddr = string(val), true
		case "type":
			switch typ = strings.ToLower(string(val)); typ {
			case "normal", "pubsub":
			case "master", "replica", "slave":
				none = true
			default:
				return appendError(s.local, sanitize("ERR Unknown client type '"+string(cut(val, 128))+"'"))
			}
		case "user":
			user = string(val)
			if user != "default" && s.srv.accounts.Load().users[user] == nil {
				return appendError(s.local, sanitize("ERR No such user '"+string(cut(val, 128))+"'"))
			}
		case "skipme":
			switch strings.ToLower(string(val)) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				return appendError(s.local, msgSyntax)
			}
		default:
			return appendError(s.local, msgSyntax)
		}
	}
	if none {
		return appendInt(s.local, 0)
	}
	n := s.killWhere(func(c *session) bool {
		return (id == 0 || c.id == id) &&
			(typ == "" || c.pubsub() == (typ == "pubsub")) &&
			(!haveAddr || addrString(c.nc.RemoteAddr()) == addr) &&
			(!haveLaddr || addrString(c.nc.LocalAddr()) == laddr) &&
			(user == "" || c.userName() == user)
	}, skipMe)
	return appendInt(s.local, int64(n))
}

// killWhere disconnects the clients match selects and returns how many.
// The calling client, when selected, is closed once answered, as
// redis-server does.
func (s *session) killWhere(match func(*session) bool, skipMe bool) int {
	n := 0
	for _, c := range s.srv.clientSessions() {
		if !match(c) {
			continue
		}
		if c == s {
			if skipMe {
				continue
			}
			s.quit = true
		} else {
			s.srv.kill(c)
		}
		n++
	}
	return n
}

// clientSessions returns the connected clients, by id.
func (srv *Server) clientSessions() []*session {
	srv.mu.Lock()
	list := make([]*session, 0, len(srv.sessions))
	for c := range srv.sessions {
		list = append(list, c)
	}
	srv.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	return list
}

// kill disconnects a client of another session: its connection is closed,
// and a parked one is woken to end.
func (srv *Server) kill(c *session) {
	if srv.parker != nil && srv.parker.kill(c) {
		c.nc.Close()
		go srv.serveClient(c)
		return
	}
	c.killed.Store(true)
	c.nc.Close()
}
