package proxy

import (
	"bytes"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tidwall/resp"
)

// cmdLine splits a command line on spaces; the token "" stands for an empty
// argument.
func cmdLine(line string) [][]byte {
	var args [][]byte
	for _, f := range strings.Fields(line) {
		if f == `""` {
			f = ""
		}
		args = append(args, []byte(f))
	}
	return args
}

func keyNames(args [][]byte, idx []int) []string {
	var s []string
	for _, i := range idx {
		s = append(s, string(args[i]))
	}
	return s
}

// builtinCommand finds the command of a command line in the built-in table.
func builtinCommand(t testing.TB, args [][]byte) *Command {
	t.Helper()
	c := Builtin().Lookup(args[0])
	if c == nil {
		t.Fatalf("%s: unknown command", args[0])
	}
	return c
}

// checkKeyIndexes calls Keys with and without room in dst and checks what must
// hold whatever args holds: indexes in range, never args[0], no duplicates,
// dst's prefix kept.
func checkKeyIndexes(t testing.TB, c *Command, args [][]byte) []int {
	t.Helper()
	keys := c.Keys(args, nil)
	for k, i := range keys {
		if i < 1 || i >= len(args) {
			t.Fatalf("%s %q: index %d out of range (keys %v)", c.Name, args, i, keys)
		}
		if slices.Contains(keys[:k], i) {
			t.Fatalf("%s %q: duplicate index %d (keys %v)", c.Name, args, i, keys)
		}
	}
	dst := append(make([]int, 0, len(keys)+3), -7, -8)
	again := c.Keys(args, dst)
	if len(again) < 2 || again[0] != -7 || again[1] != -8 || !slices.Equal(again[2:], keys) {
		t.Fatalf("%s %q: with a prefix got %v, want [-7 -8] + %v", c.Name, args, again, keys)
	}
	return keys
}

func TestKeys(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"GET k", []string{"k"}},
		{"get k", []string{"k"}},
		{"SET k v", []string{"k"}},
		{"SET k v GET EX 10", []string{"k"}},
		{"MSET a 1 b 2 c 3", []string{"a", "b", "c"}},
		{"MSET a 1 b", []string{"a", "b"}}, // arity is the caller's business; Keys stays in range
		{"MGET a b c", []string{"a", "b", "c"}},
		{"DEL a b c d e f g h i j", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
		{"HSET h f v", []string{"h"}},

		{`EVAL "return" 0`, nil},
		{"EVAL s 2 a b x y", []string{"a", "b"}},
		{"EVAL s 1 a", []string{"a"}},
		{"EVAL s abc a b", nil},
		{"EVAL s -1 a b", nil},
		{"EVAL s 3 a b", nil},
		{"EVAL s 02 a b", nil},
		{"EVAL s +2 a b", nil},
		{"EVAL s 99999999999999999999999 a", nil},
		{`EVAL s "" a`, nil},
		{"EVAL s", nil},
		{"EVALSHA abc 0", nil},
		{"EVALSHA abc 2 a b", []string{"a", "b"}},
		{"EVALSHA abc x a", nil},
		{"EVAL_RO s 1 a", []string{"a"}},
		{"FCALL f 0", nil},
		{"FCALL f 2 a b arg", []string{"a", "b"}},
		{"FCALL f two a b", nil},
		{"FCALL_RO f 1 a", []string{"a"}},

		{"ZUNIONSTORE dst 2 a b WEIGHTS 1 2", []string{"dst", "a", "b"}},
		{"ZUNIONSTORE dst 2 a b", []string{"dst", "a", "b"}},
		{"ZUNIONSTORE dst x a b", nil}, // malformed numkeys: no keys at all, as Redis
		{"ZUNIONSTORE dst 0 a", nil},
		{"ZUNIONSTORE dst 5 a b", nil},
		{"ZINTERSTORE dst 1 a AGGREGATE MAX", []string{"dst", "a"}},
		{"ZDIFFSTORE dst 2 a b", []string{"dst", "a", "b"}},
		{"ZUNION 2 a b WITHSCORES", []string{"a", "b"}},
		{"ZINTER 2 a b", []string{"a", "b"}},
		{"ZDIFF 1 a", []string{"a"}},
		{"SINTERCARD 2 a b LIMIT 5", []string{"a", "b"}},
		{"SINTERCARD 3 a b", nil},
		{"ZINTERCARD 3 a b c", []string{"a", "b", "c"}},
		{"LMPOP 2 a b LEFT COUNT 2", []string{"a", "b"}},
		{"LMPOP 0 LEFT", nil},
		{"BLMPOP 0 2 a b RIGHT", []string{"a", "b"}},
		{"BLMPOP 1.5 1 a LEFT", []string{"a"}},
		{"ZMPOP 1 a MIN", []string{"a"}},
		{"BZMPOP 0 2 a b MAX COUNT 3", []string{"a", "b"}},

		{"XREAD COUNT 2 STREAMS s1 s2 0 0", []string{"s1", "s2"}},
		{"XREAD BLOCK 0 STREAMS s 0", []string{"s"}},
		{"xread streams s1 s2 s3 1 2 3", []string{"s1", "s2", "s3"}},
		{"XREAD STREAMS s1 s2 0", []string{"s1"}},
		{"XREAD STREAMS s", nil},
		{"XREAD COUNT 2 BLOCK 0", nil},
		{"XREAD COUNT STREAMS STREAMS s 0", []string{"STREAMS"}}, // first STREAMS wins, as in Redis' key spec
		{"XREADGROUP GROUP g c STREAMS s 0", []string{"s"}},
		{"XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s1 s2 > >", []string{"s1", "s2"}},
		{"XREADGROUP GROUP g c", nil},

		{"SORT k", []string{"k"}},
		{"SORT k STORE dst", []string{"k", "dst"}},
		{"SORT k BY w_* LIMIT 0 10 GET h_* ALPHA STORE dst", []string{"k", "dst"}},
		{"SORT k STORE a STORE b", []string{"k", "b"}},
		{"SORT k GET store STORE", []string{"k"}},
		{"SORT k STORE", []string{"k"}},
		{"SORT_RO k BY w_*", []string{"k"}},
		{"SORT", nil},

		{`MIGRATE host 6379 "" 0 5000 KEYS a b`, []string{"a", "b"}},
		{`MIGRATE host 6379 "" 0 5000 COPY REPLACE AUTH pw KEYS a`, []string{"a"}},
		{`MIGRATE host 6379 "" 0 5000 AUTH2 u KEYS KEYS a`, []string{"a"}},
		{"MIGRATE host 6379 k 0 5000", []string{"k"}},
		{"MIGRATE host 6379 k 0 5000 COPY", []string{"k"}},
		{"MIGRATE host 6379 k 0 5000 KEYS a b", nil},
		{`MIGRATE host 6379 "" 0 5000 KEYS`, []string{""}}, // KEYS last: not a keyword, as in Redis
		{"MIGRATE host", nil},

		{"GEORADIUS k 15 37 200 km STORE dst", []string{"k", "dst"}},
		{"GEORADIUS k 15 37 200 km STOREDIST dst", []string{"k", "dst"}},
		{"GEORADIUS k 15 37 200 km WITHDIST STORE a STOREDIST b", []string{"k", "a", "b"}},
		{"GEORADIUS k 15 37 200 km STORE", []string{"k"}},
		{"GEORADIUSBYMEMBER k m 100 km STORE dst", []string{"k", "dst"}},
		{"GEORADIUS_RO k 15 37 200 km", []string{"k"}},
		{"GEOSEARCHSTORE dst src FROMMEMBER m BYRADIUS 1 km", []string{"dst", "src"}},

		{"BITOP AND dst a b", []string{"dst", "a", "b"}},
		{"BITOP NOT dst a", []string{"dst", "a"}},
		{"OBJECT ENCODING k", []string{"k"}},
		{"object freq k", []string{"k"}},
		{"OBJECT HELP", nil},
		{"OBJECT", nil},
		{"OBJECT NOSUCH k", nil},
		{"XGROUP CREATE s g $", []string{"s"}},
		{"XGROUP CREATE s g $ MKSTREAM", []string{"s"}},
		{"XINFO STREAM s", []string{"s"}},
		{"XINFO STREAM s FULL", []string{"s"}},
		{"MEMORY USAGE k", []string{"k"}},
		{"MEMORY USAGE k SAMPLES 5", []string{"k"}},
		{"BLPOP a b 0", []string{"a", "b"}},
		{"BLPOP a 0", []string{"a"}},
		{"BZPOPMIN a b c 1.5", []string{"a", "b", "c"}},
		{"RENAME a b", []string{"a", "b"}},
		{"SMOVE a b m", []string{"a", "b"}},
		{"LMOVE a b LEFT RIGHT", []string{"a", "b"}},
		{"BLMOVE a b LEFT RIGHT 0", []string{"a", "b"}},
		{"COPY a b", []string{"a", "b"}},
		{"COPY a b DB 1 REPLACE", []string{"a", "b"}},
		{"LCS a b", []string{"a", "b"}},
		{"PFMERGE dst a b", []string{"dst", "a", "b"}},
		{"SUNIONSTORE dst a b", []string{"dst", "a", "b"}},
		{"PING", nil},
		{"PING hello", nil},
		{"CLUSTER INFO", nil},
		{"CLUSTER KEYSLOT k", nil},
		{"PUBLISH ch msg", nil},
		// Shard channels are routed by slot, as a cluster node routes them.
		{"SPUBLISH ch msg", []string{"ch"}},
		{"SSUBSCRIBE a b", []string{"a", "b"}},
		{"SUNSUBSCRIBE", nil},
	}
	for _, tt := range tests {
		args := cmdLine(tt.line)
		c := builtinCommand(t, args)
		if got := keyNames(args, checkKeyIndexes(t, c, args)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: keys %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestKeysSubcommand goes through Subcommand explicitly, as a caller that
// needs the subcommand's flags does.
func TestKeysSubcommand(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
		ro   bool
	}{
		{"OBJECT ENCODING k", []string{"k"}, true},
		{"XGROUP CREATE s g $", []string{"s"}, false},
		{"XINFO STREAM s", []string{"s"}, true},
		{"MEMORY USAGE k", []string{"k"}, true},
		{"CLUSTER INFO", nil, false},
		{"CLUSTER COUNTKEYSINSLOT 1", nil, false},
	} {
		args := cmdLine(tt.line)
		sub := builtinCommand(t, args).Subcommand(args[1])
		if sub == nil {
			t.Fatalf("%s: no subcommand", tt.line)
		}
		if got := keyNames(args, checkKeyIndexes(t, sub, args)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: keys %q, want %q", tt.line, got, tt.want)
		}
		if ro := sub.Flags&CmdReadOnly != 0; ro != tt.ro {
			t.Errorf("%s: readonly = %v, want %v", tt.line, ro, tt.ro)
		}
	}
}

// TestKeysSpecSemantics exercises rules no 7.0 command uses: keyword
// searches near the ends, limits other than 2, steps over keynum keys, specs
// that overlap, many specs, incomplete specs without a key finder.
func TestKeysSpecSemantics(t *testing.T) {
	kw := func(k string, from int) KeySpec {
		return KeySpec{Begin: BeginKeyword, Keyword: k, StartFrom: from, Find: FindRange, KeyStep: 1}
	}
	idx := func(i, last, step, limit int) KeySpec {
		return KeySpec{Begin: BeginIndex, Index: i, Find: FindRange, LastKey: last, KeyStep: step, Limit: limit}
	}
	tests := []struct {
		name  string
		specs []KeySpec
		line  string
		want  []int
	}{
		{"keyword forward", []KeySpec{kw("k", 1)}, "c x K a", []int{3}},
		{"keyword never the last arg", []KeySpec{kw("k", 1)}, "c x k", nil},
		{"keyword from the end", []KeySpec{kw("k", -1)}, "c k a k b", []int{4}},
		{"keyword backwards skips args[1]", []KeySpec{kw("k", -1)}, "c k a", nil},
		{"keyword start past the end", []KeySpec{kw("k", 5)}, "c k a", nil},
		{"keyword startfrom 0", []KeySpec{kw("k", 0)}, "c k a", nil},
		{"keyword start before args[1]", []KeySpec{kw("k", -10)}, "c k a", nil},
		{"limit 3", []KeySpec{idx(1, -1, 1, 3)}, "c a b c 1 2 3 4 5 6", []int{1, 2, 3}},
		{"step 2 to the end", []KeySpec{idx(1, -1, 2, 0)}, "c a 1 b 2", []int{1, 3}},
		{"last -2", []KeySpec{idx(2, -2, 1, 0)}, "c x a b 0", []int{2, 3}},
		{"range past the end", []KeySpec{idx(1, 3, 1, 0)}, "c a b", nil},
		{"keynum step 2", []KeySpec{{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: 0, FirstKey: 1, KeyStep: 2}},
			"c 2 a 1 b 2", []int{2, 4}},
		{"keynum step 2 too short", []KeySpec{{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: 0, FirstKey: 1, KeyStep: 2}},
			"c 3 a 1 b", nil},
		{"keynum index past the end", []KeySpec{{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: 5, FirstKey: 6, KeyStep: 1}},
			"c a b", nil},
		{"keynum negative first key", []KeySpec{{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: 0, FirstKey: -5, KeyStep: 1}},
			"c 1 a", nil},
		{"overlapping specs", []KeySpec{idx(1, 1, 1, 0), idx(2, -1, 1, 0), idx(1, 0, 1, 0)}, "c a b c", []int{1, 2, 3}},
		{"a keyword spec that is absent", []KeySpec{idx(1, 0, 1, 0), kw("store", 2)}, "c a x", []int{1}},
		{"incomplete spec keeps its keys", []KeySpec{idx(1, 0, 1, 0), {Flags: KeyIncomplete, Begin: BeginIndex, Index: 2, Find: FindRange, KeyStep: 1}},
			"c a b", []int{1, 2}},
		{"unknown spec keeps the others", []KeySpec{idx(1, 0, 1, 0), {}}, "c a b", []int{1}},
		{"malformed spec drops all", []KeySpec{idx(1, 0, 1, 0), {Begin: BeginIndex, Index: 2, Find: FindKeyNum, FirstKey: 1, KeyStep: 1}, {}},
			"c a x b", nil},
		{"many specs", []KeySpec{
			idx(1, 0, 1, 0), idx(2, 0, 1, 0), idx(3, 0, 1, 0), idx(4, 0, 1, 0), idx(5, 0, 1, 0),
			idx(6, 0, 1, 0), idx(7, 0, 1, 0), idx(8, 0, 1, 0), idx(9, 0, 1, 0), idx(1, -1, 1, 0),
		}, "c a b c d e f g h i j k", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	}
	// Hand-built specs with numbers the parser would refuse are ignored, not
	// looped over or overflowed.
	const huge = int(^uint(0) >> 1)
	for _, bad := range []KeySpec{
		{Begin: BeginIndex, Index: 1, Find: FindRange, LastKey: -1, KeyStep: 0},
		{Begin: BeginIndex, Index: 1, Find: FindRange, LastKey: -1, KeyStep: -1},
		{Begin: BeginIndex, Index: huge, Find: FindRange, LastKey: huge, KeyStep: 1},
		{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: 0, FirstKey: 1, KeyStep: huge},
		{Begin: BeginIndex, Index: 1, Find: FindKeyNum, KeyNumIdx: huge, FirstKey: 1, KeyStep: 1},
		{Begin: BeginKeyword, Keyword: "k", StartFrom: -huge, Find: FindRange, KeyStep: 1},
		{Begin: BeginIndex, Index: 1, Find: FindRange, LastKey: -1, KeyStep: 1, Limit: -huge},
	} {
		tests = append(tests, struct {
			name  string
			specs []KeySpec
			line  string
			want  []int
		}{"hostile", []KeySpec{bad}, "c 3 k a b c", nil})
	}
	for _, tt := range tests {
		c := &Command{Name: "c", Arity: -1, KeySpecs: tt.specs}
		args := cmdLine(tt.line)
		if got := checkKeyIndexes(t, c, args); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q: keys %v, want %v", tt.name, tt.line, got, tt.want)
		}
	}
}

func TestKeysMalformed(t *testing.T) {
	tbl := Builtin()
	lines := [][][]byte{
		nil,
		{},
		{[]byte("get")},
		{[]byte("eval"), nil, nil},
		{[]byte("eval"), []byte("s"), []byte("-9223372036854775808"), []byte("a")},
		{[]byte("eval"), []byte("s"), []byte("9223372036854775807"), []byte("a")},
		{[]byte("zunionstore"), []byte("d"), []byte("2147483648"), []byte("a")},
		{[]byte("xread"), []byte("streams")},
		{[]byte("migrate"), []byte(""), []byte(""), []byte(""), []byte(""), []byte(""), []byte("keys")},
		{[]byte("sort"), []byte("k"), []byte("limit")},
	}
	for name, c := range tbl.cmds {
		for _, args := range lines {
			if len(args) > 0 {
				args = slices.Clone(args)
				args[0] = []byte(name)
			}
			checkKeyIndexes(t, c, args)
			for _, sub := range c.Sub {
				checkKeyIndexes(t, sub, args)
			}
		}
	}
}

func TestKeysAllocs(t *testing.T) {
	dst := make([]int, 0, 64)
	for _, line := range []string{
		"GET k", "MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8 i 9 j 10", "EVAL s 2 a b", "XREAD COUNT 2 STREAMS s1 s2 0 0",
		"ZUNIONSTORE d 2 a b", "SORT k STORE d", `MIGRATE h 1 "" 0 0 KEYS a b`, "OBJECT ENCODING k", "EVAL s x a",
	} {
		args := cmdLine(line)
		c := builtinCommand(t, args)
		if n := testing.AllocsPerRun(100, func() { dst = c.Keys(args, dst[:0]) }); n != 0 {
			t.Errorf("%s: %v allocs", line, n)
		}
	}
}

// getKeys asks the server which arguments of args are keys. An error reply
// (no keys, invalid arguments, unknown command) means none.
func (r *keysRedis) getKeys(t testing.TB, args [][]byte) ([]string, string) {
	t.Helper()
	v, _ := r.do(t, append([][]byte{[]byte("COMMAND"), []byte("GETKEYS")}, args...)...)
	if v.Type() == resp.Error {
		return nil, v.String()
	}
	var keys []string
	for _, k := range v.Array() {
		keys = append(keys, k.String())
	}
	return keys, ""
}

// TestKeysMatchServer compares Keys with COMMAND GETKEYS of a real
// redis-server on sample command lines.
func TestKeysMatchServer(t *testing.T) {
	r := startKeysRedis(t)
	lines := []string{
		"GET k", "get k", "SET k v", "SET k v GET EX 10", "MSET a 1 b 2 c 3", "MSETNX a 1 b 2", "MGET a b c",
		"DEL a b c d e f g", "UNLINK a", "EXISTS a b", "TOUCH a b", "HSET h f v f2 v2", "GETEX k PERSIST",
		"SETRANGE k 0 v", "LPOS l v", "BITFIELD k GET u4 0", "XADD s * f v", "WATCH a b",
		`EVAL "return" 0`, "EVAL s 2 a b arg", "EVAL s abc a b", "EVAL s -1 a", "EVAL s 3 a b",
		"EVALSHA sha 2 a b", "EVALSHA sha 0", "EVAL_RO s 1 a", "EVALSHA_RO sha 1 a",
		"FCALL f 2 a b x", "FCALL f 0", "FCALL f x a", "FCALL_RO f 1 a",
		"ZUNIONSTORE dst 2 a b WEIGHTS 1 2", "ZUNIONSTORE dst x a b", "ZUNIONSTORE dst 0 a",
		"ZINTERSTORE dst 1 a AGGREGATE MAX", "ZDIFFSTORE dst 2 a b", "ZUNION 2 a b WITHSCORES", "ZINTER 2 a b",
		"ZDIFF 1 a", "SINTERCARD 2 a b LIMIT 5", "ZINTERCARD 3 a b c",
		"LMPOP 2 a b LEFT COUNT 2", "BLMPOP 0 2 a b RIGHT", "ZMPOP 1 a MIN", "BZMPOP 1 2 a b MAX COUNT 3",
		"XREAD COUNT 2 STREAMS s1 s2 0 0", "XREAD BLOCK 0 STREAMS s 0", "XREAD STREAMS s1 s2 0",
		"XREADGROUP GROUP g c STREAMS s 0", "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s1 s2 > >",
		"SORT k", "SORT k STORE dst", "SORT k BY w_* LIMIT 0 10 GET h_* STORE dst", "SORT k STORE a STORE b",
		"SORT_RO k BY x",
		`MIGRATE host 6379 "" 0 5000 KEYS a b`, "MIGRATE host 6379 k 0 5000 COPY REPLACE",
		`MIGRATE host 6379 "" 0 5000 AUTH pw KEYS a`, "MIGRATE host 6379 k 0 5000 KEYS a b",
		"GEORADIUS k 15 37 200 km STORE dst", "GEORADIUS k 15 37 200 km STOREDIST d2",
		"GEORADIUS k 15 37 200 km STORE a STOREDIST b", "GEORADIUSBYMEMBER k m 100 km STORE dst",
		"GEOSEARCHSTORE dst src FROMMEMBER m BYRADIUS 1 km", "GEOSEARCH k FROMLONLAT 0 0 BYRADIUS 1 km",
		"BITOP AND dst a b", "OBJECT ENCODING k", "OBJECT FREQ k", "OBJECT HELP",
		"XGROUP CREATE s g $", "XGROUP CREATECONSUMER s g c", "XINFO STREAM s", "XINFO GROUPS s",
		"MEMORY USAGE k", "MEMORY DOCTOR", "BLPOP a b 0", "BRPOPLPUSH a b 0", "RENAME a b", "SMOVE a b m",
		"LMOVE a b LEFT RIGHT", "COPY a b", "COPY a b DB 1 REPLACE", "LCS a b", "PFMERGE dst a b",
		"SUNIONSTORE dst a b", "SINTERSTORE dst a b", "ZRANGESTORE dst src 0 -1", "XAUTOCLAIM s g c 0 0",
		"XCLAIM s g c 0 1-1", "PING", "PUBLISH ch msg", "CLUSTER INFO", "CLIENT LIST", "SCRIPT LOAD x",
		"FUNCTION LIST", "CONFIG GET maxmemory",
	}
	for _, line := range lines {
		args := cmdLine(line)
		c := builtinCommand(t, args)
		want, errText := r.getKeys(t, args)
		if got := keyNames(args, checkKeyIndexes(t, c, args)); !slices.Equal(got, want) {
			t.Errorf("%s: Keys %q, COMMAND GETKEYS %q %s", line, got, want, errText)
		}
	}

	// Shard channels: GETKEYS leaves not_key specs out ("The command has no
	// key arguments"), but a cluster node routes these by their channel's
	// slot, and so does the proxy.
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"SPUBLISH ch msg", []string{"ch"}},
		{"SSUBSCRIBE a b", []string{"a", "b"}},
		{"SUNSUBSCRIBE a", []string{"a"}},
	} {
		args := cmdLine(tt.line)
		if keys, errText := r.getKeys(t, args); keys != nil || !strings.Contains(errText, "no key arguments") {
			t.Errorf("%s: GETKEYS %q %q; the server changed, revisit not_key", tt.line, keys, errText)
		}
		if got := keyNames(args, checkKeyIndexes(t, builtinCommand(t, args), args)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: keys %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestKeysMatchServerRandom compares Keys with COMMAND GETKEYS on random
// arguments for every command that has keys, drawn from words that steer the
// key specs (keywords, numbers, options) so that the odd paths are taken.
func TestKeysMatchServerRandom(t *testing.T) {
	r := startKeysRedis(t)
	words := []string{
		"STREAMS", "streams", "STORE", "STOREDIST", "KEYS", "keys", "LIMIT", "GET", "BY", "COUNT",
		"BLOCK", "GROUP", "NOACK", "AUTH", "AUTH2", "COPY", "REPLACE", "WEIGHTS",
		"0", "1", "2", "3", "-1", "", "k1", "k2", "x",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cmds []*Command
	for _, c := range Builtin().cmds {
		cmds = append(cmds, c)
		for _, s := range c.Sub {
			cmds = append(cmds, s)
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	compared := 0
	for _, c := range cmds {
		if len(c.KeySpecs) == 0 || c.KeySpecs[0].Flags&KeyNotKey != 0 {
			continue
		}
		name := strings.Split(c.Name, "|")
		for range 40 {
			argc := c.Arity
			if argc < 0 {
				argc = -argc + rng.IntN(8)
			}
			args := make([][]byte, max(argc, len(name)))
			for i := range args {
				if i < len(name) {
					args[i] = []byte(name[i])
				} else {
					args[i] = []byte(words[rng.IntN(len(words))])
				}
			}
			want, errText := r.getKeys(t, args)
			top := Builtin().Lookup(args[0])
			got := keyNames(args, checkKeyIndexes(t, top, args))
			if !slices.Equal(got, want) {
				t.Errorf("%q: Keys %q, COMMAND GETKEYS %q %s", args, got, want, errText)
			}
			compared++
		}
	}
	t.Logf("compared %d random command lines", compared)
}

func FuzzKeys(f *testing.F) {
	tbl := Builtin()
	var names []string
	for n := range tbl.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, name string, rest []byte) {
		c := tbl.Lookup([]byte(name))
		if c == nil {
			// Pick a command from the name's hash, so every command gets
			// its turn whatever the fuzzer invents.
			h := fnv.New32a()
			h.Write([]byte(name))
			name = names[int(h.Sum32()%uint32(len(names)))]
			c = tbl.Lookup([]byte(name))
		}
		args := [][]byte{[]byte(name)}
		if len(rest) > 0 {
			args = append(args, bytes.Split(rest, []byte(" "))...)
		}
		checkKeyIndexes(t, c, args)
		if c.Sub != nil && len(args) > 1 {
			if sub := c.Subcommand(args[1]); sub != nil {
				checkKeyIndexes(t, sub, args)
			}
		}
	})
}

func BenchmarkKeys(b *testing.B) {
	for _, bb := range []struct{ name, line string }{
		{"GET", "GET k"},
		{"MSET10", "MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8 i 9 j 10"},
		{"EVAL", "EVAL s 2 a b x"},
		{"XREAD", "XREAD COUNT 2 STREAMS s1 s2 0 0"},
		{"ZUNIONSTORE", "ZUNIONSTORE dst 2 a b WEIGHTS 1 2"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			args := cmdLine(bb.line)
			c := builtinCommand(b, args)
			dst := make([]int, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				dst = c.Keys(args, dst[:0])
			}
			if len(dst) == 0 {
				b.Fatal("no keys")
			}
		})
	}
}
