package proxy

// The differential test of what holds a connection: transactions, WATCH,
// blocking commands and Pub/Sub. As in differential_test.go, the same raw
// RESP goes to a standalone redis-server and to the proxy in front of a
// cluster, in RESP2 and in RESP3, and the replies are compared byte for
// byte; here a sequence may use several clients (the one that writes a
// WATCHed key, the one that wakes a blocked pop or publishes), wait until
// a client is blocked, and read a reply while another is still pending.
//
// Every key of a sequence carries its hash tag: a transaction runs on one
// master, and the point is what the commands do, not how keys are split.
// Where a cluster cannot do what a single server does, the proxy's own
// reply is pinned instead (testHeldRefusals).

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// heldStep is one step of a sequence on client conn: cmds written in one
// write, then read replies (frames: a push counts as one) read on conn
// and compared. blocked > 0 makes the step a wait instead, until that
// many clients are blocked on each side.
type heldStep struct {
	conn    int
	cmds    [][]string
	read    int
	blocked int
	// within bounds the wait for the replies; 0 means heldReplyWait.
	within time.Duration
}

// heldReplyWait bounds a read: far beyond what any reply here takes.
const heldReplyWait = 10 * time.Second

// on is one command on conn and its reply.
func on(conn int, args ...string) heldStep {
	return heldStep{conn: conn, cmds: [][]string{args}, read: 1}
}

// onN is one command that answers with n frames (SUBSCRIBE to n channels).
func onN(conn, n int, args ...string) heldStep {
	return heldStep{conn: conn, cmds: [][]string{args}, read: n}
}

// pipeOn writes cmds in one write and reads a reply to each.
func pipeOn(conn int, cmds ...[]string) heldStep {
	return heldStep{conn: conn, cmds: cmds, read: len(cmds)}
}

// sendOn writes cmds in one write and reads nothing: their replies are
// read by a later readOn.
func sendOn(conn int, cmds ...[]string) heldStep {
	return heldStep{conn: conn, cmds: cmds}
}

// readOn reads n frames on conn.
func readOn(conn, n int) heldStep { return heldStep{conn: conn, read: n} }

// readOnWithin reads n frames on conn, failing past d.
func readOnWithin(d time.Duration, conn, n int) heldStep {
	return heldStep{conn: conn, read: n, within: d}
}

// untilBlocked waits until n clients are blocked on each side.
func untilBlocked(n int) heldStep { return heldStep{blocked: n} }

func cmdArgs(a ...string) []string { return a }

// heldSeq is a named sequence; its steps are built for one protocol, with
// its keys and channels named by k.
type heldSeq struct {
	name  string
	steps func(k func(string) string, proto int) []heldStep
}

// heldSequences returns every sequence compared.
func heldSequences() []heldSeq {
	return []heldSeq{
		{"MultiExec", multiExecSteps},
		{"PipelinedTransactions", pipelinedTxnSteps},
		{"QueueErrors", queueErrorSteps},
		{"Watch", watchSteps},
		{"BlockingTimeouts", blockingTimeoutSteps},
		{"BlockingWoken", blockingWokenSteps},
		{"BlockingPipelines", blockingPipelineSteps},
		{"Reset", resetSteps},
		{"Interplay", interplaySteps},
		{"PubSub", pubSubSteps},
		{"PubSubWithCommands", pubSubCommandSteps},
		{"RefusedExec", refusedExecSteps},
	}
}

// refusedExecSteps: an EXEC refused before it runs ends the transaction
// with EXECABORT and the reason; PUBLISH and SELECT 0 are queued like any
// command.
func refusedExecSteps(k func(string) string, proto int) []heldStep {
	steps := []heldStep{
		on(0, "MULTI"),
		on(0, "SET", k("e"), "3"),
		on(0, "EXEC", "x"),
		on(0, "SET", k("e"), "4"),
		on(0, "EXEC"),
		on(0, "GET", k("e")),
		on(0, "EXEC", "x"),
		on(0, "MULTI"),
		on(0, "SET", k("p"), "v"),
		on(0, "PUBLISH", k("nobody"), "m"),
		on(0, "SELECT", "0"),
		on(0, "EXEC"),
	}
	if proto == 2 {
		steps = append(steps,
			on(0, "SUBSCRIBE", k("ch")),
			on(0, "EXEC"),
			on(0, "UNSUBSCRIBE", k("ch")),
		)
	}
	return steps
}

// multiExecSteps: a transaction of mixed reply types, a runtime error
// that does not abort it, and MULTI, EXEC, DISCARD out of place.
func multiExecSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "SET", k("str"), "text"),
		on(0, "MULTI"),
		on(0, "SET", k("a"), "1"),
		on(0, "INCR", k("a")),
		on(0, "GET", k("a")),
		on(0, "GET", k("nosuch")),
		on(0, "RPUSH", k("l"), "a", "b", "c"),
		on(0, "LRANGE", k("l"), "0", "-1"),
		on(0, "HSET", k("h"), "f", "v"),
		on(0, "HGETALL", k("h")),
		on(0, "ZADD", k("z"), "1.5", "m"),
		on(0, "ZSCORE", k("z"), "m"),
		on(0, "ZRANGE", k("z"), "0", "-1", "WITHSCORES"),
		on(0, "SADD", k("set"), "x"),
		on(0, "SMEMBERS", k("set")),
		on(0, "EXISTS", k("a"), k("nosuch")),
		on(0, "TYPE", k("h")),
		on(0, "PING"),
		on(0, "ECHO", "hi"),
		on(0, "INCR", k("str")),
		on(0, "HGET", k("l"), "f"),
		on(0, "SET", k("after"), "ran"),
		on(0, "EXEC"),
		on(0, "GET", k("after")),
		on(0, "EXEC"),
		on(0, "DISCARD"),
		// Empty transactions.
		on(0, "MULTI"),
		on(0, "EXEC"),
		on(0, "MULTI"),
		on(0, "DISCARD"),
		on(0, "MULTI"),
		on(0, "SET", k("d"), "1"),
		on(0, "DISCARD"),
		on(0, "GET", k("d")),
		// Refusals that do not doom the transaction.
		on(0, "MULTI"),
		on(0, "MULTI"),
		on(0, "WATCH", k("a")),
		on(0, "SET", k("n"), "1"),
		on(0, "EXEC"),
		// Blocking commands inside MULTI do not block.
		on(0, "MULTI"),
		on(0, "BLPOP", k("empty"), "0"),
		on(0, "BRPOPLPUSH", k("empty"), k("l"), "0"),
		on(0, "BZPOPMIN", k("empty"), "0"),
		on(0, "BLMPOP", "0", "1", k("empty"), "LEFT"),
		on(0, "XREAD", "BLOCK", "0", "STREAMS", k("stream"), "$"),
		on(0, "BLPOP", k("l"), "0"),
		on(0, "EXEC"),
		on(0, "LRANGE", k("l"), "0", "-1"),
	}
}

// pipelinedTxnSteps: whole transactions in one write, with commands of
// the same client before and after them.
func pipelinedTxnSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		pipeOn(0,
			cmdArgs("SET", k("p"), "1"),
			cmdArgs("MULTI"),
			cmdArgs("INCR", k("p")),
			cmdArgs("GET", k("p")),
			cmdArgs("EXEC"),
			cmdArgs("GET", k("p")),
			cmdArgs("MULTI"),
			cmdArgs("SET", k("q"), "1"),
			cmdArgs("DISCARD"),
			cmdArgs("GET", k("q")),
			cmdArgs("EXEC"),
			cmdArgs("MULTI"),
			cmdArgs("EXEC"),
		),
		pipeOn(0,
			cmdArgs("MULTI"),
			cmdArgs("GET"),
			cmdArgs("SET", k("p"), "2"),
			cmdArgs("NOSUCHCMD", "x"),
			cmdArgs("EXEC"),
			cmdArgs("GET", k("p")),
		),
		// A client pipelines transactions back to back.
		pipeOn(0,
			cmdArgs("MULTI"), cmdArgs("INCR", k("p")), cmdArgs("EXEC"),
			cmdArgs("MULTI"), cmdArgs("INCR", k("p")), cmdArgs("INCR", k("p")), cmdArgs("EXEC"),
			cmdArgs("MULTI"), cmdArgs("LPUSH", k("pl"), "a"), cmdArgs("LPOP", k("pl")), cmdArgs("EXEC"),
		),
	}
}

// queueErrorSteps: commands refused while queued doom the transaction.
func queueErrorSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "MULTI"),
		on(0, "SET", k("e"), "1"),
		on(0, "GET"),
		on(0, "SET", k("e"), "2"),
		on(0, "EXEC"),
		on(0, "GET", k("e")),
		on(0, "EXEC"),
		on(0, "MULTI"),
		on(0, "NOSUCHCMD", k("e")),
		on(0, "EXEC"),
		on(0, "MULTI"),
		on(0, "OBJECT", "NOSUCH", k("e")),
		on(0, "EXEC"),
		on(0, "MULTI"),
		on(0, "XINFO", "NOSUCH"),
		on(0, "CLIENT", "NOSUCH"),
		on(0, "EXEC"),
		// DISCARD with a wrong arity is refused, and the transaction
		// stays open, doomed.
		on(0, "MULTI"),
		on(0, "SET", k("e"), "3"),
		on(0, "DISCARD", "x"),
		on(0, "SET", k("e"), "4"),
		on(0, "EXEC"),
		on(0, "GET", k("e")),
		// Outside MULTI, errors change nothing.
		on(0, "MULTI", "x"),
		on(0, "EXEC"),
		on(0, "WATCH"),
		on(0, "UNWATCH", "x"),
		on(0, "UNWATCH"),
	}
}

// watchSteps: WATCH, UNWATCH, and what makes EXEC fail. Client 1 writes
// the keys client 0 watches.
func watchSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "SET", k("w"), "0"),
		on(0, "WATCH", k("w")),
		on(1, "SET", k("w"), "other"),
		on(0, "MULTI"),
		on(0, "SET", k("w"), "mine"),
		on(0, "EXEC"),
		on(0, "GET", k("w")),
		// A failed EXEC forgets the keys watched.
		on(0, "MULTI"),
		on(0, "SET", k("w"), "mine"),
		on(0, "EXEC"),
		// UNWATCH before the change: EXEC runs.
		on(0, "WATCH", k("w")),
		on(0, "UNWATCH"),
		on(1, "SET", k("w"), "again"),
		on(0, "MULTI"),
		on(0, "SET", k("w"), "mine2"),
		on(0, "EXEC"),
		on(0, "GET", k("w")),
		// A change by the watching client itself counts too.
		on(0, "WATCH", k("w")),
		on(0, "SET", k("w"), "self"),
		on(0, "MULTI"),
		on(0, "SET", k("w"), "mine3"),
		on(0, "EXEC"),
		on(0, "GET", k("w")),
		// Nothing changed: EXEC runs, an empty one included.
		on(0, "WATCH", k("w")),
		on(0, "GET", k("w")),
		on(0, "MULTI"),
		on(0, "EXEC"),
		on(0, "WATCH", k("w")),
		on(1, "SET", k("w"), "x"),
		on(0, "MULTI"),
		on(0, "EXEC"),
		// DISCARD forgets the keys watched.
		on(0, "WATCH", k("w")),
		on(0, "MULTI"),
		on(0, "DISCARD"),
		on(1, "SET", k("w"), "y"),
		on(0, "MULTI"),
		on(0, "INCR", k("cnt")),
		on(0, "EXEC"),
		// So does an EXECABORT.
		on(0, "WATCH", k("w")),
		on(0, "MULTI"),
		on(0, "GET"),
		on(0, "EXEC"),
		on(1, "SET", k("w"), "z"),
		on(0, "MULTI"),
		on(0, "INCR", k("cnt")),
		on(0, "EXEC"),
		// A key created, and the second of two watched keys.
		on(0, "WATCH", k("new")),
		on(1, "SET", k("new"), "1"),
		on(0, "MULTI"),
		on(0, "INCR", k("cnt")),
		on(0, "EXEC"),
		on(0, "WATCH", k("w"), k("w2")),
		on(0, "WATCH", k("w3")),
		on(1, "DEL", k("w3")),
		on(1, "SET", k("w2"), "v"),
		on(0, "MULTI"),
		on(0, "INCR", k("cnt")),
		on(0, "EXEC"),
		// A key of the same slot that is not watched changes nothing;
		// a watched key deleted when missing changes nothing either.
		on(0, "WATCH", k("w"), k("gone")),
		on(1, "SET", k("notwatched"), "v"),
		on(1, "DEL", k("gone")),
		on(0, "MULTI"),
		on(0, "INCR", k("cnt")),
		on(0, "EXEC"),
		on(0, "GET", k("cnt")),
		// The whole check-and-set in one write.
		pipeOn(0,
			cmdArgs("WATCH", k("w")),
			cmdArgs("GET", k("w")),
			cmdArgs("MULTI"),
			cmdArgs("SET", k("w"), "cas"),
			cmdArgs("EXEC"),
			cmdArgs("GET", k("w")),
		),
		pipeOn(0, cmdArgs("WATCH", k("w")), cmdArgs("SET", k("w"), "pipelined"), cmdArgs("MULTI"), cmdArgs("GET", k("w")), cmdArgs("EXEC")),
	}
}

// resetSteps: RESET ends a transaction and forgets the keys watched, as
// it does the protocol (RESP2 again) and the name.
func resetSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "SET", k("w"), "0"),
		on(0, "WATCH", k("w")),
		on(0, "MULTI"),
		on(0, "SET", k("w"), "a"),
		on(0, "RESET"),
		on(0, "EXEC"),
		on(1, "SET", k("w"), "b"),
		on(0, "MULTI"),
		on(0, "SET", k("w"), "c"),
		on(0, "EXEC"),
		on(0, "WATCH", k("w")),
		on(0, "RESET"),
		on(1, "SET", k("w"), "d"),
		on(0, "MULTI"),
		on(0, "GET", k("w")),
		on(0, "EXEC"),
	}
}

// interplaySteps: transactions with scripts, keyless commands, and
// blocking commands on WATCHed keys.
func interplaySteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "SET", k("a"), "v"),
		on(0, "SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"),
		on(0, "MULTI"),
		on(0, "EVALSHA", "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f", "1", k("a")),
		on(0, "EVAL", "return redis.call('INCR', KEYS[1])", "1", k("n")),
		on(0, "EXISTS", k("a")),
		on(0, "DEL", k("a")),
		on(0, "EXEC"),
		// No key at all: any master may run it.
		on(0, "MULTI"),
		on(0, "COMMAND", "COUNT"),
		on(0, "ECHO", "x"),
		on(0, "EXEC"),
		// A pop changes the key it pops from, for WATCH as for any write,
		// when it returns at once as when it was woken.
		on(0, "RPUSH", k("l"), "x"),
		on(0, "WATCH", k("l")),
		on(0, "BLPOP", k("l"), "0"),
		on(0, "MULTI"),
		on(0, "EXEC"),
		on(0, "WATCH", k("l2")),
		sendOn(0, cmdArgs("BLPOP", k("l2"), "0")),
		untilBlocked(1),
		on(1, "RPUSH", k("l2"), "y"),
		readOn(0, 1),
		on(0, "MULTI"),
		on(0, "EXEC"),
		// A blocking command pipelined after a transaction, and one
		// before it.
		sendOn(0,
			cmdArgs("MULTI"), cmdArgs("RPUSH", k("l3"), "a"), cmdArgs("EXEC"),
			cmdArgs("BLPOP", k("l4"), "0"),
			cmdArgs("MULTI"), cmdArgs("LPOP", k("l3")), cmdArgs("EXEC"),
		),
		readOnWithin(2*time.Second, 0, 3),
		untilBlocked(1),
		on(1, "RPUSH", k("l4"), "z"),
		readOn(0, 4),
	}
}

// blockingTimeoutSteps: every blocking command on empty keys, waiting out
// a short timeout for a null reply.
func blockingTimeoutSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		on(0, "BLPOP", k("e1"), k("e2"), "0.01"),
		on(0, "BRPOP", k("e1"), "0.01"),
		on(0, "BLMOVE", k("e1"), k("dst"), "LEFT", "RIGHT", "0.01"),
		on(0, "BRPOPLPUSH", k("e1"), k("dst"), "0.01"),
		on(0, "BLMPOP", "0.01", "2", k("e1"), k("e2"), "LEFT", "COUNT", "3"),
		on(0, "BZPOPMIN", k("z1"), "0.01"),
		on(0, "BZPOPMAX", k("z1"), k("z2"), "0.01"),
		on(0, "BZMPOP", "0.01", "1", k("z1"), "MIN"),
		on(0, "XREAD", "BLOCK", "10", "STREAMS", k("x"), "$"),
		on(0, "XREAD", "COUNT", "5", "BLOCK", "10", "STREAMS", k("x"), k("x2"), "0", "0"),
		on(0, "XGROUP", "CREATE", k("x"), "g", "$", "MKSTREAM"),
		on(0, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", k("x"), ">"),
		on(0, "XREAD", "BLOCK", "10", "STREAMS", k("x"), "$"),
		on(0, "EXISTS", k("dst"), k("e1")),
	}
}

// blockingWokenSteps: every blocking command waiting with no timeout,
// woken by client 1; two clients blocked on one key are served in turn.
func blockingWokenSteps(k func(string) string, _ int) []heldStep {
	woken := func(block []string, wake ...[]string) []heldStep {
		steps := []heldStep{sendOn(0, block), untilBlocked(1)}
		for _, w := range wake {
			steps = append(steps, on(1, w...))
		}
		return append(steps, readOn(0, 1))
	}
	var steps []heldStep
	for _, seq := range [][]heldStep{
		woken(cmdArgs("BLPOP", k("q1"), k("q2"), "0"), cmdArgs("RPUSH", k("q2"), "a", "b")),
		woken(cmdArgs("BRPOP", k("q3"), "0"), cmdArgs("LPUSH", k("q3"), "c", "d")),
		woken(cmdArgs("BLMOVE", k("q4"), k("dst"), "RIGHT", "LEFT", "0"), cmdArgs("RPUSH", k("q4"), "e")),
		woken(cmdArgs("BRPOPLPUSH", k("q5"), k("dst"), "0"), cmdArgs("RPUSH", k("q5"), "f")),
		woken(cmdArgs("BLMPOP", "0", "2", k("q6"), k("q7"), "RIGHT", "COUNT", "2"), cmdArgs("RPUSH", k("q7"), "g", "h", "i")),
		woken(cmdArgs("BZPOPMIN", k("z1"), "0"), cmdArgs("ZADD", k("z1"), "2", "m2", "1.5", "m1")),
		woken(cmdArgs("BZPOPMAX", k("z2"), "0"), cmdArgs("ZADD", k("z2"), "2", "m2", "1.5", "m1")),
		woken(cmdArgs("BZMPOP", "0", "1", k("z3"), "MAX", "COUNT", "5"), cmdArgs("ZADD", k("z3"), "1", "a", "2", "b")),
		woken(cmdArgs("XREAD", "BLOCK", "0", "STREAMS", k("x"), "$"), cmdArgs("XADD", k("x"), "5-1", "f", "v")),
		woken(cmdArgs("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", k("x"), k("x2"), "$", "$"),
			cmdArgs("XADD", k("x2"), "6-1", "f", "v", "g", "w")),
		{on(0, "XGROUP", "CREATE", k("x"), "g", "$")},
		woken(cmdArgs("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", k("x"), ">"), cmdArgs("XADD", k("x"), "7-1", "f", "v")),
		// Woken by a transaction: the pop sees the list as EXEC left it.
		woken(cmdArgs("BLPOP", k("q8"), "0"),
			cmdArgs("MULTI"), cmdArgs("RPUSH", k("q8"), "j"), cmdArgs("RPUSH", k("q8"), "k"), cmdArgs("LPOP", k("q8")), cmdArgs("EXEC")),
		// Pushed to a key of no interest first: still blocked.
		woken(cmdArgs("BLPOP", k("q9"), "0"), cmdArgs("RPUSH", k("other"), "x"), cmdArgs("RPUSH", k("q9"), "l")),
		{
			sendOn(0, cmdArgs("BLPOP", k("fifo"), "0")),
			untilBlocked(1),
			sendOn(2, cmdArgs("BLPOP", k("fifo"), "0")),
			untilBlocked(2),
			on(1, "RPUSH", k("fifo"), "first", "second"),
			readOn(0, 1),
			readOn(2, 1),
		},
		{
			on(0, "LRANGE", k("dst"), "0", "-1"),
			on(0, "XPENDING", k("x"), "g"),
		},
	} {
		steps = append(steps, seq...)
	}
	return steps
}

// blockingPipelineSteps: replies to commands written with a blocking one,
// before it and after it.
func blockingPipelineSteps(k func(string) string, _ int) []heldStep {
	return []heldStep{
		pipeOn(0, cmdArgs("BLPOP", k("e"), "0.01"), cmdArgs("SET", k("s"), "v"), cmdArgs("GET", k("s"))),
		pipeOn(0, cmdArgs("RPUSH", k("l"), "a"), cmdArgs("BLPOP", k("l"), "0"), cmdArgs("LLEN", k("l"))),
		// Replies to the commands before a blocking one are not held
		// back by it: they come while it is still blocked.
		sendOn(0,
			cmdArgs("SET", k("s2"), "v2"),
			cmdArgs("GET", k("s2")),
			cmdArgs("BLPOP", k("q"), "0"),
			cmdArgs("PING"),
			cmdArgs("GET", k("s2")),
		),
		readOnWithin(2*time.Second, 0, 2),
		untilBlocked(1),
		on(1, "RPUSH", k("q"), "x"),
		readOn(0, 3),
		// Two blocking commands in one write.
		sendOn(0, cmdArgs("BLPOP", k("q1"), "0"), cmdArgs("BRPOP", k("q2"), "0"), cmdArgs("ECHO", "done")),
		untilBlocked(1),
		on(1, "RPUSH", k("q2"), "second"),
		on(1, "RPUSH", k("q1"), "first"),
		readOn(0, 3),
	}
}

// pubSubSteps: Pub/Sub with the plain commands each protocol allows while
// subscribed. Client 1 publishes; channel names carry the sequence's tag.
func pubSubSteps(k func(string) string, proto int) []heldStep {
	c1, c2, c3 := k("c1"), k("c2"), k("c3")
	steps := []heldStep{
		onN(0, 2, "SUBSCRIBE", c1, c2),
		on(1, "PUBLISH", c1, "m1"),
		readOn(0, 1),
		on(1, "PUBLISH", c2, "m2"),
		on(1, "PUBLISH", c1, "m3"),
		on(1, "PUBLISH", c3, "nobody"),
		readOn(0, 2),
		on(0, "PSUBSCRIBE", k("p*")),
		on(1, "PUBLISH", k("pa"), "pm"),
		readOn(0, 1),
		// A channel a pattern matches too: the message comes twice.
		on(0, "PSUBSCRIBE", k("c*")),
		on(1, "PUBLISH", c1, "twice"),
		readOn(0, 2),
		on(0, "PUNSUBSCRIBE", k("c*")),
		on(0, "PING"),
		on(0, "PING", "hello"),
		// Refused in RESP2; in RESP3 answered among the pushes.
		on(0, "GET", k("s")),
		on(0, "SET", k("s"), "v"),
		on(0, "BLPOP", k("q"), "0.01"),
		on(0, "CLIENT", "GETNAME"),
	}
	if proto == 2 {
		// In RESP3 MULTI would open a transaction (PubSubWithCommands).
		steps = append(steps, on(0, "MULTI"), on(0, "CLIENT", "ID"))
	}
	steps = append(steps,
		pipeOn(0, cmdArgs("PING"), cmdArgs("GET", k("s")), cmdArgs("SUBSCRIBE", c3), cmdArgs("PING", "x")),
		on(1, "PUBLISH", c3, "m4"),
		readOn(0, 1),
		onN(0, 2, "UNSUBSCRIBE", c1, c3),
		on(1, "PUBLISH", c1, "unheard"),
		on(1, "PUBLISH", c2, "m5"),
		readOn(0, 1),
		// PUBLISH counts every client that receives the message, and a
		// client once per channel or pattern that matches.
		on(2, "SUBSCRIBE", c2),
		on(1, "PUBLISH", c2, "both"),
		readOn(0, 1),
		readOn(2, 1),
		on(2, "PSUBSCRIBE", k("c*")),
		on(1, "PUBLISH", c2, "thrice"),
		readOn(0, 1),
		readOn(2, 2),
		on(2, "UNSUBSCRIBE", c2),
		on(1, "PUBLISH", c2, "once more"),
		readOn(0, 1),
		readOn(2, 1),
		on(0, "UNSUBSCRIBE"),
		on(0, "PUNSUBSCRIBE"),
		// Out of subscribed mode.
		on(0, "GET", k("s")),
		on(1, "PUBLISH", c2, "unheard"),
		on(0, "PING"),
	)
	return steps
}

// pubSubCommandSteps: a RESP3 client subscribed and running commands,
// blocking ones among them, with messages coming between the replies.
// In RESP2 the same commands are refused in subscribed mode.
func pubSubCommandSteps(k func(string) string, proto int) []heldStep {
	ch := k("ch")
	steps := []heldStep{
		on(0, "SET", k("s"), "1"),
		pipeOn(0, cmdArgs("SUBSCRIBE", ch), cmdArgs("INCR", k("s")), cmdArgs("GET", k("s"))),
		on(1, "PUBLISH", ch, "m1"),
		readOn(0, 1),
		on(0, "HSET", k("h"), "f", "v"),
		on(0, "HGETALL", k("h")),
		on(0, "GET", k("nosuch")),
		on(0, "ECHO", "x"),
		on(1, "PUBLISH", ch, "m2"),
		readOn(0, 1),
		pipeOn(0, cmdArgs("RPUSH", k("l"), "a"), cmdArgs("BLPOP", k("l"), "0"), cmdArgs("LLEN", k("l"))),
	}
	if proto == 3 {
		steps = append(steps,
			// Blocked and subscribed: a message comes while the pop
			// waits.
			sendOn(0, cmdArgs("BLPOP", k("q"), "0")),
			untilBlocked(1),
			on(1, "PUBLISH", ch, "while blocked"),
			readOn(0, 1),
			on(1, "RPUSH", k("q"), "x"),
			readOn(0, 1),
			// A transaction of a subscribed client: messages come while
			// it is queued.
			on(0, "MULTI"),
			on(0, "SET", k("t"), "1"),
			on(1, "PUBLISH", ch, "while queued"),
			readOn(0, 1),
			on(0, "GET", k("t")),
			on(0, "EXEC"),
		)
	}
	return append(steps,
		on(0, "UNSUBSCRIBE", ch),
		on(0, "GET", k("s")),
	)
}

// heldSide is one side of the comparison: its clients, dialed as the
// sequence first uses them, and where to ask how many are blocked.
type heldSide struct {
	t       *testing.T
	name    string
	addr    string
	nodes   []string // the servers whose blocked_clients are summed
	proto   int
	clients map[int]*respConn
	control map[string]*respConn
}

func (s *heldSide) client(i int) *respConn {
	if c := s.clients[i]; c != nil {
		return c
	}
	c := dialRESP(s.t, s.addr)
	if s.proto == 3 {
		r := c.do("HELLO", "3")
		if !strings.HasPrefix(r, "%") {
			s.t.Fatalf("%s: HELLO 3: %s", s.name, short(r))
		}
	}
	s.clients[i] = c
	return c
}

// blocked returns how many clients the side's servers have blocked.
func (s *heldSide) blocked() int {
	n := 0
	for _, addr := range s.nodes {
		c := s.control[addr]
		if c == nil {
			c = dialRESP(s.t, addr)
			s.control[addr] = c
		}
		v, err := parseTree(c.do("INFO", "clients"))
		if err != nil {
			s.t.Fatalf("INFO clients on %s: %v", addr, err)
		}
		for _, line := range strings.Split(v.text, "\r\n") {
			if b, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
				m, err := strconv.Atoi(b)
				if err != nil {
					s.t.Fatalf("INFO clients on %s: %q", addr, line)
				}
				n += m
			}
		}
	}
	return n
}

// waitBlocked polls until n clients are blocked, or fails past the
// deadline.
func (s *heldSide) waitBlocked(n int) {
	clustertest.Eventually(s.t, heldReplyWait, func() error {
		if got := s.blocked(); got != n {
			return fmt.Errorf("%s: %d clients blocked, want %d", s.name, got, n)
		}
		return nil
	})
}

// runHeldSeq runs steps on both sides and reports every reply that
// differs; it returns how many commands it sent and replies it compared.
func runHeldSeq(t *testing.T, std, prx *heldSide, steps []heldStep) (sent, compared int) {
	t.Helper()
	var last []string // the commands the replies answer, for the report
	for i, st := range steps {
		if st.blocked > 0 {
			std.waitBlocked(st.blocked)
			prx.waitBlocked(st.blocked)
			continue
		}
		if len(st.cmds) > 0 {
			var req strings.Builder
			last = last[:0]
			for _, c := range st.cmds {
				req.WriteString(respCommand(c...))
				last = append(last, strings.Join(c, " "))
			}
			std.client(st.conn).write(req.String())
			prx.client(st.conn).write(req.String())
			sent += len(st.cmds)
		}
		within := st.within
		if within == 0 {
			within = heldReplyWait
		}
		for j := range st.read {
			want, err := std.client(st.conn).tryReply(within)
			if err != nil {
				t.Fatalf("step %d (client %d, after %q): reply %d from redis-server: %v", i, st.conn, last, j, err)
			}
			got, err := prx.client(st.conn).tryReply(within)
			if err != nil {
				t.Fatalf("step %d (client %d, after %q): reply %d from the proxy: %v\n\t   redis-server: %s",
					i, st.conn, last, j, err, short(want))
			}
			compared++
			if want != got {
				t.Errorf("step %d (client %d, after %q): reply %d differs\n\t   redis-server: %s\n\t   proxy:        %s",
					i, st.conn, last, j, short(want), short(got))
			}
		}
	}
	return sent, compared
}

func TestDifferentialHeld(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	redisAddr := clustertest.Standalone(t, "").Addr
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	masters, err := c.MasterAddrs(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	var seqs, sent, compared int
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			for _, seq := range heldSequences() {
				t.Run(seq.name, func(t *testing.T) {
					tag := fmt.Sprintf("r%d:%s", proto, seq.name)
					k := func(name string) string { return "{" + tag + "}" + name }
					std := &heldSide{t: t, name: "redis-server", addr: redisAddr, nodes: []string{redisAddr}, proto: proto,
						clients: map[int]*respConn{}, control: map[string]*respConn{}}
					prx := &heldSide{t: t, name: "proxy", addr: p.Addr, nodes: masters, proto: proto,
						clients: map[int]*respConn{}, control: map[string]*respConn{}}
					n, m := runHeldSeq(t, std, prx, seq.steps(k, proto))
					seqs, sent, compared = seqs+1, sent+n, compared+m
				})
			}
		})
	}
	t.Logf("%d sequences, %d commands, %d replies compared", seqs, sent, compared)

	t.Run("Refusals", func(t *testing.T) { testHeldRefusals(t, p) })
}

// testHeldRefusals pins the proxy's replies where a cluster cannot keep a
// single server's transaction: keys of two slots, and the commands the
// proxy answers itself, which no one master can run inside the
// transaction. Each refusal dooms the transaction, as any refusal of a
// queued command does on redis-server.
func testHeldRefusals(t *testing.T, p *testProxy) {
	const (
		ok       = "+OK\r\n"
		queued   = "+QUEUED\r\n"
		abort    = "-EXECABORT Transaction discarded because of previous errors.\r\n"
		crossErr = "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
	)
	inMulti := func(name string) string { return "-ERR slotproxy does not support '" + name + "' inside MULTI\r\n" }
	type exchange struct {
		args []string
		want string
	}
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			a := func(name string) string { return fmt.Sprintf("{r%da}%s", proto, name) }
			b := func(name string) string { return fmt.Sprintf("{r%db}%s", proto, name) }
			rc := dialRESP(t, p.Addr)
			if proto == 3 {
				if r := rc.do("HELLO", "3"); !strings.HasPrefix(r, "%") {
					t.Fatalf("HELLO 3: %s", short(r))
				}
			}
			nilBulk := "$-1\r\n"
			if proto == 3 {
				nilBulk = "_\r\n"
			}
			for i, x := range []exchange{
				{[]string{"SET", a("k"), "before"}, ok},
				{[]string{"MULTI"}, ok},
				{[]string{"SET", a("k"), "1"}, queued},
				{[]string{"SET", b("k"), "1"}, crossErr},
				{[]string{"SET", a("k"), "2"}, queued},
				{[]string{"EXEC"}, abort},
				{[]string{"GET", a("k")}, "$6\r\nbefore\r\n"},
				{[]string{"GET", b("k")}, nilBulk},
				// Split outside MULTI; inside, one slot or none.
				{[]string{"MULTI"}, ok},
				{[]string{"MSET", a("x"), "1", b("y"), "2"}, crossErr},
				{[]string{"EXEC"}, abort},
				{[]string{"MULTI"}, ok},
				{[]string{"KEYS", "*"}, inMulti("KEYS")},
				{[]string{"INFO"}, inMulti("INFO")},
				{[]string{"DBSIZE"}, inMulti("DBSIZE")},
				{[]string{"CLIENT", "SETNAME", "x"}, inMulti("CLIENT SETNAME")},
				{[]string{"FLUSHALL"}, inMulti("FLUSHALL")},
				{[]string{"WAIT", "0", "0"}, inMulti("WAIT")},
				{[]string{"SET", a("k"), "3"}, queued},
				{[]string{"EXEC"}, abort},
				{[]string{"GET", a("k")}, "$6\r\nbefore\r\n"},
				{[]string{"CLIENT", "GETNAME"}, nilBulk},
				// WATCH fixes the slot as the first key of MULTI does.
				{[]string{"WATCH", a("k"), b("k")}, crossErr},
				{[]string{"WATCH", a("k")}, ok},
				{[]string{"WATCH", b("k")}, crossErr},
				{[]string{"MULTI"}, ok},
				{[]string{"SET", b("k"), "4"}, crossErr},
				{[]string{"EXEC"}, abort},
				// The EXECABORT forgot the WATCH: another slot is fine now.
				{[]string{"MULTI"}, ok},
				{[]string{"SET", b("k"), "5"}, queued},
				{[]string{"EXEC"}, "*1\r\n+OK\r\n"},
				{[]string{"BLPOP", a("q"), b("q"), "0.01"}, crossErr},
			} {
				got, err := rc.roundTrip(heldReplyWait, respCommand(x.args...))
				if err != nil {
					t.Fatalf("#%d %s: no reply: %v", i, shortArgs(x.args), err)
				}
				if got != x.want {
					t.Errorf("#%d %s: %s, want %s", i, shortArgs(x.args), short(got), short(x.want))
				}
			}
		})
	}
}
