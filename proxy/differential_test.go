package proxy

// The differential test: the same raw RESP bytes are sent to a standalone
// redis-server and to the proxy in front of a cluster, and the reply bytes
// are compared command by command. The promise (DESIGN.md) is that a client
// cannot tell the two apart, except where a cluster cannot keep a single
// server's semantics.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// diffCmd is one command of the differential sequence.
type diffCmd struct {
	args []string
	// near, when set, compares the replies as integers that may differ by
	// that much (see the TTL case), instead of byte for byte.
	near int64
}

// diffCommands returns the sequence, its keys prefixed with p so that each
// pass starts from keys that do not exist. Keys of one multi-key command
// share the hash tag {p}.
//
// Left out on purpose, because the replies legitimately differ between a
// standalone server and a cluster behind the proxy, and are tested
// elsewhere (integration_test.go) or belong to later issues:
//   - HELLO 2/3: the server version, the client id and (for 3) RESP3,
//     which the proxy does not speak yet; CLIENT ID, CLIENT LIST, INFO:
//     ids and server facts.
//   - SELECT n for n != 0: a standalone server has 16 databases, a cluster
//     one ("ERR SELECT is not allowed in cluster mode").
//   - KEYS, SCAN, DBSIZE, FLUSHALL, RANDOMKEY, MULTI/EXEC, WATCH, Pub/Sub,
//     blocking commands: refused by the proxy for now.
//   - SORT ... BY/GET with a pattern: cluster nodes refuse it.
//   - READONLY/READWRITE: a standalone server refuses them ("This instance
//     has cluster support disabled"); the proxy accepts them on purpose
//     (local.go), as a cluster node does, so cluster-aware clients work.
//   - Random replies: SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, and
//     SMEMBERS/SINTER of string sets (hashtable order depends on the
//     process's hash seed); the sets below hold integers (intset order).
func diffCommands(p string) []diffCmd {
	k := func(name string) string { return p + ":" + name }
	tag := func(name string) string { return "{" + p + "}" + name }
	big := strings.Repeat("0123456789abcdef", 200<<10/16) // 200 KiB
	c := func(args ...string) diffCmd { return diffCmd{args: args} }
	return []diffCmd{
		// Strings.
		c("SET", k("s1"), "hello"),
		c("GET", k("s1")),
		c("APPEND", k("s1"), " world"),
		c("STRLEN", k("s1")),
		c("GETRANGE", k("s1"), "0", "4"),
		c("GETRANGE", k("s1"), "-5", "-1"),
		c("SETRANGE", k("s1"), "6", "WORLD"),
		c("GET", k("s1")),
		c("SETRANGE", k("s2"), "5", "x"),
		c("GET", k("s2")),
		c("GETSET", k("s1"), "new"),
		c("GETDEL", k("s1")),
		c("GET", k("s1")),
		c("SETNX", k("s3"), "a"),
		c("SETNX", k("s3"), "b"),
		c("SET", k("s3"), "c", "XX", "GET"),
		c("SET", k("s4"), "c", "NX", "GET"),
		c("SET", k("s4"), "d", "XX", "NX"),
		c("SET", k("s4")),
		c("SET", k("bin"), "a\r\nb\x00c\xff"),
		c("GET", k("bin")),
		c("SET", k("empty"), ""),
		c("GET", k("empty")),
		c("MSET", tag("m1"), "1", tag("m2"), "2", tag("m3"), "3"),
		c("MGET", tag("m1"), tag("m2"), tag("nosuch"), tag("m3")),
		c("MSETNX", tag("m1"), "x", tag("m4"), "y"),
		c("GETEX", k("s3"), "PERSIST"),
		c("SET", tag("lcs1"), "ohmytext"),
		c("SET", tag("lcs2"), "mynewtext"),
		c("LCS", tag("lcs1"), tag("lcs2")),
		c("LCS", tag("lcs1"), tag("lcs2"), "LEN"),
		c("SET", k("big"), big),
		c("GET", k("big")),
		c("STRLEN", k("big")),
		c("gEt", k("s3")),

		// Counters.
		c("INCR", k("c")),
		c("INCRBY", k("c"), "10"),
		c("DECR", k("c")),
		c("DECRBY", k("c"), "5"),
		c("INCRBYFLOAT", k("f"), "1.5"),
		c("INCRBYFLOAT", k("f"), "0.1"),
		c("INCRBYFLOAT", k("f"), "abc"),
		c("SET", k("max"), "9223372036854775807"),
		c("INCR", k("max")),
		c("DECRBY", k("min"), "-9223372036854775808"),
		c("INCR", k("s3")),
		c("INCRBY", k("c"), "notanumber"),

		// Hashes.
		c("HSET", k("h"), "f1", "v1", "f2", "v2", "f3", "3"),
		c("HGET", k("h"), "f1"),
		c("HMGET", k("h"), "f1", "nosuch", "f3"),
		c("HGETALL", k("h")),
		c("HLEN", k("h")),
		c("HEXISTS", k("h"), "f2"),
		c("HINCRBY", k("h"), "f3", "5"),
		c("HINCRBYFLOAT", k("h"), "f3", "2.5"),
		c("HINCRBYFLOAT", k("h"), "f1", "1"),
		c("HINCRBY", k("h"), "f1", "1"),
		c("HSETNX", k("h"), "f1", "x"),
		c("HSTRLEN", k("h"), "f1"),
		c("HKEYS", k("h")),
		c("HVALS", k("h")),
		c("HDEL", k("h"), "f2", "nosuch"),
		c("HSET", k("h"), "f1"),
		c("HSET", k("h"), "f1", "v1", "f2"),

		// Lists.
		c("RPUSH", k("l"), "a", "b", "c", "d", "e"),
		c("LPUSH", k("l"), "z"),
		c("LRANGE", k("l"), "0", "-1"),
		c("LINDEX", k("l"), "2"),
		c("LINSERT", k("l"), "BEFORE", "c", "bb"),
		c("LINSERT", k("l"), "AFTER", "nosuch", "x"),
		c("LINSERT", k("l"), "MIDDLE", "a", "b"),
		c("LPOS", k("l"), "c"),
		c("LPOS", k("l"), "nosuch"),
		c("RPUSH", k("l"), "c"),
		c("LPOS", k("l"), "c", "RANK", "2"),
		c("LPOS", k("l"), "c", "COUNT", "0"),
		c("LSET", k("l"), "0", "first"),
		c("LSET", k("l"), "100", "x"),
		c("LREM", k("l"), "1", "c"),
		c("LTRIM", k("l"), "0", "4"),
		c("LLEN", k("l")),
		c("LPOP", k("l"), "2"),
		c("RPOP", k("l")),
		c("RPUSH", tag("l1"), "1", "2", "3"),
		c("LMOVE", tag("l1"), tag("l2"), "LEFT", "RIGHT"),
		c("RPOPLPUSH", tag("l1"), tag("l2")),
		c("LRANGE", tag("l2"), "0", "-1"),
		c("LMOVE", tag("nolist"), tag("l2"), "LEFT", "RIGHT"),
		c("LPUSHX", k("nolist"), "a"),

		// Sets (of integers: intset order is deterministic).
		c("SADD", tag("sa"), "1", "2", "3", "4", "5"),
		c("SADD", tag("sb"), "4", "5", "6"),
		c("SADD", tag("sa"), "3"),
		c("SCARD", tag("sa")),
		c("SISMEMBER", tag("sa"), "3"),
		c("SMISMEMBER", tag("sa"), "1", "9", "5"),
		c("SMEMBERS", tag("sa")),
		c("SINTER", tag("sa"), tag("sb")),
		c("SINTERCARD", "2", tag("sa"), tag("sb")),
		c("SINTERCARD", "2", tag("sa"), tag("sb"), "LIMIT", "1"),
		c("SINTERCARD", "0", tag("sa")),
		c("SUNIONSTORE", tag("su"), tag("sa"), tag("sb")),
		c("SDIFF", tag("sa"), tag("sb")),
		c("SREM", tag("sa"), "1"),
		c("SMOVE", tag("sa"), tag("sb"), "2"),
		c("SMEMBERS", tag("sb")),
		c("SADD", k("sw"), "apple", "banana"),
		c("SCARD", k("sw")),

		// Sorted sets.
		c("ZADD", k("z"), "1", "a", "2", "b", "3", "c", "1.5", "d"),
		c("ZSCORE", k("z"), "d"),
		c("ZRANGE", k("z"), "0", "-1", "WITHSCORES"),
		c("ZRANGEBYSCORE", k("z"), "1", "2"),
		c("ZRANGEBYSCORE", k("z"), "(1", "+inf", "WITHSCORES", "LIMIT", "0", "2"),
		c("ZRANK", k("z"), "c"),
		c("ZREVRANK", k("z"), "c"),
		c("ZINCRBY", k("z"), "2.5", "a"),
		c("ZCARD", k("z")),
		c("ZCOUNT", k("z"), "-inf", "2"),
		c("ZREM", k("z"), "b", "nosuch"),
		c("ZPOPMIN", k("z")),
		c("ZADD", k("z"), "XX", "NX", "1", "a"),
		c("ZADD", k("z"), "nan", "a"),
		c("ZMSCORE", k("z"), "a", "nosuch"),
		c("ZRANGE", k("z"), "0", "-1", "REV"),
		c("ZADD", tag("z1"), "1", "a", "2", "b"),
		c("ZADD", tag("z2"), "3", "b", "4", "c"),
		c("ZUNIONSTORE", tag("zu"), "2", tag("z1"), tag("z2")),
		c("ZRANGE", tag("zu"), "0", "-1", "WITHSCORES"),
		c("ZRANGESTORE", tag("zr"), tag("zu"), "0", "1"),
		c("ZRANGE", tag("zr"), "0", "-1", "WITHSCORES"),

		// Bits.
		c("SETBIT", k("b"), "7", "1"),
		c("SETBIT", k("b"), "100", "1"),
		c("GETBIT", k("b"), "7"),
		c("BITCOUNT", k("b")),
		c("BITPOS", k("b"), "1"),
		c("SETBIT", k("b"), "7", "2"),
		c("SET", tag("ba"), "foobar"),
		c("SET", tag("bb"), "abcdef"),
		c("BITOP", "AND", tag("bd"), tag("ba"), tag("bb")),
		c("GET", tag("bd")),
		c("BITOP", "NOT", tag("bn"), tag("ba")),
		c("GET", tag("bn")),
		c("BITFIELD", k("bf"), "SET", "u8", "0", "200", "GET", "u8", "0", "INCRBY", "u8", "0", "100"),

		// Expiry, on deterministic values.
		c("SET", k("e"), "v"),
		c("EXPIRE", k("e"), "1000"),
		// TTL rounds the milliseconds left to seconds, so a reply may be
		// 999 where the other is 1000 if the two servers are asked on
		// either side of a half-second: compared within 1 second.
		{args: []string{"TTL", k("e")}, near: 1},
		c("EXPIRE", k("e"), "100", "NX"),
		c("PERSIST", k("e")),
		c("TTL", k("e")),
		c("TTL", k("nosuch")),
		c("EXPIREAT", k("e"), "4102444800"),
		c("EXPIRETIME", k("e")),
		c("PEXPIRETIME", k("e")),
		c("EXPIRE", k("e"), "abc"),
		c("SET", k("e2"), "v", "EX", "0"),

		// Keys of any type.
		c("TYPE", k("h")),
		c("TYPE", k("z")),
		c("TYPE", k("nosuch")),
		c("EXISTS", tag("m1"), tag("m2"), tag("nosuch")),
		c("DEL", tag("m1"), tag("m2")),
		c("UNLINK", tag("m3")),
		c("RENAME", tag("ba"), tag("bc")),
		c("RENAMENX", tag("bc"), tag("bb")),
		c("COPY", tag("bc"), tag("bcopy")),
		c("GET", tag("bcopy")),
		c("OBJECT", "ENCODING", k("h")),
		c("OBJECT", "ENCODING", tag("sa")),
		c("OBJECT", "nosuch"),
		c("RPUSH", k("nl"), "3", "1", "2"),
		c("SORT", k("nl")),
		c("SORT", k("nl"), "DESC", "LIMIT", "0", "2"),
		c("XADD", k("x"), "1-1", "f", "v"),
		c("XADD", k("x"), "1-1", "f", "v"),
		c("XRANGE", k("x"), "-", "+"),
		c("XLEN", k("x")),
		c("PFADD", k("hll"), "a", "b", "c"),
		c("PFCOUNT", k("hll")),
		c("GEOADD", k("geo"), "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
		c("GEODIST", k("geo"), "Palermo", "Catania", "km"),
		c("EVAL", "return redis.call('GET', KEYS[1])", "1", k("s3")),
		c("EVAL", "return 1 + 1", "0"),

		// Errors.
		c("LPUSH", k("h"), "x"),
		c("GET", k("h")),
		c("GET"),
		c("GET", "a", "b"),
		c("EXISTS"),
		c("NOSUCHCMD", "a", "b"),
		c("nosuchcmd"),
		c("OBJECT"),

		// Commands the proxy answers itself.
		c("SELECT", "0"),
		c("SELECT", "abc"),
		c("SELECT", "00"),
		c("SELECT", "+0"),
		c("PING"),
		c("PING", "hello"),
		c("PING", "a", "b"),
		c("ECHO", "hi there"),
		c("ECHO"),
		c("CLIENT", "GETNAME"),
		c("CLIENT", "SETNAME", "diffname"),
		c("CLIENT", "GETNAME"),
		c("CLIENT", "SETNAME", "bad name"),
		c("CLIENT", "NOSUCH"),
		c("AUTH", "x"),
		c("AUTH", "a", "b"),
		c("AUTH", "default", "anything"),
		c("HELLO", "4"),
		c("HELLO", "x"),
		c("HELLO", "02"),
		c("PING"),
	}
}

// diffReplies compares two replies to cmd and describes the difference, or
// returns "".
func diffReplies(cmd diffCmd, want, got string) string {
	if cmd.near > 0 {
		a, errA := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(want, ":"), "\r\n"), 10, 64)
		b, errB := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(got, ":"), "\r\n"), 10, 64)
		if errA == nil && errB == nil && a-b <= cmd.near && b-a <= cmd.near {
			return ""
		}
	} else if want == got {
		return ""
	}
	return fmt.Sprintf("%s\n\t   redis-server: %s\n\t   proxy:        %s", shortArgs(cmd.args), short(want), short(got))
}

func short(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%q... (%d bytes)", s[:200], len(s))
	}
	return strconv.Quote(s)
}

func shortArgs(args []string) string {
	var out []string
	for _, a := range args {
		out = append(out, short(a))
	}
	return strings.Join(out, " ")
}

func TestDifferential(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	redisAddr := clustertest.Standalone(t, "").Addr

	// One command at a time: each reply is read before the next command
	// is sent, to both.
	t.Run("OneByOne", func(t *testing.T) {
		cmds := diffCommands("seq")
		if len(cmds) < 150 {
			t.Fatalf("only %d commands", len(cmds))
		}
		std, prx := dialRESP(t, redisAddr), dialRESP(t, p.Addr)
		diffs := 0
		for _, cmd := range cmds {
			want := std.do(cmd.args...)
			got, err := prx.roundTrip(5*time.Second, respCommand(cmd.args...))
			if err != nil {
				t.Fatalf("%s: no reply from the proxy: %v", shortArgs(cmd.args), err)
			}
			if d := diffReplies(cmd, want, got); d != "" {
				diffs++
				t.Errorf("differs: %s", d)
			}
		}
		t.Logf("%d commands, %d differences", len(cmds), diffs)
	})

	// The whole sequence in one write, to both; then every reply in turn.
	t.Run("Pipelined", func(t *testing.T) {
		cmds := diffCommands("pipe")
		var b strings.Builder
		for _, cmd := range cmds {
			b.WriteString(respCommand(cmd.args...))
		}
		std, prx := dialRESP(t, redisAddr), dialRESP(t, p.Addr)
		std.write(b.String())
		prx.write(b.String())
		diffs := 0
		for i, cmd := range cmds {
			want := std.reply()
			got, err := prx.tryReply(10 * time.Second)
			if err != nil {
				t.Fatalf("command #%d %s: no reply from the proxy: %v", i, shortArgs(cmd.args), err)
			}
			if d := diffReplies(cmd, want, got); d != "" {
				diffs++
				if diffs <= 15 {
					t.Errorf("differs (#%d): %s", i, d)
				}
			}
		}
		if diffs > 0 {
			t.Errorf("%d of %d pipelined commands differ", diffs, len(cmds))
		}
	})

	// Malformed input: the error text, and whether the connection is then
	// closed, must be redis-server's.
	t.Run("ProtocolErrors", func(t *testing.T) {
		cases := []struct{ name, in string }{
			{"bad bulk length", "*1\r\n$x\r\n"},
			{"bad multibulk length", "*x\r\n"},
			{"not a bulk", "*1\r\n+PING\r\n"},
			{"negative bulk length", "*1\r\n$-1\r\n"},
			{"bulk over 512MB", "*1\r\n$536870913\r\n"},
			{"unbalanced quotes", "SET k \"abc\r\n"},
			{"quote then letters", "SET k \"a\"b\r\n"},
			{"after a good command", "PING\r\n*1\r\n$x\r\n"},
			{"negative multibulk is empty", "*-5\r\nPING\r\n"},
			{"zero multibulk is empty", "*0\r\nPING\r\n"},
			{"blank lines", "\r\n  \r\nPING\r\n"},
			{"terminator bytes unchecked", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n"},
			{"bulk length with a leading zero", "*1\r\n$04\r\nPING\r\n"},
			{"multibulk length with a leading zero", "*01\r\n$4\r\nPING\r\n"},
			{"multibulk length with a plus", "*+1\r\n$4\r\nPING\r\n"},
			{"bare LF in multibulk headers", "*1\n$4\nPING\r\n"},
			// Not compared: redis-server 7 accepts up to INT_MAX arguments
			// and waits for them; the proxy keeps the bound of one million
			// (parse.go) and refuses at once. TestParseRequestErrors pins
			// the proxy's side.
			{"inline over 64KB", strings.Repeat("a", 70<<10)},
			{"multibulk header over 64KB", "*" + strings.Repeat("1", 70<<10)},
		}
		for _, tc := range cases {
			t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				t.Parallel()
				sendBoth(t, redisAddr, p.Addr, tc.name, tc.in)
			})
		}
	})

	// With a password on both: what an unauthenticated client may do.
	t.Run("Auth", func(t *testing.T) {
		const pw = "diffpw"
		stdAddr := clustertest.Standalone(t, pw).Addr
		pp := startProxy(t, c, Options{Password: pw}, router.Options{})
		seq := [][]string{
			{"GET", "auth:nokey"},
			{"PING"},
			{"ECHO", "x"},
			{"SELECT", "0"},
			{"CLIENT", "GETNAME"},
			{"GET"},
			{"NOSUCHCMD", "a"},
			{"AUTH", "wrong"},
			{"AUTH", "default", "wrong"},
			{"AUTH", "nobody", pw},
			{"AUTH", "a", "b", "c"},
			{"HELLO", "2"},
			{"HELLO", "4"},
			{"HELLO", "x"},
			{"HELLO", "2", "AUTH", "default", "wrong"},
			{"HELLO", "2", "SETNAME", "a", "b"},
			{"QUIT"},
		}
		run := func(seq [][]string, auth bool) {
			std, prx := dialRESP(t, stdAddr), dialRESP(t, pp.Addr)
			if auth {
				for _, r := range []*respConn{std, prx} {
					if got := r.do("AUTH", pw); got != "+OK\r\n" {
						t.Fatalf("AUTH %s: %q", pw, got)
					}
				}
			}
			for _, args := range seq {
				want := std.do(args...)
				got, err := prx.roundTrip(5*time.Second, respCommand(args...))
				if err != nil {
					t.Fatalf("%s: no reply from the proxy: %v", shortArgs(args), err)
				}
				if d := diffReplies(diffCmd{args: args}, want, got); d != "" {
					t.Errorf("differs (authenticated: %v): %s", auth, d)
				}
			}
		}
		run(seq, false)
		run([][]string{{"GET", "auth:nokey"}, {"AUTH", "default", pw}, {"AUTH", "wrong"}, {"GET", "auth:nokey"}, {"PING"}}, true)

		// redis-server bounds what an unauthenticated client may send
		// before it has to authenticate (10 arguments, 16KB bulks).
		for _, tc := range []struct{ name, in string }{
			{"unauthenticated multibulk length", "*11\r\n"},
			{"unauthenticated bulk length", "*2\r\n$16385\r\n"},
		} {
			sendBoth(t, stdAddr, pp.Addr, tc.name, tc.in)
		}
	})
}

// sendBoth writes in on a new connection to each of redis-server and the
// proxy, and compares what each sends back within 500ms, and whether it then
// closed the connection: a server that waits for more input shows as
// "open" with nothing sent.
func sendBoth(t *testing.T, redisAddr, proxyAddr, name, in string) {
	t.Helper()
	type outcome struct {
		data   string
		closed bool
	}
	std, prx := dialRESP(t, redisAddr), dialRESP(t, proxyAddr)
	std.write(in)
	prx.write(in)
	ch := make(chan outcome, 1)
	go func() {
		data, closed := std.rest(500 * time.Millisecond)
		ch <- outcome{data, closed}
	}()
	got, gotClosed := prx.rest(500 * time.Millisecond)
	want := <-ch
	if want.data != got || want.closed != gotClosed {
		t.Errorf("%s (%s):\n\t   redis-server: %q, closed %v\n\t   proxy:        %q, closed %v",
			name, short(in), want.data, want.closed, got, gotClosed)
	}
}

// roundTrip writes req and returns its reply, or an error when none comes
// within timeout.
func (c *respConn) roundTrip(timeout time.Duration, req string) (string, error) {
	c.t.Helper()
	c.write(req)
	return c.tryReply(timeout)
}
