package proxy

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"sync"
)

// Scripts and functions. Redis 7 does not replicate its script cache: a
// master promoted by a failover, or one that is given slots by a reshard,
// answers EVALSHA with NOSCRIPT. The proxy remembers every script loaded
// or run through it, and on NOSCRIPT loads it on that master and runs the
// EVALSHA again, once (router.Request.Script), so that the client never
// sees it.

// scriptCache maps a script's SHA1 to the SCRIPT LOAD command of its body,
// bounded in bytes; past the bound, the oldest scripts are forgotten
// (their EVALSHA then gets NOSCRIPT where the master lost them, as
// without the proxy).
type scriptCache struct {
	mu    sync.Mutex
	max   int
	size  int
	load  map[string][]byte // lower-case hex sha1 -> "SCRIPT LOAD body", immutable
	order []string          // shas, oldest first
}

func newScriptCache(maxBytes int) *scriptCache {
	return &scriptCache{max: maxBytes, load: make(map[string][]byte)}
}

// add remembers body and returns its SHA1, as Redis computes it.
func (c *scriptCache) add(body []byte) {
	sum := sha1.Sum(body)
	sha := hex.EncodeToString(sum[:])
	if len(body) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.load[sha]; ok {
		return
	}
	cmd := appendCommand(nil, [][]byte{[]byte("SCRIPT"), []byte("LOAD"), body})
	for c.size+len(cmd) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.load[old])
		delete(c.load, old)
	}
	c.load[sha] = cmd
	c.order = append(c.order, sha)
	c.size += len(cmd)
}

// get returns the SCRIPT LOAD command of the script sha names, or nil.
func (c *scriptCache) get(sha []byte) []byte {
	if len(sha) != 40 {
		return nil
	}
	var lower [40]byte
	for i, ch := range sha {
		if 'A' <= ch && ch <= 'F' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.load[string(lower[:])]
}

func (c *scriptCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.load)
	c.order = nil
	c.size = 0
}

// forwardScript routes EVAL, EVALSHA and their _RO forms by their keys,
// which must share a slot (any master without keys), remembering the
// script of an EVAL and giving an EVALSHA the means to re-load its own.
func (s *session) forwardScript(cmd *Command, args [][]byte, raw []byte) {
	switch cmd.Name {
	case "eval", "eval_ro":
		s.srv.scripts.add(args[1])
	default:
		s.script = s.srv.scripts.get(args[1])
	}
	slot := s.keySlot(cmd, args)
	if slot == slotsDiffer {
		s.script = nil
		s.replyError(msgCrossSlot)
		return
	}
	s.forward(args, raw, slot, cmd.Flags&CmdReadOnly != 0, false)
}

// scriptCommand serves SCRIPT LOAD, EXISTS, FLUSH and KILL, and FUNCTION
// LOAD, DELETE, FLUSH, RESTORE and KILL: every master gets them, and the
// replies merge into what one server answers.
func (s *session) scriptCommand(name string, args [][]byte) {
	switch name {
	case "script|load":
		s.srv.scripts.add(args[2])
		s.sendAll(args, false, mergeFirst)
	case "script|exists":
		shas := make([][]byte, len(args)-2)
		for i, a := range args[2:] {
			shas[i] = bytes.Clone(a)
		}
		s.sendAll(args, true, func(s *session, b []byte, parts []value) []byte {
			return s.mergeScriptExists(b, shas, parts)
		})
	case "script|flush":
		s.srv.scripts.flush()
		s.sendAll(args, false, mergeFirst)
	case "script|kill", "function|kill":
		s.sendKill(args, mergeKill)
	default: // function load, delete, flush, restore
		s.sendAll(args, false, mergeFirst)
	}
}

// mergeScriptExists says a script exists when every master has it, or
// when the proxy knows its body and will load it where it is missing.
func (s *session) mergeScriptExists(b []byte, shas [][]byte, parts []value) []byte {
	b = appendArrayHeader(b, len(shas))
	for i, sha := range shas {
		all := true
		for _, p := range parts {
			if i >= len(p.elems) || p.elems[i].num != 1 {
				all = false
			}
		}
		if all || s.srv.scripts.get(sha) != nil {
			b = appendInt(b, 1)
		} else {
			b = appendInt(b, 0)
		}
	}
	return b
}

// mergeKill answers SCRIPT KILL and FUNCTION KILL: OK when a master
// stopped a script; else the most telling error (UNKILLABLE before
// NOTBUSY), as the one server running it would answer.
func mergeKill(s *session, b []byte, parts []value) []byte {
	var errMsg []byte
	for _, p := range parts {
		switch {
		case !p.isError():
			return appendSimple(b, "OK")
		case errMsg == nil || bytes.HasPrefix(errMsg, []byte("NOTBUSY")):
			errMsg = p.str
		}
	}
	return appendError(b, string(errMsg))
}
