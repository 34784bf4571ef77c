package proxy

// Integration tests of the connection commands the proxy answers itself:
// CLIENT (the proxy's clients are the ones it speaks of), HELLO and RESP3,
// CLIENT REPLY. Where a plain redis-server 7.0 has the command, the
// proxy's bytes are compared with its own; where only 7.2 has it (CLIENT
// SETINFO, NO-TOUCH), with what 7.2 documents.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// TestProxyClientCommands shares one cluster between its subtests. Its
// proxy parks a client after 100ms idle, so that most commands find their
// session parked, as a real proxy's mostly idle clients are.
func TestProxyClientCommands(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{IdleParkAfter: 100 * time.Millisecond}, router.Options{})
	ref := clustertest.Standalone(t, "")

	t.Run("SetInfo", func(t *testing.T) { testClientSetInfo(t, p) })
	t.Run("InfoAndList", func(t *testing.T) { testClientInfoAndList(t, p, ref.Addr) })
	t.Run("Kill", func(t *testing.T) { testClientKill(t, c) })
	t.Run("KillParked", func(t *testing.T) { testClientKillParked(t, c) })
	t.Run("Reply", func(t *testing.T) { testClientReply(t, p, ref.Addr) })
	t.Run("Flags", func(t *testing.T) { testClientFlags(t, p, ref.Addr) })
	t.Run("Names", func(t *testing.T) { testClientNames(t, p, ref.Addr) })
	t.Run("Hello3", func(t *testing.T) { testHello3(t, c, p, ref.Addr) })
	t.Run("HelloAuth", func(t *testing.T) { testHelloAuth(t, c) })
}

// sameReplies sends each command to the proxy and to the reference
// redis-server, on rc and ref, and fails t where the replies differ.
func sameReplies(t *testing.T, rc, ref *respConn, cmds ...[]string) {
	t.Helper()
	for _, args := range cmds {
		want := ref.do(args...)
		if got := rc.do(args...); got != want {
			t.Errorf("%q: the proxy answers %q, redis-server %q", args, got, want)
		}
	}
}

// textReply returns the text of a bulk (RESP2) or verbatim (RESP3, "txt")
// reply.
func textReply(t *testing.T, r string) string {
	t.Helper()
	head, rest, ok := strings.Cut(r, "\r\n")
	if !ok || len(head) < 2 || (head[0] != '$' && head[0] != '=') {
		t.Fatalf("not a text reply: %q", r)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || len(rest) != n+2 {
		t.Fatalf("malformed text reply: %q", r)
	}
	text := rest[:n]
	if head[0] == '=' {
		if !strings.HasPrefix(text, "txt:") {
			t.Fatalf("verbatim reply not of format txt: %q", r)
		}
		text = text[4:]
	}
	return text
}

// clientLines parses CLIENT LIST (or CLIENT INFO) text into one map of
// fields per line, in order.
func clientLines(t *testing.T, text string) []map[string]string {
	t.Helper()
	if text == "" {
		return nil
	}
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("client list not ending in a newline: %q", text)
	}
	var lines []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fields := make(map[string]string)
		for _, kv := range strings.Split(line, " ") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("client list field %q in %q", kv, line)
			}
			fields[k] = v
		}
		lines = append(lines, fields)
	}
	return lines
}

// ---------------------------------------------------------------------------

func testClientSetInfo(t *testing.T, p *testProxy) {
	rc := dialRESP(t, p.Addr)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "SETINFO", "lib-name", "mylib"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-VER", "1.2.3"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name", "my lib"}, "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name", "my\nlib"}, "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "1 2"}, "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "x", "y"}, "-ERR Unrecognized option 'x'\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name"}, "-ERR wrong number of arguments for 'client|setinfo' command\r\n"},
	} {
		if got := rc.do(c.args...); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	info := clientLines(t, textReply(t, rc.do("CLIENT", "INFO")))
	if len(info) != 1 || info[0]["lib-name"] != "mylib" || info[0]["lib-ver"] != "1.2.3" {
		t.Errorf("CLIENT INFO after SETINFO (the refused values must not stick): %v", info)
	}
	if got := rc.do("CLIENT", "SETINFO", "lib-name", ""); got != "+OK\r\n" {
		t.Errorf("CLIENT SETINFO lib-name \"\": %q", got)
	}
	if info := clientLines(t, textReply(t, rc.do("CLIENT", "INFO"))); info[0]["lib-name"] != "" {
		t.Errorf("CLIENT INFO after an empty lib-name: lib-name=%q", info[0]["lib-name"])
	}
}

// ---------------------------------------------------------------------------

func testClientInfoAndList(t *testing.T, p *testProxy, refAddr string) {
	type client struct {
		rc             *respConn
		id             int64
		name, lib, ver string
		resp           string
	}
	a := &client{rc: dialRESP(t, p.Addr), name: "conn-a", lib: "liba", ver: "1.0", resp: "2"}
	b := &client{rc: dialRESP(t, p.Addr), name: "conn-b", resp: "3"}
	c := &client{rc: dialRESP(t, p.Addr), resp: "2"}
	for _, cl := range []*client{a, b, c} {
		cl.id = clientID(t, cl.rc)
	}
	if r := a.rc.do("CLIENT", "SETNAME", a.name); r != "+OK\r\n" {
		t.Fatalf("CLIENT SETNAME: %q", r)
	}
	a.rc.do("CLIENT", "SETINFO", "lib-name", a.lib)
	a.rc.do("CLIENT", "SETINFO", "lib-ver", a.ver)
	if r := b.rc.do("HELLO", "3", "SETNAME", b.name); !strings.HasPrefix(r, "%7\r\n") {
		t.Fatalf("HELLO 3 SETNAME: %q", r)
	}
	c.rc.do("CONFIG", "GET", "maxmemory")

	check := func(what string, line map[string]string, cl *client) {
		t.Helper()
		want := map[string]string{
			"id":       strconv.FormatInt(cl.id, 10),
			"addr":     cl.rc.nc.LocalAddr().String(),
			"laddr":    p.Addr,
			"name":     cl.name,
			"resp":     cl.resp,
			"lib-name": cl.lib,
			"lib-ver":  cl.ver,
			"db":       "0",
			"user":     "default",
			"flags":    "N",
		}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%s: %s=%q, want %q (line %v)", what, k, line[k], v, line)
			}
		}
	}
	for _, cl := range []*client{a, b, c} {
		r := cl.rc.do("CLIENT", "INFO")
		if cl.resp == "3" && !strings.HasPrefix(r, "=") {
			t.Errorf("CLIENT INFO in RESP3: %q, want a verbatim string", r)
		}
		lines := clientLines(t, textReply(t, r))
		if len(lines) != 1 {
			t.Fatalf("CLIENT INFO: %d lines", len(lines))
		}
		check("CLIENT INFO of "+lines[0]["id"], lines[0], cl)
		if lines[0]["cmd"] != "client|info" {
			t.Errorf("CLIENT INFO: cmd=%q, want client|info", lines[0]["cmd"])
		}
	}

	byID := func(lines []map[string]string) map[string]map[string]string {
		m := make(map[string]map[string]string)
		for _, l := range lines {
			m[l["id"]] = l
		}
		return m
	}
	all := byID(clientLines(t, textReply(t, c.rc.do("CLIENT", "LIST"))))
	for _, cl := range []*client{a, b, c} {
		line, ok := all[strconv.FormatInt(cl.id, 10)]
		if !ok {
			t.Errorf("CLIENT LIST lacks client %d", cl.id)
			continue
		}
		check(fmt.Sprintf("CLIENT LIST, client %d", cl.id), line, cl)
	}
	if line := all[strconv.FormatInt(c.id, 10)]; line["cmd"] != "client|list" {
		t.Errorf("CLIENT LIST: the client listing shows cmd=%q, want client|list", line["cmd"])
	}

	// What a client ran last, as redis-server names it: seen from another
	// connection, on the proxy and on the reference server.
	lastCmd := func(addr string, args []string) string {
		t.Helper()
		runner, lister := dialRESP(t, addr), dialRESP(t, addr)
		id := strconv.FormatInt(clientID(t, runner), 10)
		runner.do(args...)
		lines := clientLines(t, textReply(t, lister.do("CLIENT", "LIST", "ID", id)))
		if len(lines) != 1 {
			t.Fatalf("CLIENT LIST ID %s on %s: %v", id, addr, lines)
		}
		return lines[0]["cmd"]
	}
	for _, args := range [][]string{
		{"CONFIG", "GET", "maxmemory"},
		{"CLIENT", "SETNAME", "last-cmd"},
		{"CLIENT", "GETNAME"},
		{"GET", "last-cmd"},
		{"PING"},
		{"DBSIZE"},
	} {
		want := lastCmd(refAddr, args)
		if got := lastCmd(p.Addr, args); got != want {
			t.Errorf("CLIENT LIST of a client that ran %q last: cmd=%s, redis-server says cmd=%s", args, got, want)
		}
	}
	ref := dialRESP(t, refAddr)

	ids := func(args ...string) []string {
		t.Helper()
		var got []string
		for _, l := range clientLines(t, textReply(t, a.rc.do(args...))) {
			got = append(got, l["id"])
		}
		return got
	}
	ida, idc := strconv.FormatInt(a.id, 10), strconv.FormatInt(c.id, 10)
	if got := ids("CLIENT", "LIST", "ID", idc, ida); fmt.Sprint(got) != fmt.Sprint([]string{ida, idc}) {
		t.Errorf("CLIENT LIST ID %s %s: ids %v, want %v", idc, ida, got, []string{ida, idc})
	}
	if got := ids("CLIENT", "LIST", "ID", "999999"); len(got) != 0 {
		t.Errorf("CLIENT LIST ID of nobody: %v", got)
	}
	if got := ids("CLIENT", "LIST", "TYPE", "normal"); len(got) < 3 {
		t.Errorf("CLIENT LIST TYPE normal: ids %v, want at least a, b and c", got)
	}
	for _, typ := range []string{"pubsub", "master", "replica"} {
		if got := ids("CLIENT", "LIST", "TYPE", typ); len(got) != 0 {
			t.Errorf("CLIENT LIST TYPE %s: ids %v, want none", typ, got)
		}
	}
	sameReplies(t, a.rc, ref,
		[]string{"CLIENT", "LIST", "TYPE", "bad"},
		[]string{"CLIENT", "LIST", "ID", "abc"},
		[]string{"CLIENT", "LIST", "ID", "0"},
		[]string{"CLIENT", "LIST", "FOO"},
		[]string{"CLIENT", "LIST", "FOO", "bar"},
	)
}

// ---------------------------------------------------------------------------

// waitClients waits until p has n clients.
func waitClients(t *testing.T, p *testProxy, n int) {
	t.Helper()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := p.Server.Clients(); got != n {
			return fmt.Errorf("the proxy has %d clients, want %d", got, n)
		}
		return nil
	})
}

// alive fails t unless rc is still served.
func alive(t *testing.T, what string, rc *respConn) {
	t.Helper()
	if r, err := rc.tryReplyTo(respCommand("PING"), 5*time.Second); err != nil || r != "+PONG\r\n" {
		t.Errorf("%s: PING %q, %v; want the client still served", what, r, err)
	}
}

// tryReplyTo sends cmd and returns its reply, or the error that prevented
// one.
func (c *respConn) tryReplyTo(cmd string, timeout time.Duration) (string, error) {
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write([]byte(cmd)); err != nil {
		return "", err
	}
	return c.tryReply(timeout)
}

func testClientKill(t *testing.T, c *clustertest.Cluster) {
	// A proxy of its own, whose every client the test knows, listening on
	// a second address too for LADDR.
	p := startProxy(t, c, Options{}, router.Options{})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Server.Serve(ln2)
	addr2 := ln2.Addr().String()

	killer := dialRESP(t, p.Addr)
	killerID := clientID(t, killer)
	waitClients(t, p, 1)

	byID := dialRESP(t, p.Addr)
	byAddr := dialRESP(t, p.Addr)
	oldForm := dialRESP(t, p.Addr)
	bystander := dialRESP(t, p.Addr)
	victimID := clientID(t, byID)
	alive(t, "a new client", byAddr)
	alive(t, "a new client", oldForm)
	alive(t, "a new client", bystander)
	waitClients(t, p, 5)

	if r := killer.do("CLIENT", "KILL", "ID", strconv.FormatInt(victimID, 10)); r != ":1\r\n" {
		t.Errorf("CLIENT KILL ID: %q, want :1", r)
	}
	byID.expectClosed()
	waitClients(t, p, 4)
	if r := killer.do("CLIENT", "KILL", "ADDR", byAddr.nc.LocalAddr().String(), "TYPE", "normal", "USER", "default"); r != ":1\r\n" {
		t.Errorf("CLIENT KILL ADDR TYPE normal USER default: %q, want :1", r)
	}
	byAddr.expectClosed()
	waitClients(t, p, 3)
	if r := killer.do("CLIENT", "KILL", oldForm.nc.LocalAddr().String()); r != "+OK\r\n" {
		t.Errorf("CLIENT KILL addr: %q, want +OK", r)
	}
	oldForm.expectClosed()
	waitClients(t, p, 2)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "KILL", "127.0.0.1:1"}, "-ERR No such client\r\n"},
		{[]string{"CLIENT", "KILL", "ID", "999999"}, ":0\r\n"},
		{[]string{"CLIENT", "KILL", "ID", "0"}, "-ERR client-id should be greater than 0\r\n"},
		{[]string{"CLIENT", "KILL", "ID", "abc"}, "-ERR client-id should be greater than 0\r\n"},
		{[]string{"CLIENT", "KILL", "TYPE", "pubsub"}, ":0\r\n"},
		{[]string{"CLIENT", "KILL", "TYPE", "bad"}, "-ERR Unknown client type 'bad'\r\n"},
		{[]string{"CLIENT", "KILL", "USER", "nobody"}, "-ERR No such user 'nobody'\r\n"},
		{[]string{"CLIENT", "KILL", "SKIPME", "maybe"}, "-ERR syntax error\r\n"},
		{[]string{"CLIENT", "KILL", "FOO", "bar"}, "-ERR syntax error\r\n"},
		// Two words are the old form, whatever the second.
		{[]string{"CLIENT", "KILL", "ID"}, "-ERR No such client\r\n"},
		// SKIPME yes is the default: the killer spares itself.
		{[]string{"CLIENT", "KILL", "ID", strconv.FormatInt(killerID, 10)}, ":0\r\n"},
		{[]string{"CLIENT", "KILL", "ID", strconv.FormatInt(killerID, 10), "SKIPME", "yes"}, ":0\r\n"},
		{[]string{"CLIENT", "KILL", "ADDR", "127.0.0.1:1"}, ":0\r\n"},
	} {
		if got := killer.do(c.args...); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	alive(t, "the bystander", bystander)
	alive(t, "the killer", killer)
	waitClients(t, p, 2)

	// LADDR: the clients of the second listener, not the first's.
	second := []*respConn{dialRESP(t, addr2), dialRESP(t, addr2)}
	for _, rc := range second {
		alive(t, "a client of the second listener", rc)
	}
	if lines := clientLines(t, textReply(t, second[0].do("CLIENT", "INFO"))); lines[0]["laddr"] != addr2 {
		t.Errorf("CLIENT INFO on the second listener: laddr=%q, want %s", lines[0]["laddr"], addr2)
	}
	waitClients(t, p, 4)
	if r := second[0].do("CLIENT", "KILL", "LADDR", addr2); r != ":1\r\n" {
		t.Errorf("CLIENT KILL LADDR of its own listener (SKIPME yes): %q, want :1", r)
	}
	second[1].expectClosed()
	alive(t, "the killer on the second listener", second[0])
	if r := killer.do("CLIENT", "KILL", "LADDR", addr2); r != ":1\r\n" {
		t.Errorf("CLIENT KILL LADDR of the second listener: %q, want :1", r)
	}
	second[0].expectClosed()
	alive(t, "the bystander", bystander)
	waitClients(t, p, 2)

	// SKIPME no: the killer is killed too, once answered.
	if r := killer.do("CLIENT", "KILL", "ID", strconv.FormatInt(killerID, 10), "SKIPME", "no"); r != ":1\r\n" {
		t.Errorf("CLIENT KILL ID self SKIPME no: %q, want :1", r)
	}
	killer.expectClosed()
	// The old form, on oneself: OK, then the close.
	if r := bystander.do("CLIENT", "KILL", bystander.nc.LocalAddr().String()); r != "+OK\r\n" {
		t.Errorf("CLIENT KILL own addr: %q, want +OK", r)
	}
	bystander.expectClosed()
	waitClients(t, p, 0)
}

func testClientKillParked(t *testing.T, c *clustertest.Cluster) {
	p := startProxy(t, c, Options{IdleParkAfter: 100 * time.Millisecond}, router.Options{})
	if p.Server.parker == nil {
		t.Fatal("no parker: epoll unavailable")
	}
	parked := func(n int64) func() error {
		return func() error {
			if got := p.Server.parkedN.Load(); got != n {
				return fmt.Errorf("%d clients parked, want %d", got, n)
			}
			return nil
		}
	}
	victim := dialRESP(t, p.Addr)
	victimID := clientID(t, victim)
	killer := dialRESP(t, p.Addr)
	alive(t, "the killer", killer)
	clustertest.Eventually(t, 5*time.Second, parked(2))

	if r := killer.do("CLIENT", "KILL", "ID", strconv.FormatInt(victimID, 10)); r != ":1\r\n" {
		t.Errorf("CLIENT KILL ID of a parked client: %q, want :1", r)
	}
	victim.expectClosed()
	waitClients(t, p, 1)
	// The killer parks again, and the victim is no longer counted.
	clustertest.Eventually(t, 5*time.Second, parked(1))
	alive(t, "the killer", killer)
}

// ---------------------------------------------------------------------------

const replyMarker = "end-of-sequence"

// replySequence sends cmds and an ECHO of replyMarker in one write, and
// returns every reply before the marker's.
func replySequence(t *testing.T, rc *respConn, cmds [][]string) string {
	t.Helper()
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(respCommand(c...))
	}
	b.WriteString(respCommand("ECHO", replyMarker))
	rc.write(b.String())
	marker := fmt.Sprintf("$%d\r\n%s\r\n", len(replyMarker), replyMarker)
	var got strings.Builder
	for {
		r, err := rc.tryReply(5 * time.Second)
		if err != nil {
			t.Fatalf("%q: no reply to the closing ECHO (%v), after %q", cmds, err, got.String())
		}
		if r == marker {
			return got.String()
		}
		got.WriteString(r)
	}
}

func testClientReply(t *testing.T, p *testProxy, refAddr string) {
	// Two keys in different slots, so that MGET is split across masters.
	k1, k2 := "reply:{a}", "reply:{b}"
	if slotmap.Slot([]byte(k1)) == slotmap.Slot([]byte(k2)) {
		t.Fatal("the keys share a slot")
	}
	unknownSHA := sha1Hex("no such script")
	sequences := [][][]string{
		{{"CLIENT", "REPLY", "OFF"}, {"SET", k1, "1"}, {"GET", k1}, {"CLIENT", "REPLY", "ON"}, {"GET", k1}},
		{{"CLIENT", "REPLY", "SKIP"}, {"GET", k1}, {"GET", k1}},
		{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "SKIP"}, {"GET", k1}, {"GET", k1}},
		{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"}, {"GET", k1}},
		{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "OFF"}, {"GET", k1}, {"CLIENT", "REPLY", "ON"}, {"GET", k1}},
		// SKIP while OFF changes nothing: replies stay off.
		{{"CLIENT", "REPLY", "OFF"}, {"CLIENT", "REPLY", "SKIP"}, {"GET", k1}, {"GET", k1}, {"CLIENT", "REPLY", "ON"}, {"GET", k1}},
		// Split commands, jobs and errors are muted as much as forwarded ones.
		{{"SET", k2, "2"}, {"CLIENT", "REPLY", "OFF"}, {"MGET", k1, k2}, {"SCRIPT", "EXISTS", unknownSHA}, {"PING"}, {"NOSUCHCMD"}, {"GET"},
			{"CLIENT", "REPLY", "ON"}, {"MGET", k1, k2}, {"SCRIPT", "EXISTS", unknownSHA}},
		{{"CLIENT", "REPLY", "SKIP"}, {"MGET", k1, k2}, {"MGET", k1, k2}},
		{{"CLIENT", "REPLY", "SKIP"}, {"SCRIPT", "EXISTS", unknownSHA}, {"SCRIPT", "EXISTS", unknownSHA}},
		{{"CLIENT", "REPLY", "SKIP"}, {"NOSUCHCMD"}, {"PING"}},
		{{"CLIENT", "REPLY", "MAYBE"}, {"CLIENT", "REPLY", "OFF"}, {"CLIENT", "REPLY", "MAYBE"}, {"CLIENT", "REPLY", "ON"}},
		{{"CLIENT", "REPLY", "ON"}, {"CLIENT", "REPLY", "ON"}},
	}
	rc := dialRESP(t, p.Addr)
	ref := dialRESP(t, refAddr)
	for _, seq := range sequences {
		want := replySequence(t, ref, seq)
		if got := replySequence(t, rc, seq); got != want {
			t.Errorf("%q: the proxy answers %q, redis-server %q", seq, got, want)
		}
	}

	// OFF and SKIP last beyond the batch they came in.
	for _, target := range []struct {
		name, addr string
	}{{"redis-server", refAddr}, {"the proxy", p.Addr}} {
		conn, other := dialRESP(t, target.addr), dialRESP(t, target.addr)
		key := "reply:batches:" + strconv.FormatInt(time.Now().UnixNano(), 10)
		// Each write is answered before the next is sent: the SET it
		// ends with is seen from another connection.
		handled := func(val string) {
			t.Helper()
			clustertest.Eventually(t, 5*time.Second, func() error {
				if r := other.do("GET", key); r != fmt.Sprintf("$%d\r\n%s\r\n", len(val), val) {
					return fmt.Errorf("%s: GET %s = %q, want %s", target.name, key, r, val)
				}
				return nil
			})
		}
		conn.write(respCommand("CLIENT", "REPLY", "OFF") + respCommand("SET", key, "a"))
		handled("a")
		conn.write(respCommand("GET", key) + respCommand("CLIENT", "REPLY", "SKIP") + respCommand("SET", key, "b"))
		handled("b")
		conn.write(respCommand("CLIENT", "REPLY", "ON") + respCommand("CLIENT", "REPLY", "SKIP") + respCommand("SET", key, "c"))
		handled("c")
		if got := replySequence(t, conn, [][]string{{"GET", key}}); got != "+OK\r\n$1\r\nc\r\n" {
			t.Errorf("%s: CLIENT REPLY across batches: %q, want the OK of ON and the last GET", target.name, got)
		}
	}
}

// ---------------------------------------------------------------------------

func testClientFlags(t *testing.T, p *testProxy, refAddr string) {
	rc := dialRESP(t, p.Addr)
	ref := dialRESP(t, refAddr)
	sameReplies(t, rc, ref,
		[]string{"CLIENT", "NO-EVICT", "on"},
		[]string{"CLIENT", "NO-EVICT", "OFF"},
		[]string{"CLIENT", "NO-EVICT", "maybe"},
		[]string{"CLIENT", "TRACKINGINFO"},
		[]string{"CLIENT", "GETREDIR"},
		[]string{"CLIENT", "CACHING", "yes"},
		[]string{"CLIENT", "NOSUCH"},
	)
	// NO-TOUCH is redis 7.2's; the proxy answers it as 7.2 does.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "NO-TOUCH", "on"}, "+OK\r\n"},
		{[]string{"CLIENT", "NO-TOUCH", "OFF"}, "+OK\r\n"},
		{[]string{"CLIENT", "NO-TOUCH", "maybe"}, "-ERR syntax error\r\n"},
		{[]string{"CLIENT", "TRACKING", "on"}, "-" + msgNoTracking + "\r\n"},
		{[]string{"CLIENT", "TRACKING", "on", "BCAST"}, "-" + msgNoTracking + "\r\n"},
	} {
		if got := rc.do(c.args...); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	// Still not tracking.
	sameReplies(t, rc, ref, []string{"CLIENT", "TRACKINGINFO"}, []string{"CLIENT", "GETREDIR"})
}

// ---------------------------------------------------------------------------

func testClientNames(t *testing.T, p *testProxy, refAddr string) {
	rc := dialRESP(t, p.Addr)
	ref := dialRESP(t, refAddr)
	sameReplies(t, rc, ref,
		[]string{"CLIENT", "GETNAME"},
		[]string{"CLIENT", "SETNAME", "alpha"},
		[]string{"CLIENT", "GETNAME"},
		[]string{"CLIENT", "SETNAME", "has space"},
		[]string{"CLIENT", "SETNAME", "new\nline"},
		[]string{"CLIENT", "SETNAME", "caf\xc3\xa9"},
		[]string{"CLIENT", "GETNAME"},
		[]string{"CLIENT", "SETNAME", ""},
		[]string{"CLIENT", "GETNAME"},
		[]string{"CLIENT", "SETNAME"},
		[]string{"HELLO", "SETNAME", "x"},
		[]string{"HELLO", "2", "SETNAME", "bad name"},
		[]string{"HELLO", "2", "SETNAME"},
		[]string{"CLIENT", "GETNAME"},
	)
	if r := rc.do("HELLO", "2", "SETNAME", "beta"); !strings.HasPrefix(r, "*14\r\n") {
		t.Errorf("HELLO 2 SETNAME beta: %q", r)
	}
	if r := rc.do("CLIENT", "GETNAME"); r != "$4\r\nbeta\r\n" {
		t.Errorf("CLIENT GETNAME after HELLO SETNAME: %q", r)
	}
	if lines := clientLines(t, textReply(t, rc.do("CLIENT", "INFO"))); lines[0]["name"] != "beta" {
		t.Errorf("CLIENT INFO after HELLO SETNAME: name=%q", lines[0]["name"])
	}
}

// ---------------------------------------------------------------------------

// helloReply is HELLO's map, as a standalone redis-server sends it.
func helloReply(proto int, version string, id int64) string {
	head := "*14\r\n"
	if proto == 3 {
		head = "%7\r\n"
	}
	return head +
		"$6\r\nserver\r\n$5\r\nredis\r\n" +
		fmt.Sprintf("$7\r\nversion\r\n$%d\r\n%s\r\n", len(version), version) +
		fmt.Sprintf("$5\r\nproto\r\n:%d\r\n", proto) +
		fmt.Sprintf("$2\r\nid\r\n:%d\r\n", id) +
		"$4\r\nmode\r\n$10\r\nstandalone\r\n" +
		"$4\r\nrole\r\n$6\r\nmaster\r\n" +
		"$7\r\nmodules\r\n*0\r\n"
}

func testHello3(t *testing.T, c *clustertest.Cluster, p *testProxy, refAddr string) {
	ctx := context.Background()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Client(masters[0]).Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	version, _ := infoField(info, "redis_version")

	rc := dialRESP(t, p.Addr)
	ref := dialRESP(t, refAddr)
	id := clientID(t, rc)
	if r := rc.do("HELLO", "3"); r != helloReply(3, version, id) {
		t.Errorf("HELLO 3: %q, want %q", r, helloReply(3, version, id))
	}
	if r := ref.do("HELLO", "3"); !strings.HasPrefix(r, "%7\r\n") {
		t.Fatalf("HELLO 3 on redis-server: %q", r)
	}

	// Keys in three slots, so that MGET is split and merged.
	k1, k2, k3 := "hello3:{x}", "hello3:{y}", "hello3:{z}"
	if slotmap.Slot([]byte(k1)) == slotmap.Slot([]byte(k3)) {
		t.Fatal("the keys share a slot")
	}
	h := "hello3:hash"
	for _, conn := range []*respConn{rc, ref} {
		conn.do("DEL", k1, k2, k3, h)
		conn.do("SET", k1, "one")
		conn.do("SET", k3, "three")
		conn.do("HSET", h, "f", "v")
	}
	resp3 := [][]string{
		{"CLIENT", "GETNAME"},
		{"MGET", k1, k2, k3},
		{"GET", k2},
		{"HGETALL", h},
		{"CLIENT", "TRACKINGINFO"},
		{"EXISTS", k1, k2, k3},
		{"SCAN", "0", "MATCH", "hello3:?x?", "COUNT", "100000"},
		{"KEYS", "hello3:?x?"},
		{"ROLE"},
		{"HELLO", "4"},
		{"CLIENT", "SETNAME", "r3"},
		{"CLIENT", "GETNAME"},
	}
	sameReplies(t, rc, ref, resp3...)
	if r := rc.do("MGET", k1, k2, k3); r != "*3\r\n$3\r\none\r\n_\r\n$5\r\nthree\r\n" {
		t.Errorf("MGET across slots in RESP3: %q", r)
	}
	if r := rc.do("HGETALL", h); r != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
		t.Errorf("HGETALL in RESP3: %q", r)
	}
	for _, args := range [][]string{{"INFO"}, {"INFO", "server"}, {"CLIENT", "INFO"}, {"CLIENT", "LIST"}} {
		r := rc.do(args...)
		if !strings.HasPrefix(r, "=") {
			t.Errorf("%q in RESP3: %q, want a verbatim string", args, r)
			continue
		}
		text := textReply(t, r)
		if args[0] == "INFO" && !strings.Contains(text, "redis_mode:standalone\r\n") {
			t.Errorf("%q in RESP3: no redis_mode:standalone in %q", args, text)
		}
		if args[0] == "CLIENT" && !strings.Contains(text, " resp=3 ") {
			t.Errorf("%q in RESP3: no resp=3 in %q", args, text)
		}
	}
	if r := rc.do("RANDOMKEY"); strings.HasPrefix(r, "-") {
		t.Errorf("RANDOMKEY in RESP3: %q", r)
	}

	// HELLO 2 goes back on the same connection.
	if r := rc.do("HELLO", "2"); r != helloReply(2, version, id) {
		t.Errorf("HELLO 2: %q, want %q", r, helloReply(2, version, id))
	}
	if r := ref.do("HELLO", "2"); !strings.HasPrefix(r, "*14\r\n") {
		t.Fatalf("HELLO 2 on redis-server: %q", r)
	}
	sameReplies(t, rc, ref, resp3...)
	sameReplies(t, rc, ref, []string{"CLIENT", "SETNAME", ""}, []string{"CLIENT", "GETNAME"})
	if r := rc.do("MGET", k1, k2, k3); r != "*3\r\n$3\r\none\r\n$-1\r\n$5\r\nthree\r\n" {
		t.Errorf("MGET across slots back in RESP2: %q", r)
	}
	if r := rc.do("INFO", "server"); !strings.HasPrefix(r, "$") {
		t.Errorf("INFO back in RESP2: %q, want a bulk string", r)
	}
	if r := rc.do("HELLO"); r != helloReply(2, version, id) {
		t.Errorf("HELLO without a version, in RESP2: %q", r)
	}
}

func testHelloAuth(t *testing.T, c *clustertest.Cluster) {
	const password = "hello-s3cret"
	p := startProxy(t, c, Options{Password: password}, router.Options{})
	refNode := clustertest.Standalone(t, password)
	rc := dialRESP(t, p.Addr)
	ref := dialRESP(t, refNode.Addr)
	sameReplies(t, rc, ref,
		[]string{"GET", "x"},
		[]string{"CLIENT", "GETNAME"},
		[]string{"HELLO", "3"},
		[]string{"HELLO", "3", "AUTH", "default", "wrong"},
		[]string{"HELLO", "3", "AUTH", "someone", password},
		[]string{"HELLO", "3", "AUTH", "default"},
		[]string{"GET", "x"},
	)
	r := rc.do("HELLO", "3", "AUTH", "default", password, "SETNAME", "authed")
	if !strings.HasPrefix(r, "%7\r\n") || !strings.Contains(r, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3 AUTH default <password> SETNAME authed: %q", r)
	}
	if r := rc.do("CLIENT", "GETNAME"); r != "$6\r\nauthed\r\n" {
		t.Errorf("CLIENT GETNAME after HELLO SETNAME: %q", r)
	}
	rc.do("DEL", "hello-auth:missing")
	if r := rc.do("GET", "hello-auth:missing"); r != "_\r\n" {
		t.Errorf("GET of a missing key after HELLO 3 AUTH: %q, want the RESP3 null", r)
	}
	lines := clientLines(t, textReply(t, rc.do("CLIENT", "INFO")))
	if lines[0]["name"] != "authed" || lines[0]["resp"] != "3" {
		t.Errorf("CLIENT INFO after HELLO 3 AUTH SETNAME: %v", lines[0])
	}
	// A failed HELLO leaves the connection as it was.
	other := dialRESP(t, p.Addr)
	if r := other.do("HELLO", "3", "AUTH", "default", "wrong", "SETNAME", "x"); !strings.HasPrefix(r, "-WRONGPASS") {
		t.Errorf("HELLO 3 with a wrong password: %q", r)
	}
	if r := other.do("GET", "x"); r != "-NOAUTH Authentication required.\r\n" {
		t.Errorf("GET after a failed HELLO AUTH: %q", r)
	}
}
