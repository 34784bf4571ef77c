package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// kind says how the proxy treats a command.
type kind uint8

const (
	// kindForward: routed by the slot of its keys (any master when it
	// has none) over the shared, multiplexed connections.
	kindForward kind = iota
	// kindLocal: answered by the proxy itself.
	kindLocal
	// kindAll: sent to every master, the replies merged into one.
	kindAll
	// kindScript: routed by its keys like kindForward, and the proxy
	// remembers or re-loads the script it runs.
	kindScript
	// kindSlotArg: routed to the master of the slot its argument names
	// (CLUSTER COUNTKEYSINSLOT, GETKEYSINSLOT).
	kindSlotArg
	// kindTxn: MULTI, EXEC, DISCARD, WATCH, UNWATCH (txn.go).
	kindTxn
	// kindBlocking: may block; runs on a dedicated connection
	// (blocking.go). XREAD and XREADGROUP are this kind only with BLOCK.
	kindBlocking
	// kindPubSub: the Pub/Sub commands (pubsub.go).
	kindPubSub
	// kindUnsupported: refused, with the reason in unsupported.
	kindUnsupported
)

// kinds says how the commands that are not simply routed are served, by
// name, a subcommand as "container|sub". A container's entry covers the
// subcommands that have none of their own.
var kinds = map[string]kind{
	"ping": kindLocal, "echo": kindLocal, "quit": kindLocal, "select": kindLocal,
	"auth": kindLocal, "hello": kindLocal, "reset": kindLocal,
	"readonly": kindLocal, "readwrite": kindLocal, "role": kindLocal,
	"client|setname": kindLocal, "client|getname": kindLocal, "client|id": kindLocal,
	"client|info": kindLocal, "client|list": kindLocal, "client|kill": kindLocal,
	"client|no-evict": kindLocal, "client|no-touch": kindLocal, "client|reply": kindLocal,
	"client|setinfo": kindLocal, "client|tracking": kindLocal, "client|trackinginfo": kindLocal,
	"client|getredir": kindLocal, "client|caching": kindLocal,
	"cluster": kindLocal, "cluster|countkeysinslot": kindSlotArg, "cluster|getkeysinslot": kindSlotArg,
	"config|set": kindLocal, "config|get": kindLocal, "acl|whoami": kindLocal,
	"scan": kindLocal, "randomkey": kindLocal, "info": kindLocal, "wait": kindLocal,
	"slowlog": kindLocal,

	"keys": kindAll, "dbsize": kindAll, "flushall": kindAll, "flushdb": kindAll,
	"script|load": kindAll, "script|exists": kindAll, "script|flush": kindAll, "script|kill": kindAll,
	"function|load": kindAll, "function|delete": kindAll, "function|flush": kindAll,
	"function|restore": kindAll, "function|kill": kindAll,
	"lastsave": kindAll, "save": kindAll, "bgsave": kindAll, "bgrewriteaof": kindAll,

	"eval": kindScript, "evalsha": kindScript, "eval_ro": kindScript, "evalsha_ro": kindScript,

	"multi": kindTxn, "exec": kindTxn, "discard": kindTxn, "watch": kindTxn, "unwatch": kindTxn,
	"client|unblock": kindLocal,

	"subscribe": kindPubSub, "psubscribe": kindPubSub, "ssubscribe": kindPubSub,
	"unsubscribe": kindPubSub, "punsubscribe": kindPubSub, "sunsubscribe": kindPubSub,
	"publish": kindPubSub, "spublish": kindPubSub, "pubsub": kindPubSub,

	"monitor": kindUnsupported, "sync": kindUnsupported, "psync": kindUnsupported,
	"replconf": kindUnsupported, "asking": kindUnsupported, "waitaof": kindUnsupported,
	"shutdown": kindUnsupported, "debug": kindUnsupported, "failover": kindUnsupported,
	"replicaof": kindUnsupported, "slaveof": kindUnsupported, "module": kindUnsupported,
	"client|pause": kindUnsupported, "client|unpause": kindUnsupported,
	"config|resetstat": kindUnsupported, "config|rewrite": kindUnsupported,
	"acl|setuser": kindUnsupported, "acl|deluser": kindUnsupported, "acl|load": kindUnsupported,
	"acl|save": kindUnsupported, "acl|log": kindUnsupported, "script|debug": kindUnsupported,
}

// unsupported gives the reason a command is refused for good, for the
// error reply and the command reference, by the name in kinds. Commands
// without one (MONITOR, WAITAOF) are not supported yet.
var unsupported = map[string]string{
	"sync": "replication is between cluster nodes", "psync": "replication is between cluster nodes",
	"replconf": "replication is between cluster nodes", "asking": "redirections are the proxy's business",
	"shutdown": "it would stop a cluster node", "debug": "it acts on one cluster node",
	"failover": "failover is a cluster operation", "replicaof": "replication is a cluster operation",
	"slaveof": "replication is a cluster operation", "module": "modules are loaded on the nodes",
	"client|pause":     "it would pause a node for every client",
	"client|unpause":   "it would pause a node for every client",
	"config|resetstat": "it acts on the nodes' own statistics", "config|rewrite": "it acts on the nodes' own files",
	"acl|setuser": "ACL users are managed on the nodes", "acl|deluser": "ACL users are managed on the nodes",
	"acl|load": "ACL users are managed on the nodes", "acl|save": "ACL users are managed on the nodes",
	"acl|log": "ACL users are managed on the nodes", "script|debug": "it would hold a backend connection",
}

// kindOf classifies a command, a subcommand by its own name first, then
// by its container's. It runs once per command when a table is built.
func kindOf(c *Command) kind {
	if k, ok := kinds[c.Name]; ok {
		return k
	}
	name := c.Name
	if i := strings.IndexByte(name, '|'); i >= 0 {
		if k, ok := kinds[name[:i]]; ok {
			return k
		}
	}
	if c.Flags&CmdBlocking != 0 && name != "xread" && name != "xreadgroup" {
		return kindBlocking
	}
	return kindForward
}

// refusalReason is why c is refused for good, by its own name or its
// container's; "" when it is only not supported yet.
func refusalReason(c *Command) string {
	if why := unsupported[c.Name]; why != "" {
		return why
	}
	if container, _, ok := strings.Cut(c.Name, "|"); ok {
		return unsupported[container]
	}
	return ""
}

// commandName is c's name as redis-server prints it in errors and the
// reference: "CLIENT LIST".
func commandName(c *Command) string {
	return strings.ToUpper(strings.ReplaceAll(c.Name, "|", " "))
}

// refusal is the error reply to a command of kindUnsupported.
func refusal(c *Command) string {
	name := commandName(c)
	why := refusalReason(c)
	if why == "" {
		return fmt.Sprintf(msgNotSupportedFmt, name)
	}
	return fmt.Sprintf(msgNotSupportedWhyFmt, name, why)
}

// lookup is Table.Lookup, remembering the last name found.
func (s *session) lookup(name []byte) *Command {
	t := s.srv.commands()
	if t == s.lastTable && string(name) == string(s.lastName[:s.lastLen]) {
		return s.lastCmd
	}
	cmd := t.Lookup(name)
	if cmd != nil && len(name) <= len(s.lastName) {
		s.lastLen = copy(s.lastName[:], name)
		s.lastCmd, s.lastTable = cmd, t
	}
	return cmd
}

// errCrossProtocol ends a session that sent an HTTP request.
var errCrossProtocol = errors.New("proxy: HTTP request from a client")

// isHTTPLine reports whether name is one of the words redis-server takes
// for an HTTP request sent to it: POST, or a Host: header.
func isHTTPLine(name []byte) bool {
	return bytes.EqualFold(name, []byte("post")) || bytes.EqualFold(name, []byte("host:"))
}

// handle answers or routes one command, in the order of the batch.
func (s *session) handle(args [][]byte, raw []byte) {
	cmd := s.lookup(args[0])
	if cmd == nil {
		if isHTTPLine(args[0]) {
			s.srv.noteRefused("client sent an HTTP request line (POST or Host:), as a cross-protocol attack from a web page would; connection closed",
				"http", s.nc)
			s.http, s.quit = true, true
			s.srv.closedBy(closedCrossProtocol)
			return
		}
		s.reject(unknownCommand(args))
		return
	}
	top := cmd
	if cmd.Sub != nil && len(args) >= 2 {
		sub := cmd.Subcommand(args[1])
		if sub == nil {
			s.reject(unknownSubcommand(cmd.Name, args[1]))
			return
		}
		cmd = sub
	}
	s.lastResolved = cmd
	s.cmdNow = cmd
	if !cmd.ArityOK(len(args)) {
		s.rejectCmd(cmd, wrongArity(cmd.Name))
		return
	}
	if !s.authed && cmd.Flags&CmdNoAuth == 0 && !s.authedNow() {
		s.rejectCmd(cmd, msgNoAuth)
		return
	}
	if s.srv.policy.denies(top, cmd) {
		s.rejectCmd(cmd, deniedError(cmd))
		return
	}
	if u := s.user.Load(); u != nil && u.readOnly && mayNotRun(cmd) {
		s.rejectCmd(cmd, noPerm(cmd))
		return
	}
	if s.held != nil && s.answerHeld(cmd, args, raw) {
		return
	}

	if cmd.kind != kindForward {
		s.answerOther(cmd, args, raw)
		return
	}
	if cmd.Flags&CmdBlocking != 0 && hasBlockOption(args) {
		s.block(cmd, args, raw)
		return
	}

	slot := router.NoSlot
	s.keys = cmd.Keys(args, s.keys[:0])
	for _, k := range s.keys {
		ks := int(slotmap.Slot(args[k]))
		if slot == router.NoSlot {
			slot = ks
		} else if ks != slot {
			if cmd.fan != fanNone {
				s.split(cmd, args, s.keys)
				return
			}
			s.replyError(msgCrossSlot)
			return
		}
	}
	s.forward(args, raw, slot, cmd.Flags&CmdReadOnly != 0, cmd.idempotent(args))
}

// answerOther serves the commands that are not simply routed. It is kept
// out of handle, and out of line, so that handle's stack frame, which
// every GET and SET pays for, stays small: a bigger frame grows the stack
// of every session goroutine that has served a command.
//
//go:noinline
func (s *session) answerOther(cmd *Command, args [][]byte, raw []byte) {
	switch cmd.kind {
	case kindLocal, kindAll:
		s.answerLocal(cmd, args)
	case kindScript:
		s.forwardScript(cmd, args, raw)
	case kindSlotArg:
		s.forwardSlotArg(args, raw)
	case kindTxn:
		s.answerTxn(cmd, args)
	case kindBlocking:
		s.block(cmd, args, raw)
	case kindPubSub:
		s.answerPubSub(cmd, args, raw)
	default:
		s.replyError(refusal(cmd))
	}
}

// hasBlockOption reports whether XREAD or XREADGROUP args ask to block: the
// BLOCK option before STREAMS.
func hasBlockOption(args [][]byte) bool {
	for _, a := range args[1:] {
		if bytes.EqualFold(a, []byte("streams")) {
			return false
		}
		if bytes.EqualFold(a, []byte("block")) {
			return true
		}
	}
	return false
}
