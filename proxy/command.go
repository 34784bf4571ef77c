package proxy

// The command table: for every command, its arity, its flags and where its
// keys are, so that a request can be routed to the master owning its slot.
//
// The proxy learns the table at start-up from a backend's COMMAND reply, so
// that module commands and commands newer than this code are routed too, and
// merges it over a built-in fallback: the raw RESP2 reply of COMMAND from
// Debian's redis-server 7.0.15 (commands sorted by name, so that regenerating
// it is reproducible), embedded below. One parser serves both.

//go:generate go run ../internal/gencommands -out command_table.resp

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/resp"

	"github.com/slotproxy/slotproxy/router"
)

// CmdFlags are a command's flags, from the strings COMMAND reports for it.
type CmdFlags uint32

const (
	CmdWrite       CmdFlags = 1 << iota // "write"
	CmdReadOnly                         // "readonly"
	CmdDenyOOM                          // "denyoom"
	CmdAdmin                            // "admin"
	CmdPubSub                           // "pubsub"
	CmdNoScript                         // "noscript"
	CmdBlocking                         // "blocking"
	CmdLoading                          // "loading"
	CmdStale                            // "stale"
	CmdFast                             // "fast"
	CmdNoAuth                           // "no_auth"
	CmdMovableKeys                      // "movablekeys"
	CmdNoMulti                          // "no_multi"
	CmdAllowBusy                        // "allow_busy"

	CmdNoMandatoryKeys // "no_mandatory_keys": may run with no key at all (EVAL ... 0)
	CmdMayReplicate    // "may_replicate"
	CmdAsking          // "asking": accepted on an importing slot without ASKING
	CmdModule          // "module": implemented by a module
)

var cmdFlagNames = map[string]CmdFlags{
	"write":             CmdWrite,
	"readonly":          CmdReadOnly,
	"denyoom":           CmdDenyOOM,
	"admin":             CmdAdmin,
	"pubsub":            CmdPubSub,
	"noscript":          CmdNoScript,
	"blocking":          CmdBlocking,
	"loading":           CmdLoading,
	"stale":             CmdStale,
	"fast":              CmdFast,
	"no_auth":           CmdNoAuth,
	"movablekeys":       CmdMovableKeys,
	"no_multi":          CmdNoMulti,
	"allow_busy":        CmdAllowBusy,
	"no_mandatory_keys": CmdNoMandatoryKeys,
	"may_replicate":     CmdMayReplicate,
	"asking":            CmdAsking,
	"module":            CmdModule,
}

// Command is one entry of the command table. It is immutable once its table
// is built and safe for concurrent use.
type Command struct {
	Name     string // lower case; subcommands as "object|encoding"
	Arity    int    // Redis convention: >0 exact argc (including the name), <0 at least -Arity
	Flags    CmdFlags
	KeySpecs []KeySpec
	Sub      map[string]*Command // lower-case subcommand name ("encoding") -> command; nil for plain commands

	oneKeyAt1 bool        // KeySpecs is exactly "one key at index 1": Keys' fast path
	getKeys   getKeysFunc // Redis' own key finder, for specs that cannot say it all
	subMaxLen int         // longest name in Sub
	kind      kind        // how the proxy serves it (dispatch.go)
	fan       fanOp       // how it is split across slots (fanout.go)
	resend    resendKind  // whether a write may be sent twice (resend.go)
	id        uint16      // its top-level name's number, for the command counters (stats.go)
	policyID  uint16      // its full name's number, for the command policy (policy.go)
	family    uint8       // what its latency is counted with (stats.go)
}

// ArityOK reports whether argc arguments (the name included) fit the
// command's arity. An arity of 0 (unknown) accepts any count.
func (c *Command) ArityOK(argc int) bool {
	switch {
	case c.Arity > 0:
		return argc == c.Arity
	case c.Arity < 0:
		return argc >= -c.Arity
	default:
		return argc >= 1
	}
}

// Subcommand returns the subcommand named by arg (case-insensitive), or nil
// when c has none or arg is unknown. Zero allocations.
func (c *Command) Subcommand(arg []byte) *Command {
	if c.Sub == nil || len(arg) > c.subMaxLen {
		return nil
	}
	return lookupFold(c.Sub, arg)
}

// lookupBuf is the size of the stack buffer names are lower-cased into.
// Longer names (only possible from a module) are matched by a scan.
const lookupBuf = 64

// lookupFold finds name in m, whose keys are lower case, without allocating.
func lookupFold(m map[string]*Command, name []byte) *Command {
	if len(name) > lookupBuf {
		for k, c := range m {
			if equalFoldLower(name, k) {
				return c
			}
		}
		return nil
	}
	var buf [lookupBuf]byte
	b := buf[:len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
	}
	return m[string(b)] // the compiler does not allocate for this conversion
}

// Table is a command table. It is immutable once built and safe for
// concurrent use; a new one is published by swapping a pointer.
type Table struct {
	cmds   map[string]*Command
	maxLen int // longest name in cmds
}

// Lookup finds a command by name, case-insensitively, with zero allocations.
// It returns nil when the command is unknown.
func (t *Table) Lookup(name []byte) *Command {
	if t == nil || len(name) > t.maxLen {
		return nil
	}
	return lookupFold(t.cmds, name)
}

// Len returns the number of commands in t (subcommands not counted).
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.cmds)
}

// Merge returns a new table holding t's commands with those of live added or
// replacing them. Either may be nil.
func (t *Table) Merge(live *Table) *Table {
	m := &Table{cmds: make(map[string]*Command, t.Len()+live.Len())}
	for _, src := range []*Table{t, live} {
		if src == nil {
			continue
		}
		for name, c := range src.cmds {
			m.cmds[name] = c
		}
		m.maxLen = max(m.maxLen, src.maxLen)
	}
	return m
}

//go:embed command_table.resp
var builtinReply []byte

// Builtin returns the table parsed from the embedded COMMAND reply of
// redis-server 7.0.15, with the commands the proxy answers itself that
// server does not have. It is parsed once; the result is shared.
func Builtin() *Table { return builtinTable() }

// proxySubcommands are subcommands the proxy answers that a Redis 7.0
// backend does not know (they came with 7.2), so that clients which send
// them at connect (CLIENT SETINFO) are answered whatever the backends are.
var proxySubcommands = []*Command{
	{Name: "client|setinfo", Arity: 4, Flags: CmdNoScript | CmdLoading | CmdStale},
	{Name: "client|no-touch", Arity: 3, Flags: CmdNoScript | CmdLoading | CmdStale},
}

// withProxyCommands returns t with proxySubcommands added where missing.
// t is not modified: the containers that change are copied.
func withProxyCommands(t *Table) *Table {
	out := &Table{cmds: make(map[string]*Command, len(t.cmds)), maxLen: t.maxLen}
	for name, c := range t.cmds {
		out.cmds[name] = c
	}
	for _, sub := range proxySubcommands {
		container, short, _ := strings.Cut(sub.Name, "|")
		c := out.cmds[container]
		if c == nil || c.Sub[short] != nil {
			continue
		}
		cp := *c
		cp.Sub = make(map[string]*Command, len(c.Sub)+1)
		for k, v := range c.Sub {
			cp.Sub[k] = v
		}
		sc := *sub
		sc.kind = kindOf(&sc)
		cp.Sub[short] = &sc
		cp.subMaxLen = max(cp.subMaxLen, len(short))
		out.cmds[container] = &cp
	}
	return out
}

var builtinTable = sync.OnceValue(func() *Table {
	t, err := ParseCommandReply(builtinReply)
	if err != nil {
		// The file is generated and checked by the tests: this is a build
		// defect, not something a client or a server can cause.
		panic("proxy: embedded command_table.resp: " + err.Error())
	}
	return withProxyCommands(t)
})

// ErrCommandReply is returned, wrapped, for a COMMAND reply that cannot be
// parsed.
var ErrCommandReply = errors.New("proxy: malformed COMMAND reply")

func replyErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCommandReply, fmt.Sprintf(format, args...))
}

// ParseCommandReply parses the raw RESP2 reply to COMMAND: an array with, per
// command, [name, arity, flags, first_key, last_key, step, acl_categories,
// tips, key_specs, subcommands]. Servers before Redis 7 send only the first 6
// or 7 elements; their keys are then described from first/last/step.
func ParseCommandReply(raw []byte) (*Table, error) {
	// Frame it first: the resp reader allocates an array's elements before
	// reading them, and a reply that frames to exactly its length cannot
	// announce more elements than it holds.
	n, err := router.ScanReply(raw)
	switch {
	case err != nil:
		return nil, replyErrorf("%v", err)
	case n == 0:
		return nil, replyErrorf("truncated reply")
	case n != len(raw):
		return nil, replyErrorf("%d trailing bytes after the reply", len(raw)-n)
	}
	v, _, err := resp.NewReader(bytes.NewReader(raw)).ReadValue()
	if err != nil {
		return nil, replyErrorf("%v", err)
	}
	switch v.Type() {
	case resp.Error:
		return nil, replyErrorf("server replied %q", v.String())
	case resp.Array:
	default:
		return nil, replyErrorf("reply is a %s, not an array", v.Type())
	}

	entries := v.Array()
	t := &Table{cmds: make(map[string]*Command, len(entries))}
	for i, e := range entries {
		c, err := parseCommand(e, true)
		if err != nil {
			return nil, fmt.Errorf("%w (command #%d)", err, i)
		}
		t.cmds[c.Name] = c
		t.maxLen = max(t.maxLen, len(c.Name))
	}
	return t, nil
}

// parseCommand decodes one command entry; top says whether it is a
// top-level command (whose subcommands are decoded too).
func parseCommand(v resp.Value, top bool) (*Command, error) {
	a := v.Array()
	if v.Type() != resp.Array || len(a) < 6 {
		return nil, replyErrorf("command entry is not an array of at least 6 elements")
	}
	name, ok := respString(a[0])
	if !ok || name == "" {
		return nil, replyErrorf("command name is not a string")
	}
	c := &Command{Name: strings.ToLower(name)}
	if c.Arity, ok = respInt(a[1]); !ok {
		return nil, replyErrorf("%s: arity is not an integer", c.Name)
	}
	for _, f := range a[2].Array() {
		c.Flags |= cmdFlagNames[strings.ToLower(f.String())]
	}
	c.id = commandID(c.Name)
	c.policyID = policyID(c.Name)
	if len(a) >= 7 {
		var cats []string
		for _, cat := range a[6].Array() {
			cats = append(cats, cat.String())
		}
		c.family = familyOfCommand(c, cats)
	}

	if len(a) >= 9 {
		for _, ks := range a[8].Array() {
			s, err := parseKeySpec(ks)
			if err != nil {
				return nil, replyErrorf("%s: %v", c.Name, err)
			}
			c.KeySpecs = append(c.KeySpecs, s)
		}
	} else {
		first, ok1 := respInt(a[3])
		last, ok2 := respInt(a[4])
		step, ok3 := respInt(a[5])
		if ok1 && ok2 && ok3 {
			if s, ok := legacyKeySpec(first, last, step); ok {
				c.KeySpecs = []KeySpec{s}
			}
		}
	}

	if top && len(a) >= 10 {
		for _, sv := range a[9].Array() {
			sub, err := parseCommand(sv, false)
			if err != nil {
				return nil, replyErrorf("%s: subcommand: %v", c.Name, err)
			}
			// "object|encoding" is reached as Sub["encoding"].
			key := sub.Name
			if i := strings.IndexByte(key, '|'); i >= 0 {
				key = key[i+1:]
			}
			if c.Sub == nil {
				c.Sub = make(map[string]*Command)
			}
			c.Sub[key] = sub
			c.subMaxLen = max(c.subMaxLen, len(key))
		}
	}

	c.oneKeyAt1 = len(c.KeySpecs) == 1 && c.KeySpecs[0].isOneKeyAt1() && c.Sub == nil
	if top {
		c.getKeys = builtinGetKeys[c.Name]
	}
	c.kind = kindOf(c)
	c.fan = fanOf(c.Name)
	c.resend = resendOf(c.Name)
	return c, nil
}

func respString(v resp.Value) (string, bool) {
	switch v.Type() {
	case resp.BulkString, resp.SimpleString:
		if v.IsNull() {
			return "", false
		}
		return v.String(), true
	}
	return "", false
}

// respInt accepts a RESP integer or a string holding one.
func respInt(v resp.Value) (int, bool) {
	switch v.Type() {
	case resp.Integer:
		return v.Integer(), true
	case resp.BulkString, resp.SimpleString:
		n, err := strconv.Atoi(v.String())
		return n, err == nil
	}
	return 0, false
}
