package proxy

import (
	"bytes"
	"strings"
)

// redisVersion is the server version the proxy reports in HELLO until it
// has asked a master for its own.
const redisVersion = "7.0.0"

// answerLocal answers the commands the proxy serves itself, or by sending
// requests of its own. cmd has passed the arity and authentication checks.
func (s *session) answerLocal(cmd *Command, args [][]byte) {
	s.lastRun.Store(cmd) // CLIENT LIST names itself while it runs
	if s.startCommandJob(cmd, args) {
		return
	}
	off := len(s.local)
	switch cmd.Name {
	case "ping":
		switch len(args) {
		case 1:
			s.local = appendSimple(s.local, "PONG")
		case 2:
			s.local = appendBulk(s.local, args[1])
		default:
			s.local = appendError(s.local, wrongArity("ping"))
		}
	case "echo":
		s.local = appendBulk(s.local, args[1])
	case "quit":
		s.local = appendSimple(s.local, "OK")
		s.quit = true
	case "select":
		s.local = s.selectDB(args[1])
	case "auth":
		s.local = s.auth(args[1:])
	case "hello":
		s.local = s.hello(args[1:])
	case "reset":
		s.releaseHeld()
		s.authed = !s.srv.authRequired()
		s.user.Store(nil)
		s.proto = 2
		s.replyMode = replyOn
		s.meta.Store(nil)
		s.local = appendSimple(s.local, "RESET")
	case "acl|whoami":
		s.local = appendBulkString(s.local, s.userName())
	case "readonly", "readwrite":
		s.local = appendSimple(s.local, "OK")
	case "role":
		// A master without replicas, as a standalone server answers.
		s.local = appendArrayHeader(s.local, 3)
		s.local = appendBulkString(s.local, "master")
		s.local = appendInt(s.local, 0)
		s.local = appendArrayHeader(s.local, 0)
	case "slowlog|get", "slowlog|len", "slowlog|reset", "slowlog|help":
		s.local = s.slowlogCommand(cmd, args)
	default:
		s.local = s.answerSub(cmd, args)
	}
	s.replyLocal(off)
}

// answerSub answers the CLIENT and CLUSTER subcommands the proxy serves,
// and refuses the rest. Out of line, so that its frame is on the stack
// only when it runs.
//
//go:noinline
func (s *session) answerSub(cmd *Command, args [][]byte) []byte {
	switch {
	case strings.HasPrefix(cmd.Name, "client|"):
		return s.client(cmd.Name[len("client|"):], args)
	case strings.HasPrefix(cmd.Name, "cluster|"):
		self := s.srv.clusterSelf(s.nc)
		b, ok := appendCluster(s.local, cmd.Name[len("cluster|"):], args[2:], self, s.proto)
		if !ok {
			b = appendError(b, refusal(cmd))
		}
		return b
	}
	return appendError(s.local, refusal(cmd))
}

func (s *session) selectDB(arg []byte) []byte {
	db, ok := string2ll(arg)
	switch {
	case !ok || db != int(int32(db)):
		return appendError(s.local, msgNotInteger)
	case db != 0:
		return appendError(s.local, msgSelectCluster)
	}
	return appendSimple(s.local, "OK")
}

// auth serves AUTH password and AUTH username password: the default user
// (clients.password), as a redis-server configured with requirepass has,
// and the users of clients.users.
func (s *session) auth(args [][]byte) []byte {
	if len(args) > 2 {
		return appendError(s.local, msgSyntax)
	}
	if len(args) == 1 && !s.srv.authRequired() {
		return appendError(s.local, msgNoPasswordSet)
	}
	if !s.checkPassword(args) {
		return appendError(s.local, msgWrongPass)
	}
	return appendSimple(s.local, "OK")
}

// checkPassword checks [username] password against the accounts and, when
// they match, makes the session that user's. Without any password set,
// the default user takes any password, as redis-server's "nopass"
// default user does.
func (s *session) checkPassword(args [][]byte) bool {
	var name []byte
	if len(args) == 2 {
		name = args[0]
	}
	u := s.srv.accounts.Load().check(name, args[len(args)-1])
	if u == nil {
		return false
	}
	s.authed = true
	s.user.Store(u)
	return true
}

// hello serves HELLO [protover [AUTH username password] [SETNAME name]].
// The reply is in the protocol asked for; the session's later requests go
// over backend connections that speak it.
func (s *session) hello(args [][]byte) []byte {
	proto := s.proto
	if len(args) > 0 {
		v, ok := string2ll(args[0])
		if !ok {
			return appendError(s.local, "ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return appendError(s.local, msgNoProto)
		}
		proto = v
		args = args[1:]
	}
	var name []byte
	for len(args) > 0 {
		opt := args[0]
		switch {
		case bytes.EqualFold(opt, []byte("auth")) && len(args) >= 3:
			if !s.checkPassword(args[1:3]) {
				return appendError(s.local, msgWrongPass)
			}
			args = args[3:]
		case bytes.EqualFold(opt, []byte("setname")) && len(args) >= 2:
			if !validName(args[1]) {
				return appendError(s.local, msgBadName)
			}
			name = args[1]
			args = args[2:]
		default:
			return appendError(s.local, "ERR Syntax error in HELLO option '"+string(cut(opt, 128))+"'")
		}
	}
	if !s.authed && !s.authedNow() {
		return appendError(s.local, msgHelloNoAuth)
	}
	m := *s.clientMeta()
	if name != nil {
		m.name = string(name)
	}
	m.resp = proto
	s.meta.Store(&m)
	s.proto = proto
	b := appendMapHeader(s.local, 7, proto)
	b = appendBulkString(b, "server")
	b = appendBulkString(b, "redis")
	b = appendBulkString(b, "version")
	b = appendBulkString(b, s.srv.serverVersion())
	b = appendBulkString(b, "proto")
	b = appendInt(b, int64(proto))
	b = appendBulkString(b, "id")
	b = appendInt(b, int64(s.id))
	b = appendBulkString(b, "mode")
	b = appendBulkString(b, "standalone")
	b = appendBulkString(b, "role")
	b = appendBulkString(b, "master")
	b = appendBulkString(b, "modules")
	return appendArrayHeader(b, 0)
}

const msgBadName = "ERR Client names cannot contain spaces, newlines or special characters."

func (s *session) setName(name []byte) []byte {
	if !validName(name) {
		return appendError(s.local, msgBadName)
	}
	m := *s.clientMeta()
	m.name = string(name)
	s.meta.Store(&m)
	return appendSimple(s.local, "OK")
}

// validName is redis-server's rule for client names: printable ASCII
// without spaces.
func validName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}
