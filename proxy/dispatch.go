package proxy

import (
	"bytes"
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
	// kindUnsupported: refused for now. These commands either hold a
	// connection (transactions, Pub/Sub, blocking), span the whole
	// keyspace, or would change the state of a connection that other
	// clients share.
	kindUnsupported
)

var kinds = map[string]kind{
	"ping": kindLocal, "echo": kindLocal, "quit": kindLocal, "select": kindLocal,
	"auth": kindLocal, "hello": kindLocal, "reset": kindLocal, "client": kindLocal,
	"readonly": kindLocal, "readwrite": kindLocal,

	"multi": kindUnsupported, "exec": kindUnsupported, "discard": kindUnsupported,
	"watch": kindUnsupported, "unwatch": kindUnsupported,
	"subscribe": kindUnsupported, "psubscribe": kindUnsupported, "ssubscribe": kindUnsupported,
	"unsubscribe": kindUnsupported, "punsubscribe": kindUnsupported, "sunsubscribe": kindUnsupported,
	"monitor": kindUnsupported, "sync": kindUnsupported, "psync": kindUnsupported,
	"replconf": kindUnsupported, "asking": kindUnsupported, "wait": kindUnsupported,
	"waitaof": kindUnsupported, "keys": kindUnsupported, "scan": kindUnsupported,
	"dbsize": kindUnsupported, "flushall": kindUnsupported, "flushdb": kindUnsupported,
	"randomkey": kindUnsupported, "script": kindUnsupported, "function": kindUnsupported,
	"swapdb": kindUnsupported, "shutdown": kindUnsupported, "debug": kindUnsupported,
	"failover": kindUnsupported, "replicaof": kindUnsupported, "slaveof": kindUnsupported,
}

// kindOf classifies a command, a subcommand by its container's name. It
// runs once per command when a table is built.
func kindOf(c *Command) kind {
	name := c.Name
	if i := strings.IndexByte(name, '|'); i >= 0 {
		name = name[:i]
	}
	if k, ok := kinds[name]; ok {
		return k
	}
	if c.Flags&CmdBlocking != 0 && name != "xread" && name != "xreadgroup" {
		return kindUnsupported
	}
	return kindForward
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

// handle answers or routes one command, in the order of the batch.
func (s *session) handle(args [][]byte, raw []byte) {
	cmd := s.lookup(args[0])
	if cmd == nil {
		s.replyError(unknownCommand(args))
		return
	}
	if cmd.Sub != nil && len(args) >= 2 {
		sub := cmd.Subcommand(args[1])
		if sub == nil {
			s.replyError(unknownSubcommand(cmd.Name, args[1]))
			return
		}
		cmd = sub
	}
	if !cmd.ArityOK(len(args)) {
		s.replyError(wrongArity(cmd.Name))
		return
	}
	if !s.authed && cmd.Flags&CmdNoAuth == 0 {
		s.replyError(msgNoAuth)
		return
	}

	switch cmd.kind {
	case kindLocal:
		s.answerLocal(cmd, args)
		return
	case kindUnsupported:
		s.replyError(fmt.Sprintf(msgNotSupportedFmt, strings.ToUpper(cmd.Name)))
		return
	}
	if cmd.Flags&CmdBlocking != 0 && hasBlockOption(args) {
		s.replyError(fmt.Sprintf(msgNotSupportedFmt, strings.ToUpper(cmd.Name)+" BLOCK"))
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
	s.forward(args, raw, slot, cmd.Flags&CmdReadOnly != 0)
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
