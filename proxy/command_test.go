package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/resp"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// keysRedis is a standalone redis-server with a single raw RESP2
// connection to it.
type keysRedis struct {
	conn net.Conn
	seen bytes.Buffer
	rd   *resp.Reader
}

// startKeysRedis starts a standalone redis-server (clustertest.Standalone:
// the test fails, rather than skips, when it cannot start) and connects.
func startKeysRedis(t testing.TB) *keysRedis {
	t.Helper()
	n := clustertest.Standalone(t, "")
	conn, err := net.DialTimeout("tcp", n.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", n.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &keysRedis{conn: conn}
	r.rd = resp.NewReader(io.TeeReader(conn, &r.seen))
	return r
}

// do sends one command and returns its decoded reply and raw bytes. One
// request is in flight at a time, so the reader never buffers past the reply.
func (r *keysRedis) do(t testing.TB, args ...[]byte) (resp.Value, []byte) {
	t.Helper()
	var req []byte
	req = append(req, '*')
	req = strconv.AppendInt(req, int64(len(args)), 10)
	req = append(req, "\r\n"...)
	for _, a := range args {
		req = append(req, '$')
		req = strconv.AppendInt(req, int64(len(a)), 10)
		req = append(req, "\r\n"...)
		req = append(req, a...)
		req = append(req, "\r\n"...)
	}
	if err := r.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.conn.Write(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	r.seen.Reset()
	v, n, err := r.rd.ReadValue()
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return v, bytes.Clone(r.seen.Bytes()[:n])
}

func TestCommandTableBuiltin(t *testing.T) {
	tbl := Builtin()
	if tbl != Builtin() {
		t.Fatal("Builtin() parsed twice")
	}
	if got := tbl.Len(); got != 240 {
		t.Errorf("Len() = %d, want 240 (redis-server 7.0.15)", got)
	}
	tests := []struct {
		name    string
		arity   int
		has     CmdFlags
		hasNot  CmdFlags
		nspecs  int
		hasSubs bool
	}{
		{"get", 2, CmdReadOnly | CmdFast, CmdWrite, 1, false},
		{"set", -3, CmdWrite | CmdDenyOOM, CmdReadOnly, 1, false},
		{"mset", -3, CmdWrite | CmdDenyOOM, 0, 1, false},
		{"eval", -3, CmdNoScript | CmdMovableKeys | CmdNoMandatoryKeys, CmdWrite, 1, false},
		{"blpop", -3, CmdWrite | CmdBlocking, 0, 1, false},
		{"subscribe", -2, CmdPubSub | CmdNoScript, 0, 0, false},
		{"auth", -2, CmdNoAuth | CmdNoScript | CmdFast, 0, 0, false},
		{"multi", 1, CmdNoScript | CmdFast | CmdAllowBusy, 0, 0, false},
		{"object", -2, 0, 0, 0, true},
		{"cluster", -2, 0, 0, 0, true},
		{"sort", -2, CmdWrite | CmdMovableKeys, 0, 3, false},
		{"migrate", -6, CmdWrite | CmdMovableKeys, 0, 2, false},
		{"shutdown", -1, CmdAdmin | CmdNoScript | CmdLoading | CmdStale | CmdNoMulti | CmdAllowBusy, 0, 0, false},
	}
	for _, tt := range tests {
		c := tbl.Lookup([]byte(tt.name))
		if c == nil {
			t.Errorf("%s: not found", tt.name)
			continue
		}
		if c.Name != tt.name || c.Arity != tt.arity {
			t.Errorf("%s: got name %q arity %d, want arity %d", tt.name, c.Name, c.Arity, tt.arity)
		}
		if c.Flags&tt.has != tt.has || c.Flags&tt.hasNot != 0 {
			t.Errorf("%s: flags %#x, want %#x set and %#x clear", tt.name, c.Flags, tt.has, tt.hasNot)
		}
		if len(c.KeySpecs) != tt.nspecs {
			t.Errorf("%s: %d key specs, want %d", tt.name, len(c.KeySpecs), tt.nspecs)
		}
		if (c.Sub != nil) != tt.hasSubs {
			t.Errorf("%s: Sub = %v", tt.name, c.Sub)
		}
	}

	want := KeySpec{
		Flags:   KeyRO | KeyAccess,
		Begin:   BeginKeyword,
		Keyword: "streams", StartFrom: 1,
		Find:    FindRange,
		LastKey: -1, KeyStep: 1, Limit: 2,
	}
	if got := tbl.Lookup([]byte("xread")).KeySpecs[0]; got != want {
		t.Errorf("xread key spec = %+v, want %+v", got, want)
	}
	want = KeySpec{
		Flags: KeyRW | KeyAccess | KeyUpdate,
		Begin: BeginIndex, Index: 2,
		Find:      FindKeyNum,
		KeyNumIdx: 0, FirstKey: 1, KeyStep: 1,
	}
	if got := tbl.Lookup([]byte("eval")).KeySpecs[0]; got != want {
		t.Errorf("eval key spec = %+v, want %+v", got, want)
	}
	if s := tbl.Lookup([]byte("migrate")).KeySpecs[1]; !s.Incomplete() {
		t.Errorf("migrate KEYS spec not incomplete: %+v", s)
	}
	if s := tbl.Lookup([]byte("sort")).KeySpecs[2]; s.Begin != BeginUnknown || s.Find != FindUnknown || s.Flags != KeyOW|KeyUpdate {
		t.Errorf("sort STORE spec = %+v, want unknown OW|update", s)
	}
	if s := tbl.Lookup([]byte("spublish")).KeySpecs[0]; s.Flags != KeyNotKey {
		t.Errorf("spublish spec flags = %#x, want not_key", s.Flags)
	}
}

func TestLookup(t *testing.T) {
	tbl := Builtin()
	for _, name := range []string{"get", "GET", "Get", "gEt", "georadiusbymember_ro", "GEORADIUSBYMEMBER_RO", "client"} {
		c := tbl.Lookup([]byte(name))
		if c == nil || c.Name != strings.ToLower(name) {
			t.Errorf("Lookup(%q) = %v", name, c)
		}
	}
	for _, name := range []string{"", "ge", "gett", "object|encoding", "encoding", "get\x00", strings.Repeat("a", 100), strings.Repeat("G", 4096)} {
		if c := tbl.Lookup([]byte(name)); c != nil {
			t.Errorf("Lookup(%q) = %q, want nil", name, c.Name)
		}
	}
	if c := (*Table)(nil).Lookup([]byte("get")); c != nil {
		t.Errorf("nil table Lookup = %v", c)
	}
	if n := testing.AllocsPerRun(100, func() {
		tbl.Lookup([]byte("GET"))
		tbl.Lookup([]byte("zunionstore"))
	}); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

// TestLookupLongNames covers names longer than the stack buffer, which only
// a module could register.
func TestLookupLongNames(t *testing.T) {
	long := strings.Repeat("x", 100)
	sub := strings.Repeat("s", 80)
	raw := encodeReply(t, []any{
		[]any{long, -1, []any{"module"}, 0, 0, 0, []any{}, []any{}, []any{},
			[]any{[]any{long + "|" + sub, 2, []any{}, 0, 0, 0, []any{}, []any{}, []any{}, []any{}}}},
	})
	tbl, err := ParseCommandReply(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := tbl.Lookup([]byte(strings.ToUpper(long)))
	if c == nil || c.Flags != CmdModule {
		t.Fatalf("Lookup(long) = %+v", c)
	}
	if s := c.Subcommand([]byte(strings.ToUpper(sub))); s == nil || s.Name != long+"|"+sub {
		t.Errorf("Subcommand(long) = %+v", s)
	}
	if s := c.Subcommand([]byte(sub + "s")); s != nil {
		t.Errorf("Subcommand(longer) = %+v", s)
	}
}

func TestCommandSubcommand(t *testing.T) {
	tbl := Builtin()
	tests := []struct{ cmd, sub, want string }{
		{"object", "encoding", "object|encoding"},
		{"OBJECT", "ENCODING", "object|encoding"},
		{"object", "Freq", "object|freq"},
		{"cluster", "info", "cluster|info"},
		{"xgroup", "create", "xgroup|create"},
		{"xinfo", "STREAM", "xinfo|stream"},
		{"memory", "usage", "memory|usage"},
		{"config", "get", "config|get"},
		{"object", "nosuch", ""},
		{"object", "", ""},
		{"object", "object|encoding", ""},
		{"get", "encoding", ""},
	}
	for _, tt := range tests {
		c := tbl.Lookup([]byte(tt.cmd))
		got := c.Subcommand([]byte(tt.sub))
		switch {
		case tt.want == "" && got != nil:
			t.Errorf("%s %s: got %q, want nil", tt.cmd, tt.sub, got.Name)
		case tt.want != "" && (got == nil || got.Name != tt.want):
			t.Errorf("%s %s: got %v, want %q", tt.cmd, tt.sub, got, tt.want)
		}
	}
	obj := tbl.Lookup([]byte("object"))
	if s := obj.Subcommand([]byte("encoding")); s.Arity != 3 || s.Flags&CmdReadOnly == 0 || s.Sub != nil {
		t.Errorf("object|encoding = %+v", s)
	}
	if n := testing.AllocsPerRun(100, func() { obj.Subcommand([]byte("ENCODING")) }); n != 0 {
		t.Errorf("Subcommand allocates %v times", n)
	}
}

func TestCommandArityOK(t *testing.T) {
	tests := []struct {
		arity, argc int
		want        bool
	}{
		{2, 2, true}, {2, 1, false}, {2, 3, false},
		{-3, 2, false}, {-3, 3, true}, {-3, 100, true},
		{-1, 1, true}, {0, 1, true}, {0, 0, false},
	}
	for _, tt := range tests {
		c := &Command{Arity: tt.arity}
		if got := c.ArityOK(tt.argc); got != tt.want {
			t.Errorf("arity %d: ArityOK(%d) = %v, want %v", tt.arity, tt.argc, got, tt.want)
		}
	}
	if !Builtin().Lookup([]byte("get")).ArityOK(2) || Builtin().Lookup([]byte("get")).ArityOK(3) {
		t.Error("GET arity")
	}
}

func TestCommandTableMerge(t *testing.T) {
	base := Builtin()
	live, err := ParseCommandReply(encodeReply(t, []any{
		// A module command, a replaced GET, and a name longer than any built-in.
		[]any{"json.get", -2, []any{"readonly", "module"}, 1, 1, 1, []any{}, []any{}, []any{
			[]any{"flags", []any{"RO"}, "begin_search", []any{"type", "index", "spec", []any{"index", 1}},
				"find_keys", []any{"type", "range", "spec", []any{"lastkey", 0, "keystep", 1, "limit", 0}}},
		}, []any{}},
		[]any{"get", 3, []any{"readonly"}, 1, 1, 1},
		[]any{"a.very.long.module.command.name", 1, []any{}, 0, 0, 0},
	}))
	if err != nil {
		t.Fatal(err)
	}
	m := base.Merge(live)
	if m == base || m == live {
		t.Fatal("Merge returned one of its inputs")
	}
	if m.Len() != base.Len()+2 {
		t.Errorf("merged Len = %d, want %d", m.Len(), base.Len()+2)
	}
	if c := m.Lookup([]byte("JSON.GET")); c == nil || c.Flags != CmdReadOnly|CmdModule {
		t.Errorf("json.get = %+v", c)
	} else if keys := c.Keys(cmdLine("JSON.GET doc $.a"), nil); !slices.Equal(keys, []int{1}) {
		t.Errorf("json.get keys = %v", keys)
	}
	if c := m.Lookup([]byte("get")); c.Arity != 3 {
		t.Errorf("get not replaced: arity %d", c.Arity)
	}
	if c := m.Lookup([]byte("A.VERY.LONG.MODULE.COMMAND.NAME")); c == nil {
		t.Error("long live name not found after merge")
	}
	if base.Lookup([]byte("json.get")) != nil || base.Lookup([]byte("get")).Arity != 2 {
		t.Error("Merge modified its receiver")
	}
	if n := (*Table)(nil).Merge(nil); n.Len() != 0 || n.Lookup([]byte("get")) != nil {
		t.Error("nil.Merge(nil) not empty")
	}
	if n := base.Merge(nil); n.Len() != base.Len() {
		t.Error("Merge(nil) lost commands")
	}
}

func TestParseCommandReplyLegacy(t *testing.T) {
	// Redis 6 sends 7 elements, Redis 5 six: keys come from first/last/step.
	tbl, err := ParseCommandReply(encodeReply(t, []any{
		[]any{"get", 2, []any{"readonly", "fast"}, 1, 1, 1, []any{"@read"}},
		[]any{"mset", -3, []any{"write", "denyoom"}, 1, -1, 2},
		[]any{"blpop", -3, []any{"write", "noscript"}, 1, -2, 1},
		[]any{"rename", 3, []any{"write"}, 1, 2, 1},
		[]any{"eval", -3, []any{"noscript", "movablekeys"}, 0, 0, 0},
		[]any{"ping", -1, []any{"stale", "fast"}, 0, 0, 0},
	}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want []string
	}{
		{"GET k", []string{"k"}},
		{"MSET a 1 b 2 c 3", []string{"a", "b", "c"}},
		{"BLPOP a b c 0", []string{"a", "b", "c"}},
		{"RENAME a b", []string{"a", "b"}},
		{"EVAL s 1 k", nil},
		{"PING", nil},
	}
	for _, tt := range tests {
		args := cmdLine(tt.line)
		c := tbl.Lookup(args[0])
		if got := keyNames(args, c.Keys(args, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: keys %q, want %q", tt.line, got, tt.want)
		}
	}
	if c := tbl.Lookup([]byte("get")); !c.oneKeyAt1 || c.Flags != CmdReadOnly|CmdFast {
		t.Errorf("legacy get = %+v", c)
	}
}

func TestParseCommandReplyErrors(t *testing.T) {
	valid := encodeReply(t, []any{[]any{"get", 2, []any{}, 1, 1, 1}})
	tests := map[string][]byte{
		"empty":          nil,
		"error reply":    []byte("-ERR unknown command 'COMMAND'\r\n"),
		"not an array":   []byte("+OK\r\n"),
		"trailing bytes": append(bytes.Clone(valid), "+OK\r\n"...),
		"truncated":      valid[:len(valid)-3],
		"inline":         []byte("COMMAND\r\n"),
		"forged count":   []byte("*1000000\r\n*1000000\r\n*1000000\r\n"),
		"bad bulk":       []byte("*1\r\n$5\r\nab\r\n"),
		"no crlf":        []byte("*1\r\n$2\r\nabcd"),
		"bad integer":    []byte("*1\r\n*6\r\n$3\r\nget\r\n:2x\r\n*0\r\n:1\r\n:1\r\n:1\r\n"),
		"short entry":    []byte("*1\r\n*2\r\n$3\r\nget\r\n:2\r\n"),
		"entry not arr":  []byte("*1\r\n$3\r\nget\r\n"),
		"no name":        []byte("*1\r\n*6\r\n:1\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"),
		"null name":      []byte("*1\r\n*6\r\n$-1\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"),
		"bad arity":      []byte("*1\r\n*6\r\n$3\r\nget\r\n$1\r\nx\r\n*0\r\n:1\r\n:1\r\n:1\r\n"),
		"nested arrays":  []byte(strings.Repeat("*1\r\n", 18) + ":1\r\n"),
		"key spec not array": encodeReply(t, []any{
			[]any{"get", 2, []any{}, 1, 1, 1, []any{}, []any{}, []any{"flags"}, []any{}},
		}),
		"bad subcommand": encodeReply(t, []any{
			[]any{"object", -2, []any{}, 0, 0, 0, []any{}, []any{}, []any{}, []any{"encoding"}},
		}),
	}
	for name, raw := range tests {
		if tbl, err := ParseCommandReply(raw); err == nil || !errors.Is(err, ErrCommandReply) {
			t.Errorf("%s: got table %v, err %v; want ErrCommandReply", name, tbl, err)
		}
	}
	if tbl, err := ParseCommandReply([]byte("*0\r\n")); err != nil || tbl.Len() != 0 {
		t.Errorf("empty array: %v, %v", tbl, err)
	}
}

// TestParseKeySpecTolerance checks that specs this proxy does not understand,
// or whose numbers are unsafe, become unknown specs instead of failing the
// whole table, and that what does not fit is never evaluated.
func TestParseKeySpecTolerance(t *testing.T) {
	spec := func(begin, find []any) []any {
		return []any{"notes", "x", "flags", []any{"RW", "future_flag"}, "begin_search", begin, "find_keys", find}
	}
	index1 := []any{"type", "index", "spec", []any{"index", 1}}
	range0 := []any{"type", "range", "spec", []any{"lastkey", 0, "keystep", 1, "limit", 0}}
	tests := []struct {
		name       string
		begin      []any
		find       []any
		wantKnown  bool
		wantFields KeySpec
	}{
		{"plain", index1, range0, true, KeySpec{Flags: KeyRW, Begin: BeginIndex, Index: 1, Find: FindRange, KeyStep: 1}},
		{"future begin", []any{"type", "regex", "spec", []any{"re", ".*"}}, range0, false, KeySpec{}},
		{"future find", index1, []any{"type", "magic", "spec", []any{}}, false, KeySpec{}},
		{"index 0", []any{"type", "index", "spec", []any{"index", 0}}, range0, false, KeySpec{}},
		{"huge index", []any{"type", "index", "spec", []any{"index", 1 << 40}}, range0, false, KeySpec{}},
		{"step 0", index1, []any{"type", "range", "spec", []any{"lastkey", -1, "keystep", 0, "limit", 0}}, false, KeySpec{}},
		{"negative limit", index1, []any{"type", "range", "spec", []any{"lastkey", -1, "keystep", 1, "limit", -2}}, false, KeySpec{}},
		{"missing field", index1, []any{"type", "keynum", "spec", []any{"keynumidx", 0, "keystep", 1}}, false, KeySpec{}},
		{"empty keyword", []any{"type", "keyword", "spec", []any{"keyword", "", "startfrom", 1}}, range0, false, KeySpec{}},
		{"string numbers", []any{"type", "index", "spec", []any{"index", "2"}}, range0, true,
			KeySpec{Flags: KeyRW, Begin: BeginIndex, Index: 2, Find: FindRange, KeyStep: 1}},
		{"keyword", []any{"type", "keyword", "spec", []any{"startfrom", -2, "keyword", "KeYs"}}, range0, true,
			KeySpec{Flags: KeyRW, Begin: BeginKeyword, Keyword: "keys", StartFrom: -2, Find: FindRange, KeyStep: 1}},
	}
	for _, tt := range tests {
		tbl, err := ParseCommandReply(encodeReply(t, []any{
			[]any{"cmd", -1, []any{}, 0, 0, 0, []any{}, []any{}, []any{spec(tt.begin, tt.find)}, []any{}},
		}))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		s := tbl.Lookup([]byte("cmd")).KeySpecs[0]
		if s.known() != tt.wantKnown {
			t.Errorf("%s: known = %v, spec %+v", tt.name, s.known(), s)
		}
		if tt.wantKnown && s != tt.wantFields {
			t.Errorf("%s: spec %+v, want %+v", tt.name, s, tt.wantFields)
		}
		if !tt.wantKnown && s != (KeySpec{Flags: KeyRW}) {
			t.Errorf("%s: unknown spec not normalised: %+v", tt.name, s)
		}
		// An unknown spec alone finds nothing; it must not panic either.
		c := tbl.Lookup([]byte("cmd"))
		for _, line := range []string{"cmd", "cmd a", "cmd a b c d"} {
			args := cmdLine(line)
			for _, i := range c.Keys(args, nil) {
				if i < 1 || i >= len(args) {
					t.Errorf("%s: %q: index %d out of range", tt.name, line, i)
				}
			}
		}
	}
}

// TestBuiltinMatchesServer compares the embedded table with the COMMAND reply
// of the redis-server installed here, parsed live.
func TestCommandTableMatchesServer(t *testing.T) {
	r := startKeysRedis(t)
	v, raw := r.do(t, []byte("COMMAND"))
	if v.Type() != resp.Array {
		t.Fatalf("COMMAND replied %v", v)
	}
	live, err := ParseCommandReply(raw)
	if err != nil {
		t.Fatalf("parse live COMMAND reply: %v", err)
	}
	info, _ := r.do(t, []byte("INFO"), []byte("server"))
	if !strings.Contains(info.String(), "redis_version:7.0.15") {
		t.Logf("live server is not 7.0.15; differences below may be expected:\n%.200s", info.String())
	}
	embedded, err := ParseCommandReply(builtinReply)
	if err != nil {
		t.Fatal(err)
	}
	compareCommandTables(t, "", embedded.cmds, live.cmds)
}

func compareCommandTables(t *testing.T, parent string, builtin, live map[string]*Command) {
	t.Helper()
	names := func(m map[string]*Command) []string {
		var s []string
		for n := range m {
			s = append(s, n)
		}
		sort.Strings(s)
		return s
	}
	if b, l := names(builtin), names(live); !slices.Equal(b, l) {
		t.Errorf("%s: command names differ:\nbuiltin %q\nlive    %q", parent, b, l)
	}
	for name, b := range builtin {
		l := live[name]
		if l == nil {
			continue
		}
		if b.Name != l.Name || b.Arity != l.Arity || b.Flags != l.Flags || !slices.Equal(b.KeySpecs, l.KeySpecs) ||
			b.oneKeyAt1 != l.oneKeyAt1 {
			t.Errorf("%s: builtin %+v\nlive %+v", name, b, l)
		}
		compareCommandTables(t, name, b.Sub, l.Sub)
	}
}

func TestCommandTableFile(t *testing.T) {
	if len(builtinReply) == 0 || builtinReply[0] != '*' || !bytes.HasSuffix(builtinReply, []byte("\r\n")) {
		t.Fatalf("command_table.resp does not look like a RESP array (%d bytes)", len(builtinReply))
	}
	if n, err := router.ScanReply(builtinReply); err != nil || n != len(builtinReply) {
		t.Fatalf("command_table.resp: scanned %d of %d bytes: %v", n, len(builtinReply), err)
	}
}

func FuzzParseCommandReply(f *testing.F) {
	f.Add(builtinReply)
	f.Fuzz(func(t *testing.T, raw []byte) {
		tbl, err := ParseCommandReply(raw)
		if err != nil {
			if tbl != nil || !errors.Is(err, ErrCommandReply) {
				t.Fatalf("got table %v with error %v", tbl, err)
			}
			return
		}
		// Whatever the specs say, Keys stays in range.
		args := bytes.Split(raw, []byte("\r\n"))
		if len(args) > 64 {
			args = args[:64]
		}
		for name, c := range tbl.cmds {
			args[0] = []byte(name)
			checkKeyIndexes(t, c, args)
			for _, sub := range c.Sub {
				checkKeyIndexes(t, sub, args)
			}
			if tbl.Lookup([]byte(strings.ToUpper(name))) != c {
				t.Fatalf("Lookup(%q) failed", name)
			}
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	tbl := Builtin()
	for _, name := range []string{"GET", "get", "ZUNIONSTORE"} {
		b.Run(name, func(b *testing.B) {
			n := []byte(name)
			b.ReportAllocs()
			for b.Loop() {
				if tbl.Lookup(n) == nil {
					b.Fatal("not found")
				}
			}
		})
	}
}

// encodeReply encodes v as RESP2: strings as bulk strings, ints as integers,
// []any as arrays.
func encodeReply(t testing.TB, v any) []byte {
	t.Helper()
	var out []byte
	var enc func(v any)
	enc = func(v any) {
		switch v := v.(type) {
		case string:
			out = fmt.Appendf(out, "$%d\r\n%s\r\n", len(v), v)
		case int:
			out = fmt.Appendf(out, ":%d\r\n", v)
		case []any:
			out = fmt.Appendf(out, "*%d\r\n", len(v))
			for _, e := range v {
				enc(e)
			}
		default:
			t.Fatalf("encodeReply: %T", v)
		}
	}
	enc(v)
	return out
}
