package proxy

// The differential test: the same raw RESP bytes are sent to a standalone
// redis-server and to the proxy in front of a cluster, and the replies are
// compared command by command, in RESP2 and in RESP3, one command at a time
// and pipelined. The promise (DESIGN.md) is that a client cannot tell the
// two apart, except where a cluster cannot keep a single server's
// semantics: there the proxy must give a cluster node's own error.
//
// Most replies are compared byte for byte. The exceptions say why where
// they are used: replies in no defined order (cmpAnyOrder), replies whose
// value legitimately differs (cmpShape), values that depend on time
// (cmpNear, normalised), and commands a cluster refuses (cmpCluster).
//
// Left out on purpose:
//   - MULTI/EXEC/WATCH, SUBSCRIBE and friends: they need several
//     connections and an order between them; differential_held_test.go
//     compares them. The blocking commands are here, on keys that hold
//     data so that they return at once, and on empty keys with short
//     timeouts. MONITOR is not supported.
//   - CLUSTER and READONLY/READWRITE: a standalone server refuses them
//     ("This instance has cluster support disabled"); the proxy answers
//     them on purpose (cluster emulation, local.go), as a cluster node
//     does, so that cluster-aware clients work.
//   - Commands that act on the servers themselves (SHUTDOWN, DEBUG, CLIENT
//     PAUSE/KILL, CONFIG SET/REWRITE, ACL SETUSER, REPLICAOF, BGSAVE...).
//   - Random replies other than the shape checks below: SPOP, SRANDMEMBER
//     and HRANDFIELD are only asked where one answer is possible.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// minDistinctCommands is how many distinct commands and subcommands the
// sequence must cover, so that it cannot shrink unnoticed.
const minDistinctCommands = 200

// cmpMode says how the two replies to one command are compared.
type cmpMode uint8

const (
	cmpBytes         cmpMode = iota // byte for byte, after norm when set
	cmpNear                         // integers within diffCmd.near of each other
	cmpAnyOrder                     // the multiset of top-level elements (of key/value pairs for a map)
	cmpAnyOrderPairs                // cmpAnyOrder, a RESP2 flat array taken as field/value pairs
	cmpShape                        // the same RESP type and element count
	cmpCluster                      // the proxy's reply is a cluster node's error, diffCmd.want; not sent to the standalone
	cmpNoReply                      // neither side replies (CLIENT REPLY OFF and SKIP)
	cmpIterate                      // a SCAN-family command iterated to its end on each side
)

// diffCmd is one command of the differential sequence.
type diffCmd struct {
	args []string
	cmp  cmpMode
	near int64            // cmpNear: the largest difference allowed
	want string           // cmpCluster: the error a cluster node gives, without "-" and CRLF
	norm func(*replyTree) // when set, applied to both replies before they are compared
}

func same(args ...string) diffCmd { return diffCmd{args: args} }

func anyOrder(args ...string) diffCmd { return diffCmd{args: args, cmp: cmpAnyOrder} }

func anyOrderPairs(args ...string) diffCmd { return diffCmd{args: args, cmp: cmpAnyOrderPairs} }

func sameShape(args ...string) diffCmd { return diffCmd{args: args, cmp: cmpShape} }

func within(n int64, args ...string) diffCmd { return diffCmd{args: args, cmp: cmpNear, near: n} }

func asCluster(want string, args ...string) diffCmd {
	return diffCmd{args: args, cmp: cmpCluster, want: want}
}

func noReply(args ...string) diffCmd { return diffCmd{args: args, cmp: cmpNoReply} }

// iterate runs a SCAN, HSCAN, SSCAN or ZSCAN whose cursor argument is "0"
// until the cursor comes back "0", on each side, and compares the union
// of what each returned: the cursors themselves differ (the proxy's is a
// position in the slot space).
func iterate(args ...string) diffCmd { return diffCmd{args: args, cmp: cmpIterate} }

func normalised(norm func(*replyTree), args ...string) diffCmd {
	return diffCmd{args: args, norm: norm}
}

// passKeys names the keys of one pass. k(name) is a key in a slot of its
// own; tag(name) shares the pass's hash tag, for multi-key commands.
type passKeys string

func (p passKeys) k(name string) string   { return string(p) + ":" + name }
func (p passKeys) tag(name string) string { return "{" + string(p) + "}" + name }

// diffFixtures are payloads the sequence feeds back to the servers (DUMP
// and FUNCTION DUMP output), taken from the standalone server once.
type diffFixtures struct {
	stringDump   string // DUMP of the string "hello"
	listDump     string // DUMP of the list a, b, c
	functionDump string // FUNCTION DUMP with diffLibrary loaded
}

// diffLibrary is the function library of the sequence: diffecho may write
// (no flags), diffget is read-only.
const diffLibrary = "#!lua name=difflib\n" +
	"redis.register_function('diffecho', function(keys, args) return args[1] end)\n" +
	"redis.register_function{function_name='diffget', " +
	"callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n"

// Errors a cluster node gives where a single server does something.
const (
	clusterSelect  = "ERR SELECT is not allowed in cluster mode"
	clusterMove    = "ERR MOVE is not allowed in cluster mode"
	clusterSwapDB  = "ERR SWAPDB is not allowed in cluster mode"
	clusterCopyDB  = "ERR Copying to another database is not allowed in cluster mode"
	clusterSortBy  = "ERR BY option of SORT denied in Cluster mode."
	clusterSortGet = "ERR GET option of SORT denied in Cluster mode."
)

// diffCommands returns the whole sequence for one pass, its keys named
// after p, family by family. It starts on an empty keyspace (resetBoth),
// so the keyspace-wide commands know what to expect.
func diffCommands(p passKeys, fx diffFixtures) []diffCmd {
	var cmds []diffCmd
	for _, family := range [][]diffCmd{
		keyspaceFamily(p),
		stringFamily(p),
		counterFamily(p),
		bitmapFamily(p),
		hyperLogLogFamily(p),
		hashFamily(p),
		listFamily(p),
		setFamily(p),
		sortedSetFamily(p),
		streamFamily(p),
		geoFamily(p),
		keyFamily(p, fx),
		scriptFamily(p),
		functionFamily(p, fx),
		serverFamily(p),
		clientFamily(p),
		errorFamily(p),
		clusterFamily(p),
		endFamily(p),
	} {
		cmds = append(cmds, family...)
	}
	return cmds
}

// keyspaceFamily comes first: the keyspace is empty when it starts, and
// every key it makes it flushes again.
func keyspaceFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("DBSIZE"),
		same("KEYS", "*"),
		same("RANDOMKEY"),
		iterate("SCAN", "0", "COUNT", "1000"),
		same("SET", p.k("ks1"), "v"),
		// One key: RANDOMKEY has one answer.
		same("RANDOMKEY"),
		same("MSET", p.k("ks2"), "v", p.k("ks3"), "v", p.tag("ks4"), "v", p.tag("ks5"), "v", "other"+p.k("ks6"), "v"),
		same("RPUSH", p.k("ksl"), "a"),
		same("SADD", p.k("kss"), "a"),
		same("HSET", p.k("ksh"), "f", "v"),
		same("ZADD", p.k("ksz"), "1", "a"),
		same("XADD", p.k("ksx"), "1-1", "f", "v"),
		same("DBSIZE"),
		// KEYS answers in the order of each server's hash table, and the
		// proxy gathers the masters' answers in turn.
		anyOrder("KEYS", "*"),
		anyOrder("KEYS", p.k("ks?")),
		anyOrder("KEYS", p.k("ks[2-3]")),
		anyOrder("KEYS", "{"+string(p)+"}*"),
		anyOrder("KEYS", "*ks*"),
		same("KEYS", "nomatch*"),
		// Several keys: which one comes back is random.
		sameShape("RANDOMKEY"),
		// COUNT 1000 where the page size does not matter: the proxy's
		// calls cover COUNT slots each, so a whole SCAN with the default
		// COUNT of 10 takes it 1639 calls.
		iterate("SCAN", "0"),
		iterate("SCAN", "0", "MATCH", p.k("ks*"), "COUNT", "1000"),
		iterate("SCAN", "0", "MATCH", p.k("ks?"), "COUNT", "5"),
		iterate("SCAN", "0", "MATCH", "{"+string(p)+"}*", "COUNT", "1000"),
		iterate("SCAN", "0", "TYPE", "list", "COUNT", "1000"),
		iterate("SCAN", "0", "TYPE", "string", "MATCH", "*ks*", "COUNT", "100"),
		iterate("SCAN", "0", "TYPE", "stream", "COUNT", "1000"),
		iterate("SCAN", "0", "TYPE", "nosuchtype", "COUNT", "1000"),
		same("SCAN", "abc"),
		// redis-server reads a cursor with strtoul, so -1 is the largest
		// cursor; which bucket that is depends on its hash table.
		sameShape("SCAN", "-1"),
		same("SCAN", " 0"),
		same("SCAN", "18446744073709551616"),
		same("SCAN", "0", "COUNT", "0"),
		same("SCAN", "0", "COUNT", "x"),
		same("SCAN", "0", "MATCH"),
		same("SCAN", "0", "NOSUCH", "x"),
		same("FLUSHDB"),
		same("DBSIZE"),
		same("SET", p.k("ks1"), "v"),
		same("FLUSHDB", "ASYNC"),
		same("DBSIZE"),
		same("SET", p.k("ks1"), "v"),
		same("FLUSHDB", "SYNC"),
		same("EXISTS", p.k("ks1")),
		same("SET", p.k("ks1"), "v"),
		same("FLUSHALL"),
		same("SET", p.k("ks1"), "v"),
		same("FLUSHALL", "ASYNC"),
		same("FLUSHALL", "SYNC"),
		same("FLUSHALL", "NOSUCH"),
		same("FLUSHDB", "ASYNC", "SYNC"),
		same("DBSIZE"),
		same("RANDOMKEY"),
		same("KEYS"),
		same("DBSIZE", "x"),
		same("RANDOMKEY", "x"),
	}
}

func stringFamily(p passKeys) []diffCmd {
	big := strings.Repeat("0123456789abcdef", 200<<10/16) // 200 KiB
	return []diffCmd{
		same("SET", p.k("s1"), "hello"),
		same("GET", p.k("s1")),
		same("APPEND", p.k("s1"), " world"),
		same("STRLEN", p.k("s1")),
		same("GETRANGE", p.k("s1"), "0", "4"),
		same("GETRANGE", p.k("s1"), "-5", "-1"),
		same("SUBSTR", p.k("s1"), "0", "2"),
		same("SETRANGE", p.k("s1"), "6", "WORLD"),
		same("GET", p.k("s1")),
		same("SETRANGE", p.k("s2"), "5", "x"),
		same("GET", p.k("s2")),
		same("SETRANGE", p.k("s2"), "536870912", "x"),
		same("GETSET", p.k("s1"), "new"),
		same("GETDEL", p.k("s1")),
		same("GET", p.k("s1")),
		same("GETDEL", p.k("s1")),
		same("SETNX", p.k("s3"), "a"),
		same("SETNX", p.k("s3"), "b"),
		same("SET", p.k("s3"), "c", "XX", "GET"),
		same("SET", p.k("s4"), "c", "NX", "GET"),
		same("SET", p.k("s4"), "d", "XX", "NX"),
		same("SET", p.k("s4")),
		same("SET", p.k("s4"), "v", "EX", "0"),
		same("SET", p.k("s4"), "v", "EX", "abc"),
		same("SET", p.k("s4"), "v", "EX", "10", "PX", "100"),
		same("SET", p.k("bin"), "a\r\nb\x00c\xff"),
		same("GET", p.k("bin")),
		same("SET", p.k("empty"), ""),
		same("GET", p.k("empty")),
		same("MSET", p.tag("m1"), "1", p.tag("m2"), "2", p.tag("m3"), "3"),
		same("MGET", p.tag("m1"), p.tag("m2"), p.tag("nosuch"), p.tag("m3")),
		same("MSETNX", p.tag("m1"), "x", p.tag("m4"), "y"),
		same("MSETNX", p.tag("m5"), "x", p.tag("m6"), "y"),
		// Split by slot: MSET and MGET across masters.
		same("MSET", p.k("x1"), "1", p.k("x2"), "2", p.k("x3"), "3", p.k("x4"), "4"),
		same("MGET", p.k("x4"), p.k("nosuch"), p.k("x1"), p.k("x3"), p.k("x2"), p.k("x1")),
		same("MSET", p.k("x1"), "1", p.k("x2")),
		same("SETEX", p.k("sx"), "1000", "v"),
		within(1, "TTL", p.k("sx")),
		same("SETEX", p.k("sx"), "0", "v"),
		same("PSETEX", p.k("psx"), "1000000", "v"),
		// Milliseconds left: the two servers are asked a little apart.
		within(2000, "PTTL", p.k("psx")),
		same("SET", p.k("sexat"), "v", "EXAT", "4102444800"),
		same("EXPIRETIME", p.k("sexat")),
		same("SET", p.k("sexat"), "w", "KEEPTTL"),
		same("EXPIRETIME", p.k("sexat")),
		same("SET", p.k("spxat"), "v", "PXAT", "4102444800123"),
		same("PEXPIRETIME", p.k("spxat")),
		same("SET", p.k("spx"), "v", "PX", "1000000", "GET"),
		within(2000, "PTTL", p.k("spx")),
		same("GETEX", p.k("s3"), "PERSIST"),
		same("GETEX", p.k("s3"), "EX", "1000"),
		within(1, "TTL", p.k("s3")),
		same("GETEX", p.k("s3"), "PX", "1000000"),
		same("GETEX", p.k("s3"), "EXAT", "4102444800"),
		same("EXPIRETIME", p.k("s3")),
		same("GETEX", p.k("s3"), "PXAT", "4102444800123"),
		same("PEXPIRETIME", p.k("s3")),
		same("GETEX", p.k("s3"), "PERSIST"),
		same("TTL", p.k("s3")),
		same("GETEX", p.k("nosuch")),
		same("GETEX", p.k("s3"), "EX"),
		same("GETEX", p.k("s3"), "EX", "10", "PERSIST"),
		same("SET", p.tag("lcs1"), "ohmytext"),
		same("SET", p.tag("lcs2"), "mynewtext"),
		same("LCS", p.tag("lcs1"), p.tag("lcs2")),
		same("LCS", p.tag("lcs1"), p.tag("lcs2"), "LEN"),
		same("LCS", p.tag("lcs1"), p.tag("lcs2"), "IDX"),
		same("LCS", p.tag("lcs1"), p.tag("lcs2"), "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
		same("SET", p.k("big"), big),
		same("GET", p.k("big")),
		same("STRLEN", p.k("big")),
		same("GETRANGE", p.k("big"), "1000", "1015"),
		same("gEt", p.k("s3")),
	}
}

func counterFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("INCR", p.k("c")),
		same("INCRBY", p.k("c"), "10"),
		same("DECR", p.k("c")),
		same("DECRBY", p.k("c"), "5"),
		same("INCRBYFLOAT", p.k("f"), "1.5"),
		same("INCRBYFLOAT", p.k("f"), "0.1"),
		same("INCRBYFLOAT", p.k("f"), "abc"),
		same("INCRBYFLOAT", p.k("f"), "5.0e3"),
		same("INCRBYFLOAT", p.k("f"), "inf"),
		same("SET", p.k("max"), "9223372036854775807"),
		same("INCR", p.k("max")),
		same("DECRBY", p.k("min"), "-9223372036854775808"),
		same("INCR", p.k("s3")),
		same("INCRBY", p.k("c"), "notanumber"),
		same("SET", p.k("sp"), " 1"),
		same("INCR", p.k("sp")),
	}
}

func bitmapFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("SETBIT", p.k("b"), "7", "1"),
		same("SETBIT", p.k("b"), "100", "1"),
		same("GETBIT", p.k("b"), "7"),
		same("GETBIT", p.k("b"), "1000"),
		same("GETBIT", p.k("b"), "-1"),
		same("BITCOUNT", p.k("b")),
		same("BITCOUNT", p.k("b"), "0", "0"),
		same("BITCOUNT", p.k("b"), "0", "99", "BIT"),
		same("BITCOUNT", p.k("b"), "0", "-1", "BYTE"),
		same("BITCOUNT", p.k("b"), "0"),
		same("BITPOS", p.k("b"), "1"),
		same("BITPOS", p.k("b"), "0"),
		same("BITPOS", p.k("b"), "1", "1"),
		same("BITPOS", p.k("b"), "1", "8", "-1", "BIT"),
		same("BITPOS", p.k("nosuch"), "0"),
		same("SETBIT", p.k("b"), "7", "2"),
		same("SET", p.tag("ba"), "foobar"),
		same("SET", p.tag("bb"), "abcdef"),
		same("BITOP", "AND", p.tag("bd"), p.tag("ba"), p.tag("bb")),
		same("GET", p.tag("bd")),
		same("BITOP", "OR", p.tag("bd"), p.tag("ba"), p.tag("bb")),
		same("GET", p.tag("bd")),
		same("BITOP", "XOR", p.tag("bd"), p.tag("ba"), p.tag("bb"), p.tag("nosuch")),
		same("GET", p.tag("bd")),
		same("BITOP", "NOT", p.tag("bn"), p.tag("ba")),
		same("GET", p.tag("bn")),
		same("BITOP", "NOT", p.tag("bn"), p.tag("ba"), p.tag("bb")),
		same("BITOP", "NAND", p.tag("bn"), p.tag("ba")),
		same("BITFIELD", p.k("bf"), "SET", "u8", "0", "200", "GET", "u8", "0", "INCRBY", "u8", "0", "100"),
		same("BITFIELD", p.k("bf"), "OVERFLOW", "SAT", "INCRBY", "u8", "0", "100", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1"),
		same("BITFIELD", p.k("bf"), "SET", "i5", "#1", "-3", "GET", "i5", "#1", "GET", "u4", "4"),
		same("BITFIELD", p.k("bf"), "GET", "u64", "0"),
		same("BITFIELD", p.k("bf")),
		same("BITFIELD_RO", p.k("bf"), "GET", "u8", "0", "GET", "i5", "#1"),
		same("BITFIELD_RO", p.k("bf"), "SET", "u8", "0", "1"),
		same("BITFIELD_RO", p.k("nosuch"), "GET", "u8", "0"),
	}
}

func hyperLogLogFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("PFADD", p.k("hll"), "a", "b", "c"),
		same("PFADD", p.k("hll"), "a"),
		same("PFADD", p.k("hll")),
		same("PFADD", p.k("hll2")),
		same("PFCOUNT", p.k("hll")),
		same("PFADD", p.tag("h1"), "a", "b", "c", "d"),
		same("PFADD", p.tag("h2"), "c", "d", "e"),
		same("PFCOUNT", p.tag("h1"), p.tag("h2")),
		same("PFMERGE", p.tag("hm"), p.tag("h1"), p.tag("h2")),
		same("PFCOUNT", p.tag("hm")),
		same("GET", p.tag("hm")),
		same("PFMERGE", p.tag("hm2")),
		same("SET", p.k("nohll"), "hello world, not an HLL"),
		same("PFCOUNT", p.k("nohll")),
		same("PFADD", p.k("nohll"), "a"),
		same("PFCOUNT", p.k("nosuch")),
	}
}

func hashFamily(p passKeys) []diffCmd {
	// More fields than hash-max-listpack-entries: a hash table, whose
	// order depends on the process's hash seed.
	bigHash := []string{"HSET", p.k("hbig")}
	for i := range 200 {
		bigHash = append(bigHash, "field"+strconv.Itoa(i), strconv.Itoa(i*i))
	}
	return []diffCmd{
		same("HSET", p.k("h"), "f1", "v1", "f2", "v2", "f3", "3"),
		same("HGET", p.k("h"), "f1"),
		same("HGET", p.k("h"), "nosuch"),
		same("HMGET", p.k("h"), "f1", "nosuch", "f3"),
		same("HGETALL", p.k("h")),
		same("HGETALL", p.k("nosuch")),
		same("HLEN", p.k("h")),
		same("HEXISTS", p.k("h"), "f2"),
		same("HINCRBY", p.k("h"), "f3", "5"),
		same("HINCRBYFLOAT", p.k("h"), "f3", "2.5"),
		same("HINCRBYFLOAT", p.k("h"), "f1", "1"),
		same("HINCRBY", p.k("h"), "f1", "1"),
		same("HSETNX", p.k("h"), "f1", "x"),
		same("HSETNX", p.k("h"), "f4", "x"),
		same("HMSET", p.k("h"), "f5", "v5", "f6", "v6"),
		same("HSTRLEN", p.k("h"), "f1"),
		same("HKEYS", p.k("h")),
		same("HVALS", p.k("h")),
		same("HDEL", p.k("h"), "f2", "nosuch"),
		same("HSET", p.k("h"), "f1"),
		same("HSET", p.k("h"), "f1", "v1", "f2"),
		same("OBJECT", "ENCODING", p.k("h")),
		// One field: HRANDFIELD has one answer, however many it is asked.
		same("HSET", p.k("h1"), "only", "one"),
		same("HRANDFIELD", p.k("h1")),
		same("HRANDFIELD", p.k("h1"), "5"),
		same("HRANDFIELD", p.k("h1"), "-3", "WITHVALUES"),
		same("HRANDFIELD", p.k("nosuch")),
		same("HRANDFIELD", p.k("h1"), "0"),
		// A count of at least the size: the whole hash, in no order.
		anyOrder("HRANDFIELD", p.k("h"), "10"),
		anyOrderPairs("HRANDFIELD", p.k("h"), "10", "WITHVALUES"),
		iterate("HSCAN", p.k("h"), "0"),
		same(bigHash...),
		same("HLEN", p.k("hbig")),
		same("OBJECT", "ENCODING", p.k("hbig")),
		same("HGET", p.k("hbig"), "field150"),
		// A hash table: in the order of each process's hash seed.
		anyOrder("HKEYS", p.k("hbig")),
		anyOrder("HVALS", p.k("hbig")),
		anyOrderPairs("HGETALL", p.k("hbig")),
		iterate("HSCAN", p.k("hbig"), "0"),
		iterate("HSCAN", p.k("hbig"), "0", "COUNT", "7"),
		iterate("HSCAN", p.k("hbig"), "0", "MATCH", "field1*"),
		iterate("HSCAN", p.k("nosuch"), "0"),
		same("HSCAN", p.k("h"), "x"),
	}
}

func listFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("RPUSH", p.k("l"), "a", "b", "c", "d", "e"),
		same("LPUSH", p.k("l"), "z"),
		same("LRANGE", p.k("l"), "0", "-1"),
		same("LRANGE", p.k("l"), "-2", "100"),
		same("LINDEX", p.k("l"), "2"),
		same("LINDEX", p.k("l"), "100"),
		same("LINSERT", p.k("l"), "BEFORE", "c", "bb"),
		same("LINSERT", p.k("l"), "AFTER", "nosuch", "x"),
		same("LINSERT", p.k("l"), "MIDDLE", "a", "b"),
		same("LPOS", p.k("l"), "c"),
		same("LPOS", p.k("l"), "nosuch"),
		same("RPUSH", p.k("l"), "c"),
		same("LPOS", p.k("l"), "c", "RANK", "2"),
		same("LPOS", p.k("l"), "c", "RANK", "-1"),
		same("LPOS", p.k("l"), "c", "COUNT", "0"),
		same("LPOS", p.k("l"), "c", "COUNT", "1", "MAXLEN", "3"),
		same("LPOS", p.k("l"), "c", "RANK", "0"),
		same("LSET", p.k("l"), "0", "first"),
		same("LSET", p.k("l"), "100", "x"),
		same("LSET", p.k("nosuch"), "0", "x"),
		same("LREM", p.k("l"), "1", "c"),
		same("LREM", p.k("l"), "-1", "nosuch"),
		same("LTRIM", p.k("l"), "0", "4"),
		same("LLEN", p.k("l")),
		same("LPOP", p.k("l"), "2"),
		same("RPOP", p.k("l")),
		same("RPOP", p.k("l"), "10"),
		same("LPOP", p.k("l")),
		same("LPOP", p.k("nosuch"), "2"),
		same("LPOP", p.k("l"), "-1"),
		same("RPUSH", p.tag("l1"), "1", "2", "3", "4", "5", "6"),
		same("LMOVE", p.tag("l1"), p.tag("l2"), "LEFT", "RIGHT"),
		same("LMOVE", p.tag("l1"), p.tag("l2"), "RIGHT", "LEFT"),
		same("RPOPLPUSH", p.tag("l1"), p.tag("l2")),
		same("LRANGE", p.tag("l2"), "0", "-1"),
		same("LMOVE", p.tag("nolist"), p.tag("l2"), "LEFT", "RIGHT"),
		same("LMOVE", p.tag("l1"), p.tag("l2"), "UP", "RIGHT"),
		same("LMPOP", "2", p.tag("nolist"), p.tag("l2"), "LEFT"),
		same("LMPOP", "2", p.tag("l2"), p.tag("l1"), "RIGHT", "COUNT", "2"),
		same("LMPOP", "1", p.tag("nolist"), "LEFT"),
		same("LMPOP", "0", p.tag("l1"), "LEFT"),
		same("LMPOP", "1", p.tag("l1"), "LEFT", "COUNT", "0"),
		same("RPUSH", p.tag("l2"), "x", "y"),
		// The blocking forms, on lists that hold data: they return at once.
		same("BLPOP", p.tag("nolist"), p.tag("l1"), "1"),
		same("BRPOP", p.tag("l1"), "1"),
		same("BLMOVE", p.tag("l2"), p.tag("l1"), "LEFT", "LEFT", "1"),
		same("BRPOPLPUSH", p.tag("l2"), p.tag("l1"), "1"),
		same("BLMPOP", "1", "2", p.tag("nolist"), p.tag("l1"), "LEFT", "COUNT", "5"),
		// On empty lists they wait out their timeout and give a null reply;
		// a timeout in hundredths of a second keeps the sequence fast.
		same("BLPOP", p.tag("nolist"), p.tag("l1"), "0.01"),
		same("BRPOP", p.tag("nolist"), "0.01"),
		same("BLMOVE", p.tag("nolist"), p.tag("l1"), "LEFT", "LEFT", "0.01"),
		same("BRPOPLPUSH", p.tag("nolist"), p.tag("l1"), "0.01"),
		same("BLMPOP", "0.01", "1", p.tag("nolist"), "RIGHT"),
		same("BLPOP", p.tag("l1"), "-1"),
		same("BLPOP", p.tag("l1"), "abc"),
		same("BLMPOP", "0.01", "0", p.tag("l1"), "LEFT"),
		same("BLPOP", p.k("h"), "0.01"),
		asCluster(msgCrossSlot, "BLPOP", p.k("l"), p.k("lx"), "0.01"),
		same("DEL", p.tag("l1"), p.tag("l2")),
		same("LPUSHX", p.k("nolist"), "a"),
		same("RPUSHX", p.k("nolist"), "a"),
		same("RPUSH", p.k("lx"), "a"),
		same("LPUSHX", p.k("lx"), "b", "c"),
		same("RPUSHX", p.k("lx"), "d"),
		same("LRANGE", p.k("lx"), "0", "-1"),
		same("OBJECT", "ENCODING", p.k("lx")),
	}
}

func setFamily(p passKeys) []diffCmd {
	return []diffCmd{
		// Sets of integers: intset order is deterministic.
		same("SADD", p.tag("sa"), "1", "2", "3", "4", "5"),
		same("SADD", p.tag("sb"), "4", "5", "6"),
		same("SADD", p.tag("sa"), "3"),
		same("SCARD", p.tag("sa")),
		same("SISMEMBER", p.tag("sa"), "3"),
		same("SISMEMBER", p.tag("sa"), "9"),
		same("SMISMEMBER", p.tag("sa"), "1", "9", "5"),
		same("SMEMBERS", p.tag("sa")),
		same("SINTER", p.tag("sa"), p.tag("sb")),
		same("SINTERCARD", "2", p.tag("sa"), p.tag("sb")),
		same("SINTERCARD", "2", p.tag("sa"), p.tag("sb"), "LIMIT", "1"),
		same("SINTERCARD", "0", p.tag("sa")),
		same("SINTERSTORE", p.tag("si"), p.tag("sa"), p.tag("sb")),
		same("SUNION", p.tag("sa"), p.tag("sb")),
		same("SUNIONSTORE", p.tag("su"), p.tag("sa"), p.tag("sb")),
		same("SDIFF", p.tag("sa"), p.tag("sb")),
		same("SDIFFSTORE", p.tag("sd"), p.tag("sa"), p.tag("sb")),
		same("SMEMBERS", p.tag("sd")),
		same("SREM", p.tag("sa"), "1", "nosuch"),
		same("SMOVE", p.tag("sa"), p.tag("sb"), "2"),
		same("SMOVE", p.tag("sa"), p.tag("sb"), "nosuch"),
		same("SMEMBERS", p.tag("sb")),
		same("OBJECT", "ENCODING", p.tag("sb")),
		iterate("SSCAN", p.tag("sb"), "0"),
		// Sets of strings: a hash table, in the order of each process's
		// hash seed.
		same("SADD", p.tag("sw"), "apple", "banana", "cherry", "date"),
		same("SADD", p.tag("sv"), "banana", "date", "fig"),
		same("SCARD", p.tag("sw")),
		anyOrder("SMEMBERS", p.tag("sw")),
		anyOrder("SINTER", p.tag("sw"), p.tag("sv")),
		anyOrder("SUNION", p.tag("sw"), p.tag("sv")),
		anyOrder("SDIFF", p.tag("sw"), p.tag("sv")),
		same("SDIFFSTORE", p.tag("swd"), p.tag("sw"), p.tag("sv")),
		same("SUNIONSTORE", p.tag("swu"), p.tag("sw"), p.tag("sv")),
		same("OBJECT", "ENCODING", p.tag("sw")),
		iterate("SSCAN", p.tag("swu"), "0"),
		iterate("SSCAN", p.tag("swu"), "0", "MATCH", "*a*", "COUNT", "2"),
		// A count of at least the size: the whole set, in no order.
		anyOrder("SRANDMEMBER", p.tag("sw"), "10"),
		anyOrder("SPOP", p.tag("swd"), "10"),
		same("EXISTS", p.tag("swd")),
		// One member: SPOP and SRANDMEMBER have one answer.
		same("SADD", p.k("s1m"), "only"),
		same("SRANDMEMBER", p.k("s1m")),
		same("SRANDMEMBER", p.k("s1m"), "-3"),
		same("SRANDMEMBER", p.k("s1m"), "0"),
		same("SPOP", p.k("s1m")),
		same("SPOP", p.k("s1m")),
		same("SRANDMEMBER", p.k("nosuch")),
		same("SPOP", p.k("nosuch"), "2"),
		same("SPOP", p.tag("sw"), "-1"),
	}
}

func sortedSetFamily(p passKeys) []diffCmd {
	bigZ := []string{"ZADD", p.k("zbig")}
	for i := range 200 {
		bigZ = append(bigZ, strconv.Itoa(i%17), "m"+strconv.Itoa(i))
	}
	return []diffCmd{
		same("ZADD", p.k("z"), "1", "a", "2", "b", "3", "c", "1.5", "d"),
		same("ZADD", p.k("z"), "NX", "10", "a", "4", "e"),
		same("ZADD", p.k("z"), "XX", "CH", "5", "a"),
		same("ZADD", p.k("z"), "GT", "CH", "1", "a"),
		same("ZADD", p.k("z"), "LT", "CH", "1", "a"),
		same("ZADD", p.k("z"), "INCR", "2", "b"),
		same("ZADD", p.k("z"), "XX", "INCR", "2", "nosuch"),
		same("ZADD", p.k("z"), "GT", "LT", "1", "a"),
		same("ZADD", p.k("z"), "XX", "NX", "1", "a"),
		same("ZADD", p.k("z"), "INCR", "1", "a", "2", "b"),
		same("ZADD", p.k("z"), "nan", "a"),
		same("ZADD", p.k("z"), "1"),
		same("ZSCORE", p.k("z"), "d"),
		same("ZSCORE", p.k("z"), "nosuch"),
		same("ZMSCORE", p.k("z"), "a", "nosuch", "b"),
		same("ZINCRBY", p.k("z"), "2.5", "a"),
		same("ZINCRBY", p.k("z"), "x", "a"),
		same("ZCARD", p.k("z")),
		same("ZCOUNT", p.k("z"), "-inf", "2"),
		same("ZCOUNT", p.k("z"), "(1", "(3"),
		same("ZCOUNT", p.k("z"), "a", "3"),
		same("ZRANGE", p.k("z"), "0", "-1", "WITHSCORES"),
		same("ZRANGE", p.k("z"), "(1", "3", "BYSCORE"),
		same("ZRANGE", p.k("z"), "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", "2", "WITHSCORES"),
		same("ZRANGE", p.k("z"), "0", "1", "REV"),
		same("ZRANGE", p.k("z"), "0", "-1", "LIMIT", "0", "1"),
		same("ZRANGEBYSCORE", p.k("z"), "1", "2"),
		same("ZRANGEBYSCORE", p.k("z"), "(1", "+inf", "WITHSCORES", "LIMIT", "0", "2"),
		same("ZREVRANGEBYSCORE", p.k("z"), "+inf", "-inf", "WITHSCORES", "LIMIT", "1", "2"),
		same("ZREVRANGE", p.k("z"), "0", "1", "WITHSCORES"),
		same("ZRANK", p.k("z"), "c"),
		same("ZRANK", p.k("z"), "nosuch"),
		same("ZREVRANK", p.k("z"), "c"),
		same("ZADD", p.k("lex"), "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"),
		same("ZLEXCOUNT", p.k("lex"), "[b", "(e"),
		same("ZRANGEBYLEX", p.k("lex"), "-", "+"),
		same("ZRANGEBYLEX", p.k("lex"), "[b", "+", "LIMIT", "1", "2"),
		same("ZREVRANGEBYLEX", p.k("lex"), "+", "(b"),
		same("ZRANGEBYLEX", p.k("lex"), "b", "c"),
		same("ZRANGE", p.k("lex"), "[a", "[c", "BYLEX"),
		same("ZRANGE", p.k("lex"), "+", "-", "BYLEX", "REV", "LIMIT", "1", "2"),
		same("ZRANGE", p.k("lex"), "-", "+", "BYLEX", "WITHSCORES"),
		same("ZREMRANGEBYLEX", p.k("lex"), "[a", "(c"),
		same("ZRANGE", p.k("lex"), "0", "-1"),
		same("ZREM", p.k("z"), "b", "nosuch"),
		same("ZPOPMIN", p.k("z")),
		same("ZPOPMAX", p.k("z"), "2"),
		same("ZPOPMAX", p.k("z"), "0"),
		same("ZPOPMIN", p.k("nosuch")),
		same("ZRANGE", p.k("z"), "0", "-1", "WITHSCORES"),
		same(bigZ...),
		same("OBJECT", "ENCODING", p.k("zbig")),
		same("ZRANGE", p.k("zbig"), "0", "-1", "WITHSCORES"),
		same("ZREMRANGEBYRANK", p.k("zbig"), "0", "9"),
		same("ZREMRANGEBYSCORE", p.k("zbig"), "(15", "+inf"),
		same("ZCARD", p.k("zbig")),
		iterate("ZSCAN", p.k("zbig"), "0", "COUNT", "10"),
		iterate("ZSCAN", p.k("zbig"), "0", "MATCH", "m1*"),
		iterate("ZSCAN", p.k("z"), "0"),
		// Random members: only the shape is fixed (a member; two members;
		// five members with their scores).
		sameShape("ZRANDMEMBER", p.k("zbig")),
		sameShape("ZRANDMEMBER", p.k("zbig"), "2"),
		sameShape("ZRANDMEMBER", p.k("zbig"), "-5", "WITHSCORES"),
		same("ZRANDMEMBER", p.k("nosuch")),
		same("ZADD", p.tag("z1"), "1", "a", "2", "b", "3", "x"),
		same("ZADD", p.tag("z2"), "3", "b", "4", "c", "5", "x"),
		same("SADD", p.tag("zs"), "a", "c"),
		same("ZUNION", "2", p.tag("z1"), p.tag("z2"), "WITHSCORES"),
		same("ZUNION", "3", p.tag("z1"), p.tag("z2"), p.tag("zs"), "WEIGHTS", "2", "3", "1", "AGGREGATE", "MAX", "WITHSCORES"),
		same("ZINTER", "2", p.tag("z1"), p.tag("z2")),
		same("ZINTER", "2", p.tag("z1"), p.tag("z2"), "AGGREGATE", "MIN", "WITHSCORES"),
		same("ZDIFF", "2", p.tag("z1"), p.tag("z2"), "WITHSCORES"),
		same("ZINTERCARD", "2", p.tag("z1"), p.tag("z2")),
		same("ZINTERCARD", "2", p.tag("z1"), p.tag("z2"), "LIMIT", "1"),
		same("ZUNIONSTORE", p.tag("zu"), "2", p.tag("z1"), p.tag("z2")),
		same("ZRANGE", p.tag("zu"), "0", "-1", "WITHSCORES"),
		same("ZINTERSTORE", p.tag("zi"), "2", p.tag("z1"), p.tag("z2"), "WEIGHTS", "1", "0.5"),
		same("ZRANGE", p.tag("zi"), "0", "-1", "WITHSCORES"),
		same("ZDIFFSTORE", p.tag("zd"), "2", p.tag("z1"), p.tag("z2")),
		same("ZRANGE", p.tag("zd"), "0", "-1", "WITHSCORES"),
		same("ZUNIONSTORE", p.tag("zu"), "3", p.tag("z1"), p.tag("z2")),
		same("ZRANGESTORE", p.tag("zr"), p.tag("zu"), "0", "1"),
		same("ZRANGE", p.tag("zr"), "0", "-1", "WITHSCORES"),
		same("ZRANGESTORE", p.tag("zr"), p.tag("zu"), "(1", "+inf", "BYSCORE", "LIMIT", "0", "2"),
		same("ZRANGE", p.tag("zr"), "0", "-1", "WITHSCORES"),
		same("ZMPOP", "2", p.tag("nosuch"), p.tag("z1"), "MIN"),
		same("ZMPOP", "2", p.tag("z1"), p.tag("z2"), "MAX", "COUNT", "5"),
		same("ZMPOP", "1", p.tag("nosuch"), "MAX"),
		same("ZMPOP", "1", p.tag("z1"), "SIDEWAYS"),
		// The blocking forms, as the list ones above.
		same("BZPOPMIN", p.tag("nosuch"), p.tag("z2"), "1"),
		same("BZPOPMAX", p.tag("zu"), "1"),
		same("BZMPOP", "1", "2", p.tag("nosuch"), p.tag("zu"), "MIN", "COUNT", "2"),
		same("BZPOPMIN", p.tag("nosuch"), "0.01"),
		same("BZPOPMAX", p.tag("nosuch"), "0.01"),
		same("BZMPOP", "0.01", "1", p.tag("nosuch"), "MAX"),
		same("BZPOPMIN", p.tag("z2"), "x"),
		same("BZPOPMAX", p.k("h"), "0.01"),
		asCluster(msgCrossSlot, "BZPOPMIN", p.k("z"), p.k("zbig"), "0.01"),
		same("DEL", p.tag("z2"), p.tag("zu")),
	}
}

func streamFamily(p passKeys) []diffCmd {
	x := p.k("x")
	// Consumers' idle times and delivery times depend on when each
	// server was asked: blanked before the comparison.
	idle := blankAfter("idle", "inactive")
	return []diffCmd{
		same("XADD", x, "1-1", "f", "v"),
		same("XADD", x, "1-1", "f", "v"),
		same("XADD", x, "1-2", "f", "v2", "g", "w"),
		same("XADD", x, "2-0", "f", "v3"),
		same("XADD", x, "3-0", "f", "v4"),
		same("XADD", x, "MAXLEN", "=", "10", "4-0", "f", "v5"),
		same("XADD", x, "MINID", "0", "5-0", "f", "v6"),
		same("XADD", x, "0-0", "f", "v"),
		same("XADD", x, "6-0", "f"),
		same("XADD", p.k("nostream"), "NOMKSTREAM", "1-1", "f", "v"),
		same("EXISTS", p.k("nostream")),
		same("XLEN", x),
		same("XRANGE", x, "-", "+"),
		same("XRANGE", x, "-", "+", "COUNT", "2"),
		same("XRANGE", x, "(1-1", "2"),
		same("XRANGE", x, "5", "3"),
		same("XRANGE", x, "x", "+"),
		same("XREVRANGE", x, "+", "-", "COUNT", "2"),
		same("XREVRANGE", x, "3", "(1-2"),
		same("XDEL", x, "2-0", "99-0"),
		same("XTRIM", x, "MAXLEN", "10"),
		same("XTRIM", x, "MINID", "1-2"),
		same("XTRIM", x, "MAXLEN", "~", "1"),
		same("XLEN", x),
		same("TYPE", x),
		same("OBJECT", "ENCODING", x),
		same("XGROUP", "CREATE", x, "g", "0"),
		same("XGROUP", "CREATE", x, "g", "0"),
		same("XGROUP", "CREATE", x, "g2", "$", "ENTRIESREAD", "2"),
		same("XGROUP", "CREATE", p.k("nostream"), "g", "$"),
		same("XGROUP", "CREATE", p.k("mkstream"), "g", "$", "MKSTREAM"),
		same("XLEN", p.k("mkstream")),
		same("XGROUP", "CREATECONSUMER", x, "g", "c1"),
		same("XGROUP", "CREATECONSUMER", x, "g", "c1"),
		same("XGROUP", "CREATECONSUMER", x, "nosuch", "c1"),
		same("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", x, ">"),
		same("XREADGROUP", "GROUP", "g", "c2", "STREAMS", x, ">"),
		same("XREADGROUP", "GROUP", "g", "c2", "STREAMS", x, ">"),
		same("XREADGROUP", "GROUP", "g", "c2", "BLOCK", "10", "STREAMS", x, ">"),
		same("XREADGROUP", "GROUP", "g", "c1", "STREAMS", x, "0"),
		same("XREADGROUP", "GROUP", "nosuch", "c1", "STREAMS", x, ">"),
		same("XREADGROUP", "GROUP", "g", "c1", "STREAMS", x),
		same("XREAD", "COUNT", "2", "STREAMS", x, "0"),
		same("XREAD", "STREAMS", x, "$"),
		// With BLOCK, on a dedicated connection: entries at once, or a
		// null reply once the milliseconds are out.
		same("XREAD", "BLOCK", "10", "COUNT", "1", "STREAMS", x, "0"),
		same("XREAD", "BLOCK", "10", "STREAMS", x, "$"),
		same("XREAD", "BLOCK", "-1", "STREAMS", x, "$"),
		same("XADD", p.tag("x2"), "1-1", "f", "v"),
		same("XREAD", "COUNT", "1", "STREAMS", p.tag("x2"), p.tag("nosuch"), "0", "0"),
		same("XPENDING", x, "g"),
		normalised(blankPendingIdle, "XPENDING", x, "g", "-", "+", "10"),
		normalised(blankPendingIdle, "XPENDING", x, "g", "IDLE", "0", "-", "+", "10", "c1"),
		same("XPENDING", x, "nosuch"),
		same("XACK", x, "g", "1-1", "99-0"),
		same("XACK", x, "g", "1-1"),
		same("XCLAIM", x, "g", "c2", "0", "1-2"),
		same("XCLAIM", x, "g", "c2", "0", "3-0", "99-0", "JUSTID"),
		same("XCLAIM", x, "g", "c2", "0", "3-0", "RETRYCOUNT", "5", "FORCE", "JUSTID"),
		same("XAUTOCLAIM", x, "g", "c1", "0", "0-0", "COUNT", "1"),
		same("XAUTOCLAIM", x, "g", "c1", "0", "0-0", "COUNT", "10", "JUSTID"),
		same("XAUTOCLAIM", x, "g", "c1", "0", "x"),
		same("XPENDING", x, "g"),
		same("XINFO", "STREAM", x),
		// Delivery and seen times are milliseconds since 1970.
		normalised(zeroTimestamps, "XINFO", "STREAM", x, "FULL"),
		normalised(zeroTimestamps, "XINFO", "STREAM", x, "FULL", "COUNT", "1"),
		same("XINFO", "GROUPS", x),
		normalised(idle, "XINFO", "CONSUMERS", x, "g"),
		same("XINFO", "STREAM", p.k("nosuch")),
		same("XGROUP", "SETID", x, "g", "0"),
		same("XGROUP", "SETID", x, "g2", "$", "ENTRIESREAD", "3"),
		same("XINFO", "GROUPS", x),
		same("XGROUP", "DELCONSUMER", x, "g", "c2"),
		same("XGROUP", "DELCONSUMER", x, "g", "nosuch"),
		normalised(idle, "XINFO", "CONSUMERS", x, "g"),
		same("XGROUP", "DESTROY", x, "g"),
		same("XGROUP", "DESTROY", x, "g"),
		same("XSETID", x, "100-0"),
		same("XSETID", x, "1-0"),
		same("XADD", x, "50-0", "f", "v"),
		same("XADD", x, "150-0", "f", "v"),
		same("XINFO", "STREAM", x),
		same("XINFO", "HELP"),
		same("XGROUP", "HELP"),
		same("XADD", p.k("s3"), "1-1", "f", "v"),
	}
}

func geoFamily(p passKeys) []diffCmd {
	g := p.tag("geo")
	return []diffCmd{
		same("GEOADD", g, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
		same("GEOADD", g, "NX", "CH", "13.5", "38", "Palermo", "12.496366", "41.902782", "Rome"),
		same("GEOADD", g, "XX", "CH", "12.5", "41.9", "Rome", "0", "0", "Nowhere"),
		same("GEOADD", g, "200", "100", "Bad"),
		same("GEOADD", g, "NX", "XX", "1", "1", "Both"),
		same("GEOPOS", g, "Palermo", "nosuch", "Rome"),
		same("GEODIST", g, "Palermo", "Catania"),
		same("GEODIST", g, "Palermo", "Catania", "km"),
		same("GEODIST", g, "Palermo", "Rome", "mi"),
		same("GEODIST", g, "Palermo", "nosuch"),
		same("GEODIST", g, "Palermo", "Catania", "parsecs"),
		same("GEOHASH", g, "Palermo", "Catania", "nosuch"),
		same("GEOSEARCH", g, "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "ASC"),
		same("GEOSEARCH", g, "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"),
		same("GEOSEARCH", g, "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "COUNT", "1"),
		same("GEOSEARCH", g, "FROMLONLAT", "15", "37", "BYRADIUS", "2000", "km", "COUNT", "2", "ANY", "ASC"),
		same("GEOSEARCH", g, "FROMMEMBER", "nosuch", "BYRADIUS", "1", "km"),
		same("GEOSEARCH", g, "BYRADIUS", "1", "km"),
		same("GEOSEARCHSTORE", p.tag("geodst"), g, "FROMMEMBER", "Palermo", "BYRADIUS", "500", "km", "ASC", "STOREDIST"),
		same("ZRANGE", p.tag("geodst"), "0", "-1", "WITHSCORES"),
		same("GEOSEARCHSTORE", p.tag("geodst"), g, "FROMLONLAT", "15", "37", "BYBOX", "1000", "1000", "km"),
		same("ZRANGE", p.tag("geodst"), "0", "-1", "WITHSCORES"),
		same("GEORADIUS", g, "15", "37", "200", "km", "WITHDIST", "ASC"),
		same("GEORADIUS", g, "15", "37", "500", "km", "ASC", "STORE", p.tag("geodst2")),
		same("ZRANGE", p.tag("geodst2"), "0", "-1"),
		same("GEORADIUS_RO", g, "15", "37", "200", "km", "WITHCOORD", "ASC"),
		same("GEORADIUSBYMEMBER", g, "Palermo", "300", "km", "ASC", "COUNT", "2"),
		same("GEORADIUSBYMEMBER_RO", g, "Palermo", "300", "km", "DESC", "WITHHASH"),
		same("GEORADIUS_RO", g, "15", "37", "200", "km", "STORE", p.tag("geodst2")),
		same("TYPE", g),
	}
}

// keyFamily: commands on keys of any type, expiry, SORT, DUMP/RESTORE,
// OBJECT and MEMORY.
func keyFamily(p passKeys, fx diffFixtures) []diffCmd {
	e := p.k("e")
	return []diffCmd{
		same("TYPE", p.k("h")),
		same("TYPE", p.k("z")),
		same("TYPE", p.k("l")),
		same("TYPE", p.tag("sa")),
		same("TYPE", p.k("s3")),
		same("TYPE", p.k("nosuch")),
		same("EXISTS", p.tag("m1"), p.tag("m2"), p.tag("nosuch")),
		// Split by slot: the counts of every master summed.
		same("EXISTS", p.k("x1"), p.k("x2"), p.k("nosuch"), p.k("x1")),
		same("TOUCH", p.k("x1"), p.k("x2"), p.k("nosuch")),
		same("DEL", p.k("x1"), p.k("x2"), p.k("nosuch")),
		same("UNLINK", p.k("x3"), p.k("x4"), p.k("x3")),
		same("DEL", p.tag("m1"), p.tag("m2")),
		same("UNLINK", p.tag("m3")),
		same("RENAME", p.tag("ba"), p.tag("bc")),
		same("RENAME", p.tag("nosuch"), p.tag("bc")),
		same("RENAME", p.tag("bc"), p.tag("bc")),
		same("RENAMENX", p.tag("bc"), p.tag("bb")),
		same("RENAMENX", p.tag("bc"), p.tag("bnew")),
		same("COPY", p.tag("bnew"), p.tag("bcopy")),
		same("COPY", p.tag("bnew"), p.tag("bcopy")),
		same("COPY", p.tag("bb"), p.tag("bcopy"), "REPLACE"),
		same("COPY", p.tag("nosuch"), p.tag("bcopy")),
		same("GET", p.tag("bcopy")),
		same("COPY", p.tag("sw"), p.tag("swcopy")),
		anyOrder("SMEMBERS", p.tag("swcopy")),

		// Expiry, on deterministic values.
		same("SET", e, "v"),
		same("EXPIRE", e, "1000"),
		// TTL rounds the milliseconds left to seconds, so a reply may be
		// 999 where the other is 1000 if the two servers are asked on
		// either side of a half-second: compared within 1 second.
		within(1, "TTL", e),
		within(2000, "PTTL", e),
		same("EXPIRE", e, "100", "NX"),
		same("EXPIRE", e, "2000", "XX"),
		same("EXPIRE", e, "10", "GT"),
		same("EXPIRE", e, "5000", "GT"),
		same("EXPIRE", e, "4000", "LT"),
		within(1, "TTL", e),
		same("EXPIRE", e, "100", "NX", "XX"),
		same("EXPIRE", e, "100", "GT", "LT"),
		same("PEXPIRE", e, "3000000"),
		within(2000, "PTTL", e),
		same("PERSIST", e),
		same("PERSIST", e),
		same("TTL", e),
		same("PTTL", e),
		same("TTL", p.k("nosuch")),
		same("PTTL", p.k("nosuch")),
		same("EXPIRETIME", e),
		same("EXPIRETIME", p.k("nosuch")),
		same("EXPIREAT", e, "4102444800"),
		same("EXPIRETIME", e),
		same("PEXPIRETIME", e),
		same("PEXPIREAT", e, "4102444800123"),
		same("PEXPIRETIME", e),
		same("EXPIRETIME", e),
		same("PEXPIREAT", e, "4102444800000", "XX"),
		same("EXPIREAT", e, "4102444801", "LT"),
		same("PEXPIRE", e, "1000", "NX"),
		same("EXPIRE", e, "abc"),
		same("EXPIRE", p.k("nosuch"), "100"),
		same("SET", p.k("e2"), "v"),
		same("EXPIRE", p.k("e2"), "-1"),
		same("EXISTS", p.k("e2")),
		same("SET", p.k("e3"), "v"),
		same("PEXPIREAT", p.k("e3"), "1"),
		same("GET", p.k("e3")),

		// SORT: with BY and GET patterns a cluster node refuses (in
		// clusterFamily).
		same("RPUSH", p.k("nl"), "3", "1", "2", "10"),
		same("SORT", p.k("nl")),
		same("SORT", p.k("nl"), "DESC", "LIMIT", "0", "2"),
		same("SORT", p.k("nl"), "ALPHA"),
		same("SORT", p.k("nl"), "BY", "nosort"),
		same("SORT_RO", p.k("nl"), "DESC"),
		same("SORT_RO", p.k("nl"), "STORE", p.k("nosuch")),
		same("SORT", p.k("l"), "ALPHA", "DESC"),
		same("SORT", p.k("lx")),
		same("SORT", p.tag("sb")),
		same("SORT", p.k("nosuch")),
		same("RPUSH", p.tag("sortsrc"), "b", "c", "a"),
		same("SORT", p.tag("sortsrc"), "ALPHA", "STORE", p.tag("sortdst")),
		same("LRANGE", p.tag("sortdst"), "0", "-1"),
		same("SORT", p.k("nl"), "LIMIT", "0"),

		// DUMP and RESTORE, with payloads of this redis-server version.
		same("SET", p.k("dumpsrc"), "hello"),
		same("DUMP", p.k("dumpsrc")),
		same("DUMP", p.k("l")),
		same("DUMP", p.k("nosuch")),
		same("RESTORE", p.k("r1"), "0", fx.stringDump),
		same("GET", p.k("r1")),
		same("RESTORE", p.k("r1"), "0", fx.stringDump),
		same("RESTORE", p.k("r1"), "0", fx.listDump, "REPLACE"),
		same("LRANGE", p.k("r1"), "0", "-1"),
		same("RESTORE", p.k("r2"), "4102444800000", fx.stringDump, "ABSTTL"),
		same("PEXPIRETIME", p.k("r2")),
		same("RESTORE", p.k("r3"), "1000000", fx.stringDump),
		within(2000, "PTTL", p.k("r3")),
		same("RESTORE", p.k("r4"), "0", "not a payload"),
		same("RESTORE", p.k("r4"), "-1", fx.stringDump),
		same("RESTORE", p.k("r4"), "0", fx.stringDump, "IDLETIME", "100"),
		within(1, "OBJECT", "IDLETIME", p.k("r4")),

		// OBJECT and MEMORY.
		same("SET", p.k("oint"), "12345"),
		same("SET", p.k("oemb"), "short"),
		same("OBJECT", "ENCODING", p.k("oint")),
		same("OBJECT", "ENCODING", p.k("oemb")),
		same("OBJECT", "ENCODING", p.k("big")),
		same("OBJECT", "ENCODING", p.tag("sa")),
		same("OBJECT", "ENCODING", p.k("nosuch")),
		same("OBJECT", "REFCOUNT", p.k("oemb")),
		same("OBJECT", "REFCOUNT", p.k("nosuch")),
		// Seconds since the last access: 0 or 1 however the two are timed.
		within(1, "OBJECT", "IDLETIME", p.k("oemb")),
		same("OBJECT", "FREQ", p.k("oemb")),
		same("OBJECT", "HELP"),
		same("OBJECT", "nosuch"),
		same("OBJECT", "ENCODING"),
		// A cluster node's keys carry a slot-list pointer pair, so the
		// sizes differ (64 bytes for a short string alone, 80 in a
		// cluster).
		sameShape("MEMORY", "USAGE", p.k("oemb")),
		sameShape("MEMORY", "USAGE", p.k("hbig"), "SAMPLES", "0"),
		same("MEMORY", "USAGE", p.k("nosuch")),
		same("MEMORY", "USAGE", p.k("oemb"), "SAMPLES"),
		same("MEMORY", "HELP"),
	}
}

func scriptFamily(p passKeys) []diffCmd {
	const (
		hello      = "return 'hello'"
		helloSHA   = "1b936e3fe509bcbc9cd0664897bbe8fd0cac101b"
		get        = "return redis.call('GET', KEYS[1])"
		getSHA     = "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f"
		unknownSHA = "ffffffffffffffffffffffffffffffffffffffff"
	)
	ev1, ev2 := p.tag("ev1"), p.tag("ev2")
	return []diffCmd{
		same("SCRIPT", "LOAD", hello),
		same("SCRIPT", "EXISTS", helloSHA, unknownSHA),
		same("EVALSHA", helloSHA, "0"),
		same("EVALSHA", strings.ToUpper(helloSHA), "0"),
		same("EVALSHA_RO", helloSHA, "0"),
		same("EVALSHA", unknownSHA, "0"),
		same("EVALSHA_RO", unknownSHA, "0"),
		same("EVALSHA", "short", "0"),
		same("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", ev1, "v1"),
		same("EVAL", "return {KEYS[1], KEYS[2], ARGV[1], redis.call('GET', KEYS[1])}", "2", ev1, ev2, "arg"),
		same("EVAL", "return redis.call('GET', KEYS[1])", "1", p.k("s3")),
		same("EVAL", "return 1 + 1", "0"),
		same("EVAL", "return {1, 'two', 3.7, true, false, {4}}", "0"),
		same("EVAL", "return redis.status_reply('FINE')", "0"),
		same("EVAL", "return redis.error_reply('MY error')", "0"),
		same("EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", p.k("h1")),
		same("EVAL", "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'b')", "1", p.tag("zi")),
		same("EVAL", "return redis.call('INCR', KEYS[1])", "1", p.k("h")),
		same("EVAL", "return redis.call('nosuch')", "0"),
		same("EVAL", "error(", "0"),
		same("EVAL", "return 1", "-1"),
		same("EVAL", "return 1", "5", "a"),
		same("EVAL", "return 1", "x"),
		same("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", ev1),
		same("EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", "1", ev1),
		same("SCRIPT", "LOAD", get),
		same("EVALSHA", getSHA, "1", ev1),
		same("EVALSHA_RO", getSHA, "1", ev2),
		same("SCRIPT", "LOAD", "error("),
		same("SCRIPT", "KILL"),
		same("SCRIPT", "FLUSH"),
		same("SCRIPT", "EXISTS", helloSHA),
		same("EVALSHA", helloSHA, "0"),
		same("SCRIPT", "LOAD", hello),
		same("SCRIPT", "FLUSH", "ASYNC"),
		same("SCRIPT", "EXISTS", helloSHA),
		same("SCRIPT", "LOAD", hello),
		same("SCRIPT", "FLUSH", "SYNC"),
		same("SCRIPT", "FLUSH", "LATER"),
		same("SCRIPT", "EXISTS"),
		same("SCRIPT", "HELP"),
		same("SCRIPT", "nosuch"),
	}
}

func functionFamily(p passKeys, fx diffFixtures) []diffCmd {
	// A library's functions are a hash table.
	list := func(args ...string) diffCmd {
		return normalised(sortValuesOf("functions"), append([]string{"FUNCTION", "LIST"}, args...)...)
	}
	return []diffCmd{
		same("FUNCTION", "FLUSH"),
		list(),
		same("FUNCTION", "LOAD", diffLibrary),
		same("FUNCTION", "LOAD", diffLibrary),
		same("FUNCTION", "LOAD", "#!lua name=broken\nnot lua"),
		same("FUNCTION", "LOAD", "no shebang"),
		list(),
		list("LIBRARYNAME", "diff", "WITHCODE"),
		list("LIBRARYNAME", "nosuch"),
		same("FCALL", "diffecho", "0", "hi"),
		same("SET", p.tag("fk"), "fv"),
		same("FCALL", "diffget", "1", p.tag("fk")),
		same("FCALL_RO", "diffget", "1", p.tag("fk")),
		same("FCALL_RO", "diffecho", "0", "hi"),
		same("FCALL", "nosuch", "0"),
		same("FCALL", "diffget", "x"),
		same("FUNCTION", "STATS"),
		same("FUNCTION", "DUMP"),
		same("FUNCTION", "DELETE", "difflib"),
		same("FUNCTION", "DELETE", "difflib"),
		same("FCALL", "diffecho", "0", "hi"),
		same("FUNCTION", "RESTORE", fx.functionDump),
		same("FCALL", "diffecho", "0", "back"),
		same("FUNCTION", "RESTORE", fx.functionDump),
		same("FUNCTION", "RESTORE", fx.functionDump, "APPEND"),
		same("FUNCTION", "RESTORE", fx.functionDump, "REPLACE"),
		same("FUNCTION", "RESTORE", fx.functionDump, "FLUSH"),
		same("FUNCTION", "RESTORE", "not a payload"),
		list(),
		same("FUNCTION", "KILL"),
		same("FUNCTION", "FLUSH", "ASYNC"),
		same("FUNCTION", "STATS"),
		same("FUNCTION", "LOAD", diffLibrary),
		same("FUNCTION", "FLUSH", "SYNC"),
		same("FUNCTION", "DUMP"),
		same("FUNCTION", "HELP"),
		same("FUNCTION", "nosuch"),
	}
}

// serverFamily: connection and server commands the proxy answers itself,
// gathers from every master, or forwards.
func serverFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("PING"),
		same("PING", "hello"),
		same("PING", "a", "b"),
		same("ECHO", "hi there"),
		same("ECHO", ""),
		same("ECHO"),
		same("SELECT", "0"),
		same("SELECT", "abc"),
		same("SELECT", "00"),
		same("SELECT", "+0"),
		same("AUTH", "x"),
		same("AUTH", "a", "b"),
		same("AUTH", "default", "anything"),
		same("HELLO", "4"),
		same("HELLO", "x"),
		same("HELLO", "02"),
		// HELLO without a version answers in the current protocol; the
		// server version and the client id differ.
		normalised(blankAfter("version", "id"), "HELLO"),
		// Values that differ by nature: the clock, the time of the last
		// save, the report text.
		sameShape("TIME"),
		sameShape("LASTSAVE"),
		sameShape("INFO"),
		sameShape("INFO", "server"),
		sameShape("INFO", "keyspace"),
		sameShape("INFO", "server", "clients"),
		same("INFO", "nosuchsection"),
		same("SAVE"),
		same("ROLE"),
		same("WAIT", "0", "0"),
		same("WAIT", "x", "0"),
		same("CONFIG", "GET", "maxmemory-policy"),
		same("CONFIG", "GET", "timeout"),
		same("CONFIG", "GET", "databases"),
		same("CONFIG", "GET", "lua-time-limit"),
		same("CONFIG", "GET", "nosuch"),
		// Several parameters: in the order of the server's config table.
		anyOrderPairs("CONFIG", "GET", "maxmemory*"),
		anyOrderPairs("CONFIG", "GET", "timeout", "maxmemory-policy", "list-max-*"),
		same("CONFIG", "GET"),
		same("CONFIG", "nosuch"),
		same("COMMAND", "COUNT"),
		same("COMMAND", "INFO", "get", "SET", "nosuch", "object|encoding"),
		// A container's subcommands are a hash table.
		normalised(sortSubcommands, "COMMAND", "INFO", "object"),
		same("COMMAND", "DOCS", "get"),
		same("COMMAND", "DOCS", "nosuch"),
		// The command table is a hash table, and so is each container's
		// table of subcommands.
		diffCmd{args: []string{"COMMAND"}, cmp: cmpAnyOrder, norm: sortSubcommands},
		diffCmd{args: []string{"COMMAND", "INFO"}, cmp: cmpAnyOrder, norm: sortSubcommands},
		anyOrder("COMMAND", "LIST"),
		anyOrder("COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog"),
		anyOrder("COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"),
		same("COMMAND", "LIST", "FILTERBY", "MODULE", "nosuch"),
		same("COMMAND", "GETKEYS", "SET", p.k("a"), "v"),
		same("COMMAND", "GETKEYS", "MSET", p.k("a"), "1", p.k("b"), "2"),
		same("COMMAND", "GETKEYS", "EVAL", "return 1", "2", p.k("a"), p.k("b"), "arg"),
		same("COMMAND", "GETKEYS", "PING"),
		same("COMMAND", "GETKEYS", "NOSUCH", "a"),
		same("COMMAND", "GETKEYS", "GET"),
		same("COMMAND", "GETKEYSANDFLAGS", "LMOVE", p.k("a"), p.k("b"), "LEFT", "RIGHT"),
		same("COMMAND", "HELP"),
		same("COMMAND", "nosuch"),
		same("ACL", "WHOAMI"),
		same("ACL", "CAT"),
		anyOrder("ACL", "CAT", "hyperloglog"),
		same("ACL", "CAT", "nosuch"),
		same("PUBLISH", "diffchannel", "message"),
		same("SPUBLISH", p.k("diffchannel"), "message"),
		same("PUBSUB", "CHANNELS"),
		same("PUBSUB", "CHANNELS", "diff*"),
		same("PUBSUB", "NUMSUB", "a", "b"),
		same("PUBSUB", "NUMPAT"),
		same("PUBSUB", "SHARDCHANNELS"),
		same("PUBSUB", "SHARDNUMSUB", p.k("a")),
		same("PUBSUB", "nosuch"),
	}
}

func clientFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("CLIENT", "GETNAME"),
		same("CLIENT", "SETNAME", "diffname"),
		same("CLIENT", "GETNAME"),
		same("CLIENT", "SETNAME", "bad name"),
		same("CLIENT", "SETNAME", ""),
		same("CLIENT", "GETNAME"),
		same("CLIENT", "SETNAME", "diffname"),
		same("CLIENT", "NO-EVICT", "ON"),
		same("CLIENT", "NO-EVICT", "off"),
		same("CLIENT", "NO-EVICT", "maybe"),
		same("CLIENT", "REPLY", "ON"),
		same("CLIENT", "REPLY", "MAYBE"),
		same("CLIENT", "GETREDIR"),
		same("CLIENT", "TRACKINGINFO"),
		// Ids, addresses, ages: facts about each server's connections.
		sameShape("CLIENT", "ID"),
		sameShape("CLIENT", "INFO"),
		sameShape("CLIENT", "LIST", "TYPE", "normal"),
		same("CLIENT", "LIST", "TYPE", "nosuch"),
		same("CLIENT", "HELP"),
		same("CLIENT", "NOSUCH"),
		same("CLIENT"),
	}
}

// errorFamily: arity, types and names, as redis-server words them.
func errorFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("LPUSH", p.k("h"), "x"),
		same("GET", p.k("h")),
		same("HGET", p.k("l"), "f"),
		same("SADD", p.k("z"), "a"),
		same("ZADD", p.tag("sa"), "1", "a"),
		same("XLEN", p.k("h")),
		same("GET"),
		same("GET", "a", "b"),
		same("SET"),
		same("EXISTS"),
		same("MGET"),
		same("ZADD", p.k("z")),
		same("XADD", p.k("x")),
		same("NOSUCHCMD", "a", "b"),
		same("nosuchcmd"),
		same("OBJECT"),
		same("XINFO", "NOSUCH"),
		same("XGROUP", "NOSUCH", "x"),
		same("MEMORY", "NOSUCH"),
		same("ACL", "NOSUCH"),
		same("XINFO"),
		same("XGROUP"),
		same("SCRIPT"),
		same("FUNCTION"),
	}
}

// clusterFamily: what a single server does and a cluster cannot. The
// proxy must give a cluster node's own error, not the standalone reply.
func clusterFamily(p passKeys) []diffCmd {
	return []diffCmd{
		asCluster(clusterSelect, "SELECT", "1"),
		asCluster(clusterSelect, "SELECT", "16"),
		asCluster(clusterSelect, "SELECT", "-1"),
		asCluster(clusterMove, "MOVE", p.k("s3"), "1"),
		asCluster(clusterSwapDB, "SWAPDB", "0", "1"),
		asCluster(clusterCopyDB, "COPY", p.tag("bnew"), p.tag("bcopydb"), "DB", "1"),
		asCluster(clusterSortBy, "SORT", p.k("nl"), "BY", "weight_*"),
		asCluster(clusterSortGet, "SORT", p.k("nl"), "GET", "#"),
		asCluster(clusterSortGet, "SORT", p.k("nl"), "GET", "{"+string(p)+"}o_*"),
		// Keys in different slots, for commands that cannot be split.
		asCluster(msgCrossSlot, "RENAME", p.k("s3"), p.k("s3b")),
		asCluster(msgCrossSlot, "SUNION", p.k("s1m"), p.k("sw")),
		asCluster(msgCrossSlot, "BITOP", "AND", p.k("bd"), p.k("b"), p.k("bf")),
		asCluster(msgCrossSlot, "LMOVE", p.k("l"), p.k("lx"), "LEFT", "LEFT"),
		asCluster(msgCrossSlot, "ZUNIONSTORE", p.k("zu"), "2", p.k("z"), p.k("zbig")),
		asCluster(msgCrossSlot, "MSETNX", p.k("n1"), "a", p.k("n2"), "b"),
		asCluster(msgCrossSlot, "EVAL", "return 1", "2", p.k("a"), p.k("b")),
		asCluster(msgCrossSlot, "PFCOUNT", p.k("hll"), p.k("hll2")),
		asCluster(msgCrossSlot, "XREAD", "STREAMS", p.k("x"), p.k("nosuch"), "0", "0"),
	}
}

// endFamily: the whole keyspace once every family has run, then the
// commands that change what the connection replies (last, so that a
// proxy that gets them wrong garbles only the end of the sequence).
func endFamily(p passKeys) []diffCmd {
	return []diffCmd{
		same("DBSIZE"),
		anyOrder("KEYS", "*"),
		iterate("SCAN", "0", "COUNT", "1000"),
		iterate("SCAN", "0", "TYPE", "zset", "COUNT", "1000"),

		noReply("CLIENT", "REPLY", "SKIP"),
		noReply("PING", "skipped"),
		same("PING", "after skip"),
		noReply("CLIENT", "REPLY", "OFF"),
		noReply("SET", p.k("quiet"), "v"),
		noReply("GET", p.k("quiet")),
		noReply("CLIENT", "REPLY", "SKIP"),
		same("CLIENT", "REPLY", "ON"),
		same("GET", p.k("quiet")),
		same("PING"),
		// RESET goes back to RESP2, without a name, replying ON.
		same("RESET"),
		same("CLIENT", "GETNAME"),
		normalised(blankAfter("version", "id"), "HELLO"),
		same("PING"),
	}
}

// replyTree is a decoded reply, for the comparisons that look inside one.
type replyTree struct {
	kind  byte        // the RESP type byte: '+', '-', ':', '$', '*', '%', '~', ',', '_', '=', ...
	text  string      // a simple value's line; a bulk's payload
	null  bool        // "$-1" or "*-1"
	elems []replyTree // an aggregate's elements; a map's keys and values in turn
}

func (v replyTree) aggregate() bool { return strings.IndexByte("*~>%|", v.kind) >= 0 }

// parseTree decodes a reply framed by router.ScanReply.
func parseTree(s string) (replyTree, error) {
	v, rest, err := parseTreeAt(s)
	if err == nil && rest != "" {
		err = fmt.Errorf("%d bytes after the reply", len(rest))
	}
	return v, err
}

func parseTreeAt(s string) (replyTree, string, error) {
	i := strings.Index(s, "\r\n")
	if i < 1 {
		return replyTree{}, "", fmt.Errorf("no header line in %s", short(s))
	}
	v := replyTree{kind: s[0]}
	line, rest := s[1:i], s[i+2:]
	switch {
	case strings.IndexByte("$!=", v.kind) >= 0:
		n, err := strconv.Atoi(line)
		if err != nil || len(rest) < n+2 {
			return v, "", fmt.Errorf("bad bulk %s", short(s))
		}
		if n < 0 {
			v.null = true
			return v, rest, nil
		}
		v.text = rest[:n]
		return v, rest[n+2:], nil
	case v.aggregate():
		n, err := strconv.Atoi(line)
		if err != nil {
			return v, "", fmt.Errorf("bad aggregate %s", short(s))
		}
		if n < 0 {
			v.null = true
			return v, rest, nil
		}
		if v.kind == '%' || v.kind == '|' {
			n *= 2
		}
		for range n {
			var e replyTree
			if e, rest, err = parseTreeAt(rest); err != nil {
				return v, "", err
			}
			v.elems = append(v.elems, e)
		}
		return v, rest, nil
	}
	v.text = line
	return v, rest, nil
}

// encode gives v back in RESP.
func (v replyTree) encode() string {
	var b strings.Builder
	v.encodeTo(&b)
	return b.String()
}

func (v replyTree) encodeTo(b *strings.Builder) {
	b.WriteByte(v.kind)
	switch {
	case v.null:
		b.WriteString("-1\r\n")
	case strings.IndexByte("$!=", v.kind) >= 0:
		fmt.Fprintf(b, "%d\r\n%s\r\n", len(v.text), v.text)
	case v.aggregate():
		n := len(v.elems)
		if v.kind == '%' || v.kind == '|' {
			n /= 2
		}
		fmt.Fprintf(b, "%d\r\n", n)
		for _, e := range v.elems {
			e.encodeTo(b)
		}
	default:
		b.WriteString(v.text + "\r\n")
	}
}

// walk calls f on v and every value inside it.
func (v *replyTree) walk(f func(*replyTree)) {
	f(v)
	for i := range v.elems {
		v.elems[i].walk(f)
	}
}

// blankAfter returns a norm that replaces, in every map or RESP2 flat
// map, the value of each of keys with "+<blank>".
func blankAfter(keys ...string) func(*replyTree) {
	return func(v *replyTree) {
		v.walk(func(a *replyTree) {
			if !a.aggregate() {
				return
			}
			for i := 0; i+1 < len(a.elems); i += 2 {
				if k := a.elems[i]; !k.aggregate() && slices.Contains(keys, k.text) {
					a.elems[i+1] = replyTree{kind: '+', text: "<blank>"}
				}
			}
		})
	}
}

// sortValuesOf returns a norm that sorts the elements of the value of key
// in every map or RESP2 flat map.
func sortValuesOf(key string) func(*replyTree) {
	return func(v *replyTree) {
		v.walk(func(a *replyTree) {
			if !a.aggregate() {
				return
			}
			for i := 0; i+1 < len(a.elems); i += 2 {
				if k, val := a.elems[i], &a.elems[i+1]; !k.aggregate() && k.text == key && val.aggregate() {
					sortElems(val)
				}
			}
		})
	}
}

// sortSubcommands sorts the subcommands of each entry of a COMMAND or
// COMMAND INFO reply: the tenth element of a command's description.
func sortSubcommands(v *replyTree) {
	for i := range v.elems {
		if e := &v.elems[i]; e.aggregate() && len(e.elems) >= 10 && e.elems[9].aggregate() {
			sortElems(&e.elems[9])
		}
	}
}

func sortElems(v *replyTree) {
	sort.Slice(v.elems, func(i, j int) bool { return v.elems[i].encode() < v.elems[j].encode() })
}

// zeroTimestamps sets to 0 the integers that can only be milliseconds
// since 1970 (from 2001 on).
func zeroTimestamps(v *replyTree) {
	v.walk(func(a *replyTree) {
		if n, err := strconv.ParseInt(a.text, 10, 64); a.kind == ':' && err == nil && n >= 1e12 {
			a.text = "0"
		}
	})
}

// blankPendingIdle blanks the idle time of each entry of XPENDING's
// extended form: [id, consumer, idle ms, deliveries].
func blankPendingIdle(v *replyTree) {
	for i := range v.elems {
		if e := &v.elems[i]; e.kind == '*' && len(e.elems) == 4 {
			e.elems[2] = replyTree{kind: ':', text: "0"}
		}
	}
}

// diffReplies compares two replies to cmd and describes the difference, or
// returns "".
func diffReplies(cmd diffCmd, want, got string) string {
	if !repliesMatch(cmd, want, got) {
		if cmd.cmp == cmpCluster {
			want = "-" + cmd.want + "\r\n"
			return fmt.Sprintf("%s\n\t   cluster node: %s\n\t   proxy:        %s", shortArgs(cmd.args), short(want), short(got))
		}
		return fmt.Sprintf("%s\n\t   redis-server: %s\n\t   proxy:        %s", shortArgs(cmd.args), short(want), short(got))
	}
	return ""
}

func repliesMatch(cmd diffCmd, want, got string) bool {
	switch cmd.cmp {
	case cmpCluster:
		return got == "-"+cmd.want+"\r\n"
	case cmpNear:
		a, errA := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(want, ":"), "\r\n"), 10, 64)
		b, errB := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(got, ":"), "\r\n"), 10, 64)
		return errA == nil && errB == nil && a-b <= cmd.near && b-a <= cmd.near
	}
	if want == got {
		return true
	}
	if cmd.cmp == cmpBytes && cmd.norm == nil {
		return false
	}
	w, errW := parseTree(want)
	g, errG := parseTree(got)
	if errW != nil || errG != nil {
		return false
	}
	if cmd.norm != nil {
		cmd.norm(&w)
		cmd.norm(&g)
	}
	if w.kind != g.kind || w.null != g.null || len(w.elems) != len(g.elems) {
		return false
	}
	switch cmd.cmp {
	case cmpShape:
		return true
	case cmpAnyOrder, cmpAnyOrderPairs:
		return slices.Equal(sortedMembers(w, cmd.cmp == cmpAnyOrderPairs), sortedMembers(g, cmd.cmp == cmpAnyOrderPairs))
	}
	return w.encode() == g.encode()
}

// sortedMembers returns v's top-level elements encoded and sorted, taken two by
// two for a map, or for a flat array when pairs is set (a RESP2 map; in
// RESP3 such pairs come as a map or as two-element arrays).
func sortedMembers(v replyTree, pairs bool) []string {
	step := 1
	if v.kind == '%' || (pairs && len(v.elems) > 0 && !v.elems[0].aggregate()) {
		step = 2
	}
	var out []string
	for i := 0; i+step <= len(v.elems); i += step {
		var s string
		for _, e := range v.elems[i : i+step] {
			s += e.encode()
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// maxScanCalls bounds the calls of one iteration: far more than either
// side needs for the keys here, however it pages.
const maxScanCalls = 20000

// scanAll iterates cmd (a SCAN-family command with its cursor "0") on c to
// the end and returns what it returned, sorted, without repeats (a SCAN
// may return an element twice). When a reply is not a page (an error),
// the iteration stops and that reply is returned as first.
func scanAll(c *respConn, cmd diffCmd) (elems []string, first string, err error) {
	args := slices.Clone(cmd.args)
	at := 2 // HSCAN key cursor
	if strings.EqualFold(args[0], "scan") {
		at = 1
	}
	pairs := strings.EqualFold(args[0], "hscan") || strings.EqualFold(args[0], "zscan")
	seen := map[string]bool{}
	cursor := "0"
	for calls := 0; ; calls++ {
		if calls == maxScanCalls {
			return nil, "", fmt.Errorf("no end after %d calls", calls)
		}
		args[at] = cursor
		r, err := c.roundTrip(10*time.Second, respCommand(args...))
		if err != nil {
			return nil, "", err
		}
		v, err := parseTree(r)
		if err != nil || v.kind != '*' || len(v.elems) != 2 || v.elems[0].kind != '$' || !v.elems[1].aggregate() {
			return nil, r, nil
		}
		for _, m := range sortedMembers(v.elems[1], pairs) {
			seen[m] = true
		}
		if cursor = v.elems[0].text; cursor == "0" {
			break
		}
	}
	for m := range seen {
		elems = append(elems, m)
	}
	sort.Strings(elems)
	return elems, "", nil
}

// diffIteration runs an iterate command on both sides and describes the
// difference, or returns "".
func diffIteration(t *testing.T, std, prx *respConn, cmd diffCmd) string {
	t.Helper()
	want, wantFirst, err := scanAll(std, cmd)
	if err != nil {
		t.Fatalf("%s on redis-server: %v", shortArgs(cmd.args), err)
	}
	got, gotFirst, err := scanAll(prx, cmd)
	if err != nil {
		return fmt.Sprintf("%s iterated\n\t   proxy: %v", shortArgs(cmd.args), err)
	}
	if wantFirst != "" || gotFirst != "" {
		return diffReplies(diffCmd{args: cmd.args}, wantFirst, gotFirst)
	}
	if !slices.Equal(want, got) {
		return fmt.Sprintf("%s iterated to the end\n\t   redis-server: %d elements %s\n\t   proxy:        %d elements %s",
			shortArgs(cmd.args), len(want), short(strings.Join(want, "")), len(got), short(strings.Join(got, "")))
	}
	return ""
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

// seqCommandName is the name COMMAND gives to what args run ("get",
// "object|encoding"), or "" for an unknown command or subcommand.
func seqCommandName(args []string) string {
	cmd := Builtin().Lookup([]byte(args[0]))
	if cmd != nil && cmd.Sub != nil && len(args) > 1 {
		cmd = cmd.Subcommand([]byte(args[1]))
	}
	if cmd == nil {
		return ""
	}
	return cmd.Name
}

// seqCommandNames returns the distinct commands and subcommands cmds run,
// sorted; the error cases with an unknown name are not counted.
func seqCommandNames(cmds []diffCmd) []string {
	seen := map[string]bool{}
	for _, c := range cmds {
		if n := seqCommandName(c.args); n != "" {
			seen[n] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestDifferentialComparisons pins the comparison modes, so that a loose one
// cannot make the differential test pass by accident.
func TestDifferentialComparisons(t *testing.T) {
	bulk := func(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	arr := func(elems ...string) string { return "*" + strconv.Itoa(len(elems)) + "\r\n" + strings.Join(elems, "") }
	hello := func(id string) string {
		return "%3\r\n" + bulk("version") + bulk("7.0.15") + bulk("id") + ":" + id + "\r\n" + bulk("mode") + bulk("standalone")
	}
	for _, tc := range []struct {
		name      string
		cmd       diffCmd
		want, got string
		match     bool
	}{
		{"bytes", same("GET", "k"), bulk("a"), bulk("a"), true},
		{"bytes differ", same("GET", "k"), bulk("a"), bulk("b"), false},
		{"any order", anyOrder("KEYS", "*"), arr(bulk("a"), bulk("b")), arr(bulk("b"), bulk("a")), true},
		{"any order, other members", anyOrder("KEYS", "*"), arr(bulk("a"), bulk("b")), arr(bulk("a"), bulk("c")), false},
		{"any order, a repeat", anyOrder("KEYS", "*"), arr(bulk("a"), bulk("a"), bulk("b")), arr(bulk("a"), bulk("b"), bulk("b")), false},
		{"pairs kept together", anyOrderPairs("HGETALL", "h"),
			arr(bulk("f1"), bulk("1"), bulk("f2"), bulk("2")), arr(bulk("f2"), bulk("2"), bulk("f1"), bulk("1")), true},
		{"pairs not split", anyOrderPairs("HGETALL", "h"),
			arr(bulk("f1"), bulk("1"), bulk("f2"), bulk("2")), arr(bulk("f1"), bulk("2"), bulk("f2"), bulk("1")), false},
		{"shape", sameShape("TIME"), arr(bulk("1"), bulk("2")), arr(bulk("3"), bulk("44")), true},
		{"shape, a count", sameShape("TIME"), arr(bulk("1"), bulk("2")), arr(bulk("3")), false},
		{"shape, a type", sameShape("LASTSAVE"), ":1\r\n", "-ERR x\r\n", false},
		{"near", within(1, "TTL", "k"), ":1000\r\n", ":999\r\n", true},
		{"not near", within(1, "TTL", "k"), ":1000\r\n", ":998\r\n", false},
		{"normalised", normalised(blankAfter("version", "id"), "HELLO"), hello("5"), hello("7"), true},
		{"normalised, the rest kept", normalised(blankAfter("version", "id"), "HELLO"), hello("5"), strings.Replace(hello("5"), "standalone", "cluster", 1), false},
		{"cluster", asCluster(clusterSelect, "SELECT", "1"), "+OK\r\n", "-" + clusterSelect + "\r\n", true},
		{"cluster, the standalone reply", asCluster(clusterSelect, "SELECT", "1"), "+OK\r\n", "+OK\r\n", false},
	} {
		if got := repliesMatch(tc.cmd, tc.want, tc.got); got != tc.match {
			t.Errorf("%s: match %v, want %v", tc.name, got, tc.match)
		}
	}
}

func TestDifferential(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	redisAddr := clustertest.Standalone(t, "").Addr
	fx := loadFixtures(t, redisAddr)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	masters, err := c.MasterAddrs(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	names := seqCommandNames(diffCommands("count", fx))
	if len(names) < minDistinctCommands {
		t.Fatalf("the sequence runs %d distinct commands and subcommands, want at least %d", len(names), minDistinctCommands)
	}
	t.Logf("%d distinct commands and subcommands", len(names))

	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			for _, pipelined := range []bool{false, true} {
				name, prefix := "OneByOne", fmt.Sprintf("r%ds", proto)
				if pipelined {
					name, prefix = "Pipelined", fmt.Sprintf("r%dp", proto)
				}
				t.Run(name, func(t *testing.T) {
					resetBoth(t, redisAddr, masters)
					std, prx, ok := dialPair(t, redisAddr, p.Addr, proto)
					if !ok {
						return
					}
					cmds := diffCommands(passKeys(prefix), fx)
					var differ []string
					if pipelined {
						differ = runPipelined(t, std, prx, cmds)
					} else {
						differ = runOneByOne(t, std, prx, cmds)
					}
					if len(differ) > 0 {
						t.Errorf("%d of %d commands differ; by name: %s", len(differ), len(cmds), strings.Join(distinctUpper(differ), " "))
					}
				})
			}
		})
	}

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

// runOneByOne sends each command to both and reads both replies before
// the next, and returns the names of the commands whose replies differ.
func runOneByOne(t *testing.T, std, prx *respConn, cmds []diffCmd) (differ []string) {
	t.Helper()
	for _, cmd := range cmds {
		var d string
		switch cmd.cmp {
		case cmpNoReply:
			std.write(respCommand(cmd.args...))
			prx.write(respCommand(cmd.args...))
			continue
		case cmpIterate:
			d = diffIteration(t, std, prx, cmd)
		case cmpCluster:
			// Not sent to the standalone server: SELECT 1 or SWAPDB
			// would change what the rest of the sequence sees there.
			got, err := prx.roundTrip(10*time.Second, respCommand(cmd.args...))
			if err != nil {
				t.Fatalf("%s: no reply from the proxy: %v", shortArgs(cmd.args), err)
			}
			d = diffReplies(cmd, "", got)
		default:
			want := std.do(cmd.args...)
			got, err := prx.roundTrip(10*time.Second, respCommand(cmd.args...))
			if err != nil {
				t.Fatalf("%s: no reply from the proxy: %v", shortArgs(cmd.args), err)
			}
			d = diffReplies(cmd, want, got)
		}
		if d != "" {
			differ = append(differ, cmd.args[0])
			t.Errorf("differs: %s", d)
		}
	}
	return differ
}

// runPipelined sends the commands between two iterations in one write to
// both, then reads every reply in turn; iterations go one call at a time.
// It returns the names of the commands whose replies differ.
func runPipelined(t *testing.T, std, prx *respConn, cmds []diffCmd) (differ []string) {
	t.Helper()
	report := func(i int, d string) {
		differ = append(differ, cmds[i].args[0])
		if len(differ) <= 25 {
			t.Errorf("differs (#%d): %s", i, d)
		}
	}
	for i := 0; i < len(cmds); {
		if cmds[i].cmp == cmpIterate {
			if d := diffIteration(t, std, prx, cmds[i]); d != "" {
				report(i, d)
			}
			i++
			continue
		}
		end := i
		var toStd, toPrx strings.Builder
		for ; end < len(cmds) && cmds[end].cmp != cmpIterate; end++ {
			req := respCommand(cmds[end].args...)
			if cmds[end].cmp != cmpCluster { // as in runOneByOne
				toStd.WriteString(req)
			}
			toPrx.WriteString(req)
		}
		// Written while the replies are read: neither side need read
		// the whole pipeline before it answers.
		stdDone, prxDone := std.writeAsync(toStd.String()), prx.writeAsync(toPrx.String())
		for ; i < end; i++ {
			cmd := cmds[i]
			if cmd.cmp == cmpNoReply {
				continue
			}
			var want string
			if cmd.cmp != cmpCluster {
				want = std.reply()
			}
			got, err := prx.tryReply(10 * time.Second)
			if err != nil {
				t.Fatalf("command #%d %s: no reply from the proxy: %v", i, shortArgs(cmd.args), err)
			}
			if d := diffReplies(cmd, want, got); d != "" {
				report(i, d)
			}
		}
		for _, done := range []<-chan error{stdDone, prxDone} {
			if err := <-done; err != nil {
				t.Fatalf("writing the pipeline: %v", err)
			}
		}
	}
	return differ
}

// distinctUpper returns names upper-cased, sorted, without repeats.
func distinctUpper(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, strings.ToUpper(n))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// dialPair connects to the standalone server and to the proxy. For RESP3
// both are sent HELLO 3 first, and their replies compared but for the
// server version and the client id; ok is false (and t failed) when the
// proxy does not take HELLO 3, since every reply after it would differ.
func dialPair(t *testing.T, stdAddr, prxAddr string, proto int) (std, prx *respConn, ok bool) {
	t.Helper()
	std, prx = dialRESP(t, stdAddr), dialRESP(t, prxAddr)
	if proto == 2 {
		return std, prx, true
	}
	hello := normalised(blankAfter("version", "id"), "HELLO", strconv.Itoa(proto))
	want := std.do(hello.args...)
	got, err := prx.roundTrip(5*time.Second, respCommand(hello.args...))
	if err != nil {
		t.Fatalf("HELLO %d: no reply from the proxy: %v", proto, err)
	}
	if d := diffReplies(hello, want, got); d != "" {
		t.Errorf("differs: %s", d)
	}
	if strings.HasPrefix(got, "-") {
		t.Errorf("the proxy refuses HELLO %d: the pass is not run", proto)
		return nil, nil, false
	}
	return std, prx, true
}

// resetBoth empties the standalone server and every master of the
// cluster directly, keys, scripts and functions, so that a pass starts
// from the same state on both sides whatever the last one left.
func resetBoth(t *testing.T, stdAddr string, masters []string) {
	t.Helper()
	for _, addr := range append([]string{stdAddr}, masters...) {
		c := dialRESP(t, addr)
		for _, args := range [][]string{{"FLUSHALL", "SYNC"}, {"SCRIPT", "FLUSH", "SYNC"}, {"FUNCTION", "FLUSH", "SYNC"}} {
			if r := c.do(args...); r != "+OK\r\n" {
				t.Fatalf("%s on %s: %q", strings.Join(args, " "), addr, r)
			}
		}
		c.nc.Close()
	}
}

// loadFixtures takes the DUMP and FUNCTION DUMP payloads the sequence
// restores from the standalone server, and leaves it empty again.
func loadFixtures(t *testing.T, addr string) diffFixtures {
	t.Helper()
	c := dialRESP(t, addr)
	defer c.nc.Close()
	bulk := func(args ...string) string {
		t.Helper()
		r := c.do(args...)
		v, err := parseTree(r)
		if err != nil || v.kind != '$' || v.null {
			t.Fatalf("%s: %q", strings.Join(args, " "), r)
		}
		return v.text
	}
	c.do("SET", "fixture:s", "hello")
	c.do("RPUSH", "fixture:l", "a", "b", "c")
	c.do("FUNCTION", "LOAD", diffLibrary)
	fx := diffFixtures{
		stringDump:   bulk("DUMP", "fixture:s"),
		listDump:     bulk("DUMP", "fixture:l"),
		functionDump: bulk("FUNCTION", "DUMP"),
	}
	c.do("FLUSHALL", "SYNC")
	c.do("FUNCTION", "FLUSH", "SYNC")
	return fx
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

// writeAsync writes s from another goroutine, so that the caller can read
// replies meanwhile, and reports how the write ended.
func (c *respConn) writeAsync(s string) <-chan error {
	done := make(chan error, 1)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := c.nc.Write([]byte(s))
		done <- err
	}()
	return done
}
