package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// newTestSlowLog is the log a Server makes of these Options fields.
func newTestSlowLog(threshold time.Duration, maxLen int, backendFields bool) *slowLog {
	o := Options{SlowlogThreshold: threshold, SlowlogMaxLen: maxLen, SlowlogBackendFields: backendFields}
	o.setDefaults()
	l := new(slowLog)
	l.init(o.SlowlogThreshold, o.SlowlogMaxLen, o.SlowlogBackendFields)
	return l
}

func words(s string) [][]byte {
	var args [][]byte
	for _, w := range strings.Fields(s) {
		args = append(args, []byte(w))
	}
	return args
}

func texts(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

// numbered is name followed by the numbers 1 to n, as arguments.
func numbered(n int, name ...string) [][]byte {
	args := words(strings.Join(name, " "))
	for i := 1; i <= n; i++ {
		args = append(args, []byte(strconv.Itoa(i)))
	}
	return args
}

func TestSlowlogThreshold(t *testing.T) {
	for _, tt := range []struct {
		name      string
		threshold time.Duration // Options.SlowlogThreshold
		set       *time.Duration
		took      time.Duration
		slow      bool
	}{
		{"default, under", 0, nil, 10*time.Millisecond - 1, false},
		{"default, at", 0, nil, 10 * time.Millisecond, true},
		{"option, under", 3 * time.Millisecond, nil, 2999 * time.Microsecond, false},
		{"option, over", 3 * time.Millisecond, nil, 4 * time.Millisecond, true},
		{"off", -1, nil, time.Hour, false},
		{"every request", time.Nanosecond, nil, time.Nanosecond, true},
		{"set to zero: every request", 0, ptr(time.Duration(0)), 0, true},
		{"set negative: none", 0, ptr(-time.Nanosecond), 1 << 62, false},
		{"set, under", -1, ptr(time.Second), time.Second - 1, false},
		{"set, at", -1, ptr(time.Second), time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestSlowLog(tt.threshold, 0, false)
			if tt.set != nil {
				l.setThreshold(*tt.set)
			}
			if got := l.slow(tt.took); got != tt.slow {
				t.Errorf("slow(%v) = %v, want %v", tt.took, got, tt.slow)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestSlowlogSlowCostsNothing: slow runs once per request.
func TestSlowlogSlowCostsNothing(t *testing.T) {
	l := newTestSlowLog(0, 0, false)
	took := time.Millisecond
	if n := testing.AllocsPerRun(1000, func() { l.slow(took) }); n != 0 {
		t.Errorf("slow allocates %v times per call", n)
	}
}

// TestSlowlogTruncation: redis-server's bounds and words (checked against
// a real one in TestSlowlogThroughProxy/EntriesLikeRedis).
func TestSlowlogTruncation(t *testing.T) {
	long := strings.Repeat("x", 200)
	withLong := numbered(38, "SADD", "s")
	withLong[5] = []byte(long)
	withLong[31] = []byte(long) // replaced by the count: not cut
	for _, tt := range []struct {
		name string
		args [][]byte
		want []string
	}{
		{"short", words("GET k"), []string{"GET", "k"}},
		{"32 arguments kept", numbered(31, "DEL"), texts(numbered(31, "DEL"))},
		{"33 arguments", numbered(32, "DEL"),
			append(texts(numbered(30, "DEL")), "... (2 more arguments)")},
		{"42 arguments", numbered(40, "SADD", "s"),
			append(texts(numbered(29, "SADD", "s")), "... (11 more arguments)")},
		{"128 bytes kept", [][]byte{[]byte("SET"), []byte("k"), []byte(long[:128])}, []string{"SET", "k", long[:128]}},
		{"129 bytes", [][]byte{[]byte("SET"), []byte("k"), []byte(long[:129])}, []string{"SET", "k", long[:128] + "... (1 more bytes)"}},
		{"200 bytes", [][]byte{[]byte("SET"), []byte("k"), []byte(long)}, []string{"SET", "k", long[:128] + "... (72 more bytes)"}},
		{"both", withLong, func() []string {
			w := texts(withLong[:31])
			w[5] = long[:128] + "... (72 more bytes)"
			return append(w, "... (9 more arguments)")
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := texts(keptArgs(tt.args)); !slices.Equal(got, tt.want) {
				t.Errorf("kept\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestSlowlogRedaction: no password or user name reaches the log. The
// cases redis-server redacts alike are checked against a real one in
// TestSlowlogThroughProxy/EntriesLikeRedis; these are the proxy's rules.
func TestSlowlogRedaction(t *testing.T) {
	for _, tt := range []struct{ args, want string }{
		{"AUTH pw", "AUTH (redacted)"},
		{"auth user pw", "auth (redacted) (redacted)"},
		// redis-server logs these as sent, its syntax error coming first.
		{"AUTH a b c", "AUTH (redacted) (redacted) (redacted)"},
		{"HELLO 3 AUTH user pw SETNAME n", "HELLO 3 AUTH (redacted) (redacted) SETNAME n"},
		{"HELLO 3 SETNAME auth AUTH auth pw", "HELLO 3 SETNAME auth AUTH (redacted) (redacted)"},
		{"HELLO AUTH user pw", "HELLO AUTH (redacted) (redacted)"},
		{"HELLO x AUTH user pw", "HELLO x AUTH (redacted) (redacted)"},
		{"HELLO 3 AUTH user", "HELLO 3 AUTH user"}, // redis-server takes no AUTH without a password: no secret to hide
		{"MIGRATE h 1 k 0 10 COPY REPLACE AUTH pw", "MIGRATE h 1 k 0 10 COPY REPLACE AUTH (redacted)"},
		{"MIGRATE h 1 k 0 10 AUTH2 user pw", "MIGRATE h 1 k 0 10 AUTH2 (redacted) (redacted)"},
		{"MIGRATE h 1 k 0 10 bad AUTH pw", "MIGRATE h 1 k 0 10 bad AUTH (redacted)"},
		{"MIGRATE h 1 \"\" 0 10 KEYS auth a", "MIGRATE h 1 \"\" 0 10 KEYS auth a"}, // keys, not options
		{"CONFIG SET maxmemory 1 requirepass pw MASTERAUTH pw masteruser u", "CONFIG SET maxmemory 1 requirepass (redacted) MASTERAUTH (redacted) masteruser (redacted)"},
		{"CONFIG SET tls-key-file-pass pw tls-client-key-file-pass pw", "CONFIG SET tls-key-file-pass (redacted) tls-client-key-file-pass (redacted)"},
		{"CONFIG SET requirepass", "CONFIG SET requirepass"},
		{"CONFIG GET requirepass", "CONFIG GET requirepass"},
		{"ACL SETUSER bob on >pw", "ACL SETUSER (redacted) (redacted) (redacted)"},
		{"ACL GETUSER bob", "ACL GETUSER bob"},
		{"SET auth pw", "SET auth pw"},
	} {
		if got := strings.Join(texts(keptArgs(words(tt.args))), " "); got != tt.want {
			t.Errorf("%s: kept %q, want %q", tt.args, got, tt.want)
		}
	}
	// Past the arguments an entry keeps, nothing needs hiding, and the
	// count takes the 32nd place even from a password.
	args := append(words("ACL SETUSER bob"), numbered(40)...)
	kept := texts(keptArgs(args))
	if want := "... (12 more arguments)"; len(kept) != 32 || kept[31] != want || kept[30] != redacted {
		t.Errorf("ACL SETUSER with 43 arguments: kept %q", kept)
	}
}

// TestSlowlogKeepsCopies: the arguments are slices of the session's read
// buffer, reused once the request is answered.
func TestSlowlogKeepsCopies(t *testing.T) {
	l := newTestSlowLog(0, 0, false)
	args := words("SET key value")
	l.record(args, time.Second, 0, "", nil)
	for _, a := range args {
		for i := range a {
			a[i] = '!'
		}
	}
	v := getEntries(t, l, -1)
	if got := texts(v[0].args); !slices.Equal(got, []string{"SET", "key", "value"}) {
		t.Errorf("the entry changed with the buffer: %q", got)
	}
}

// testEntry is one entry of SLOWLOG GET, decoded.
type testEntry struct {
	id, unix, micros int64
	args             [][]byte
	addr, name       string
	extra            []replyTree
}

func getEntries(t *testing.T, l *slowLog, count int) []testEntry {
	t.Helper()
	v, err := parseTree(string(l.appendGet(nil, count)))
	if err != nil || v.kind != '*' {
		t.Fatalf("SLOWLOG GET %d: %v %+v", count, err, v)
	}
	var out []testEntry
	for _, e := range v.elems {
		out = append(out, decodeEntry(t, e))
	}
	return out
}

func decodeEntry(t *testing.T, e replyTree) testEntry {
	t.Helper()
	if e.kind != '*' || len(e.elems) < 6 {
		t.Fatalf("entry %s: not an array of 6 or more", e.encode())
	}
	num := func(v replyTree) int64 {
		n, err := strconv.ParseInt(v.text, 10, 64)
		if v.kind != ':' || err != nil {
			t.Fatalf("entry %s: %s is not an integer", e.encode(), v.encode())
		}
		return n
	}
	out := testEntry{id: num(e.elems[0]), unix: num(e.elems[1]), micros: num(e.elems[2]),
		addr: e.elems[4].text, name: e.elems[5].text, extra: e.elems[6:]}
	for _, a := range e.elems[3].elems {
		out.args = append(out.args, []byte(a.text))
	}
	return out
}

func TestSlowlogRing(t *testing.T) {
	l := newTestSlowLog(0, 3, false)
	for i := range 5 {
		l.record(words("GET k"+strconv.Itoa(i)), time.Duration(i+1)*time.Millisecond, 0, "", nil)
	}
	if n := l.len(); n != 3 {
		t.Fatalf("LEN = %d after 5 entries in a log of 3", n)
	}
	ids := func(count int) (got []int64) {
		for _, e := range getEntries(t, l, count) {
			got = append(got, e.id)
		}
		return got
	}
	for _, tt := range []struct {
		count int
		want  []int64
	}{
		{-1, []int64{4, 3, 2}},
		{10, []int64{4, 3, 2}},
		{2, []int64{4, 3}},
		{0, nil},
	} {
		if got := ids(tt.count); !slices.Equal(got, tt.want) {
			t.Errorf("GET %d: ids %v, want %v (newest first)", tt.count, got, tt.want)
		}
	}
	e := getEntries(t, l, 1)[0]
	if e.micros != 5000 || string(e.args[1]) != "k4" {
		t.Errorf("newest entry: %d µs, %q; want 5000 µs, k4", e.micros, e.args)
	}
	l.reset()
	if n := l.len(); n != 0 || len(getEntries(t, l, -1)) != 0 {
		t.Fatalf("LEN = %d after RESET", n)
	}
	// Ids go on from where they were, as in redis-server, so that a
	// reader that remembers the last one it saw is not fooled.
	l.record(words("GET again"), time.Second, 0, "", nil)
	if got := ids(-1); !slices.Equal(got, []int64{5}) {
		t.Errorf("after RESET: ids %v, want [5]", got)
	}
}

func TestSlowlogBackendFields(t *testing.T) {
	for _, backend := range []bool{false, true} {
		l := newTestSlowLog(0, 0, backend)
		before := time.Now().Unix()
		l.record(numbered(40, "SADD", "s"), 1500*time.Microsecond, 1200*time.Microsecond, "10.0.0.1:7000", nil)
		l.record(words("PING"), 2*time.Second, 0, "", nil)
		after := time.Now().Unix()
		v := getEntries(t, l, -1)
		if len(v) != 2 {
			t.Fatalf("%d entries", len(v))
		}
		old := v[1]
		if old.unix < before || old.unix > after || old.micros != 1500 {
			t.Errorf("entry at %d taking %d µs; want in [%d, %d], 1500 µs", old.unix, old.micros, before, after)
		}
		if !backend {
			if len(old.extra) != 0 {
				t.Errorf("without backend fields: %d extra fields", len(old.extra))
			}
			continue
		}
		want := []replyTree{{kind: ':', text: "42"}, {kind: '$', text: "10.0.0.1:7000"}, {kind: ':', text: "1200"}}
		if !slices.EqualFunc(old.extra, want, func(a, b replyTree) bool { return a.encode() == b.encode() }) {
			t.Errorf("backend fields %+v, want %+v", old.extra, want)
		}
		want = []replyTree{{kind: ':', text: "1"}, {kind: '$', text: ""}, {kind: ':', text: "0"}}
		if !slices.EqualFunc(v[0].extra, want, func(a, b replyTree) bool { return a.encode() == b.encode() }) {
			t.Errorf("a request the proxy answered alone: backend fields %+v, want %+v", v[0].extra, want)
		}
	}
}

// TestSlowlogThroughProxy checks the SLOWLOG command through a real proxy:
// its replies and errors against a standalone redis-server's, entries
// against the ones redis-server makes of the same commands, and that
// client libraries read the entries.
func TestSlowlogThroughProxy(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 2})
	stdAddr := clustertest.Standalone(t, "").Addr
	// Both logs are off but for the entries a test makes on purpose, so
	// that nothing slow on a busy machine lands in them unasked.
	p := startProxy(t, c, Options{SlowlogThreshold: -1}, router.Options{})
	ctl := dialRESP(t, stdAddr)
	if r := ctl.do("CONFIG", "SET", "slowlog-log-slower-than", "-1"); r != "+OK\r\n" {
		t.Fatalf("CONFIG SET slowlog-log-slower-than -1: %q", r)
	}

	t.Run("Differential", func(t *testing.T) {
		testSlowlogDifferential(t, stdAddr, p.Addr)
	})
	t.Run("EntriesLikeRedis", func(t *testing.T) {
		testSlowlogEntriesLikeRedis(t, ctl, stdAddr, p)
	})
	t.Run("Clients", func(t *testing.T) {
		pb := startProxy(t, c, Options{SlowlogThreshold: -1, SlowlogBackendFields: true}, router.Options{})
		for _, tp := range []*testProxy{p, pb} {
			name := "SixFields"
			if tp == pb {
				name = "BackendFields"
			}
			t.Run(name, func(t *testing.T) { testSlowlogClients(t, tp, tp == pb) })
		}
	})
}

func testSlowlogDifferential(t *testing.T, stdAddr, prxAddr string) {
	seq := [][]string{
		{"SLOWLOG", "RESET"},
		{"SLOWLOG", "LEN"},
		{"SLOWLOG", "GET"},
		{"SLOWLOG", "GET", "0"},
		{"SLOWLOG", "GET", "-1"},
		{"SLOWLOG", "GET", "5"},
		{"SLOWLOG", "GET", "9223372036854775807"},
		{"slowlog", "get", "2"},
		{"SLOWLOG", "HELP"},
		{"slowlog", "help"},
		{"SLOWLOG", "GET", "-2"},
		{"SLOWLOG", "GET", "abc"},
		{"SLOWLOG", "GET", "1.5"},
		{"SLOWLOG", "GET", "007"},
		{"SLOWLOG", "GET", "+5"},
		{"SLOWLOG", "GET", ""},
		{"SLOWLOG", "GET", "9223372036854775808"},
		{"SLOWLOG", "GET", "1", "2"},
		{"SLOWLOG", "Get", "1", "2", "3"},
		{"SLOWLOG", "LEN", "x"},
		{"SLOWLOG", "RESET", "x"},
		{"SLOWLOG", "HELP", "x"},
		{"SLOWLOG"},
		{"SLOWLOG", "FOO"},
		{"slowlog", "foo", "bar"},
		{"SLOWLOG", "new\nline"},
		{"SLOWLOG", strings.Repeat("s", 200)},
	}
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			std, prx, ok := dialPair(t, stdAddr, prxAddr, proto)
			if !ok {
				return
			}
			for _, args := range seq {
				want := std.do(args...)
				got, err := prx.roundTrip(5*time.Second, respCommand(args...))
				if err != nil {
					t.Fatalf("%s: no reply from the proxy: %v", shortArgs(args), err)
				}
				if d := diffReplies(diffCmd{args: args}, want, got); d != "" {
					t.Errorf("differs: %s", d)
				}
			}
		})
	}
}

// testSlowlogEntriesLikeRedis runs commands on redis-server with its log
// keeping everything, and records the same arguments in the proxy's log
// for a client of the proxy with the same name: the entries must keep the
// same arguments, and name each its client alike.
func testSlowlogEntriesLikeRedis(t *testing.T, ctl *respConn, stdAddr string, p *testProxy) {
	long := strings.Repeat("v", 200)
	cmds := [][]string{
		{"SET", "slow:k", long},
		{"SET", "slow:k", long[:128]},
		{"SET", "slow:k", long[:129]},
		texts(numbered(40, "SADD", "slow:s")),
		texts(numbered(31, "RPUSH", "slow:l")),
		texts(numbered(30, "RPUSH", "slow:l")),
		{"AUTH", "secret"},
		{"AUTH", "someone", "secret"},
		{"HELLO", "2", "AUTH", "default", "secret", "SETNAME", "slowclient"},
		{"HELLO", "2", "AUTH", "default", "secret", "bad"},
		{"MIGRATE", "127.0.0.1", "1", "slow:none", "0", "10", "AUTH", "secret"},
		{"MIGRATE", "127.0.0.1", "1", "slow:none", "0", "10", "COPY", "AUTH2", "someone", "secret"},
		{"MIGRATE", "127.0.0.1", "1", "", "0", "10", "KEYS", "auth2", "a", "b"},
		{"CONFIG", "SET", "masteruser", "someone", "MASTERAUTH", "secret"},
		{"CONFIG", "SET", "requirepass", "", "maxmemory", "0"},
		{"ACL", "SETUSER", "slowuser", "on", ">secret"},
	}
	cl := dialRESP(t, stdAddr)
	pc := dialRESP(t, p.Addr)
	for _, r := range []*respConn{cl, pc} {
		if got := r.do("CLIENT", "SETNAME", "slowclient"); got != "+OK\r\n" {
			t.Fatalf("CLIENT SETNAME: %q", got)
		}
	}
	sess := sessionOf(t, p, pc)
	get := dialRESP(t, p.Addr)
	if r := ctl.do("CONFIG", "SET", "slowlog-log-slower-than", "0"); r != "+OK\r\n" {
		t.Fatalf("CONFIG SET slowlog-log-slower-than 0: %q", r)
	}
	defer ctl.do("CONFIG", "SET", "slowlog-log-slower-than", "-1")
	for _, args := range cmds {
		ctl.do("SLOWLOG", "RESET")
		cl.do(args...)
		want := lastEntry(t, ctl.do("SLOWLOG", "GET", "1"))

		raw := make([][]byte, len(args))
		for i, a := range args {
			raw[i] = []byte(a)
		}
		p.Server.slowlog.record(raw, 20*time.Millisecond, 0, "", sess)
		got := lastEntry(t, get.do("SLOWLOG", "GET", "1"))

		name := shortArgs(args)
		if !slices.EqualFunc(got.args, want.args, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("%s: the proxy kept\n%q\nredis-server\n%q", name, got.args, want.args)
		}
		if want.addr != cl.nc.LocalAddr().String() || got.addr != pc.nc.LocalAddr().String() {
			t.Errorf("%s: client address %q (redis-server: %q), want each the client's own: %s (%s)",
				name, got.addr, want.addr, pc.nc.LocalAddr(), cl.nc.LocalAddr())
		}
		if got.name != "slowclient" || want.name != "slowclient" {
			t.Errorf("%s: client name %q (redis-server: %q), want slowclient", name, got.name, want.name)
		}
		if len(got.extra) != 0 {
			t.Errorf("%s: %d fields past redis-server 7's six", name, len(got.extra))
		}
	}
}

func lastEntry(t *testing.T, reply string) testEntry {
	t.Helper()
	v, err := parseTree(reply)
	if err != nil || v.kind != '*' || len(v.elems) != 1 {
		t.Fatalf("SLOWLOG GET 1: %q (%v)", reply, err)
	}
	return decodeEntry(t, v.elems[0])
}

// testSlowlogClients: go-redis, in both protocols, and redis-py read the
// proxy's entries, and the connection stays in step for the next command.
func testSlowlogClients(t *testing.T, p *testProxy, backendFields bool) {
	named := dialRESP(t, p.Addr)
	named.do("CLIENT", "SETNAME", "app1")
	sess := sessionOf(t, p, named)
	l := &p.Server.slowlog
	l.reset()
	l.record(words("GET user:1"), 12*time.Millisecond, 11*time.Millisecond, "127.0.0.1:7000", sess)
	l.record(numbered(40, "SADD", "s"), 30*time.Millisecond, 29*time.Millisecond, "127.0.0.1:7001", sess)
	newest := texts(keptArgs(numbered(40, "SADD", "s")))
	ids := getEntries(t, l, -1) // ids go on across RESET: take them from the log

	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("go-redis-resp%d", proto), func(t *testing.T) {
			// One connection, so that the next command reads after the
			// entries on the same one.
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: proto, PoolSize: 1, MaxRetries: -1})
			defer rdb.Close()
			ctx := t.Context()
			logs, err := rdb.SlowLogGet(ctx, -1).Result()
			if err != nil {
				t.Fatalf("SlowLogGet: %v", err)
			}
			if len(logs) != 2 {
				t.Fatalf("SlowLogGet: %d entries, want 2", len(logs))
			}
			e := logs[0]
			if e.ID != ids[0].id || e.Duration != 30*time.Millisecond || !slices.Equal(e.Args, newest) ||
				e.ClientAddr != named.nc.LocalAddr().String() || e.ClientName != "app1" {
				t.Errorf("newest entry: %+v", e)
			}
			wantArgc := int64(0)
			if backendFields {
				wantArgc = 42
			}
			if e.CommandArgc != wantArgc {
				t.Errorf("CommandArgc = %d, want %d", e.CommandArgc, wantArgc)
			}
			if logs[1].ID != ids[1].id || !slices.Equal(logs[1].Args, []string{"GET", "user:1"}) {
				t.Errorf("oldest entry: %+v", logs[1])
			}
			if got, err := rdb.Echo(ctx, "in step").Result(); err != nil || got != "in step" {
				t.Errorf("ECHO after SLOWLOG GET: %q, %v", got, err)
			}
			if !backendFields {
				return
			}
			raw, err := rdb.Do(ctx, "SLOWLOG", "GET", "1").Slice()
			if err != nil || len(raw) != 1 {
				t.Fatalf("SLOWLOG GET 1: %v, %v", raw, err)
			}
			fields, _ := raw[0].([]any)
			if len(fields) != 9 || fields[7] != "127.0.0.1:7001" || fields[8] != int64(29000) {
				t.Errorf("SLOWLOG GET 1: %#v; want 9 fields, the node and 29000 µs last", fields)
			}
		})
	}

	t.Run("redis-py", func(t *testing.T) {
		script := `
import json, sys, redis
host, port = sys.argv[1].rsplit(":", 1)
r = redis.Redis(host=host, port=int(port), decode_responses=True)
logs = r.slowlog_get(-1)
# With decode_responses, redis-py 4 still reads SLOWLOG GET as bytes.
print(json.dumps({"logs": logs, "len": r.slowlog_len(), "echo": r.echo("in step")}, default=bytes.decode))
`
		out, err := exec.Command(redisPython, "-c", script, p.Addr).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s\n%s", redisPython, err, out, installHint)
		}
		var got struct {
			Logs []struct {
				ID       int64  `json:"id"`
				Start    int64  `json:"start_time"`
				Duration int64  `json:"duration"`
				Command  string `json:"command"`
			} `json:"logs"`
			Len  int64  `json:"len"`
			Echo string `json:"echo"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("redis-py printed %s: %v", out, err)
		}
		if len(got.Logs) != 2 || got.Len != 2 || got.Echo != "in step" {
			t.Fatalf("redis-py read %s", out)
		}
		if e := got.Logs[0]; e.ID != ids[0].id || e.Duration != 30000 || e.Command != strings.Join(newest, " ") || e.Start < time.Now().Unix()-60 {
			t.Errorf("redis-py: newest entry %+v", e)
		}
	})
}

// TestSlowlogRecordsSlowRequests: a request that takes longer than the
// threshold through a real proxy is in SLOWLOG GET, with its arguments,
// its client, the master that served it and that master's share of the
// time; a fast one is not. With the proxy keeping no stats, too.
func TestSlowlogRecordsSlowRequests(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	for _, noStats := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoStats=%v", noStats), func(t *testing.T) {
			p := startProxy(t, c, Options{
				SlowlogThreshold: 20 * time.Millisecond, SlowlogBackendFields: true, NoStats: noStats,
			}, router.Options{})
			ctx := context.Background()
			cl := p.client(t, "")
			if err := cl.Do(ctx, "CLIENT", "SETNAME", "slowpoke").Err(); err != nil {
				t.Fatal(err)
			}
			if err := cl.Set(ctx, "slow:fast", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// A busy script: the master takes tens of milliseconds.
			const busy = "local i = 0 while i < 3000000 do i = i + 1 end return i"
			if err := cl.Eval(ctx, busy, []string{"slow:key"}).Err(); err != nil {
				t.Fatal(err)
			}
			master := p.Slots.Table().Master(slotmap.Slot([]byte("slow:key")))

			got, err := cl.Do(ctx, "SLOWLOG", "GET").Slice()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("SLOWLOG GET: %d entries, want the script only: %v", len(got), got)
			}
			e := got[0].([]any)
			took, _ := e[2].(int64)
			args := fmt.Sprint(e[3])
			node, _ := e[7].(string)
			wait, _ := e[8].(int64)
			if took < 20000 || args != "[eval "+busy+" 1 slow:key]" || e[5] != "slowpoke" {
				t.Errorf("entry %v: took %dµs, args %s, name %v", e, took, args, e[5])
			}
			if node != master || wait <= 0 || wait > took {
				t.Errorf("entry %v: node %q (want %s), backend wait %dµs of %dµs", e, node, master, wait, took)
			}
		})
	}
}
