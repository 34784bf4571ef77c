package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// abuseCase is what a hostile or broken client sends on a connection of
// its own.
type abuseCase struct {
	name string
	in   []byte
	// hangUp closes the client's side once in is sent (a FIN: whatever
	// the server answered before it noticed is still read).
	hangUp bool
	// want is redis-server 7.0's answer, and closed whether it then
	// closes the connection. fromRedis takes both from the server
	// instead, for inputs whose answer is too long to write down.
	want      string
	closed    bool
	fromRedis bool
	// proxy, when set, is the proxy's answer where it differs from
	// redis-server's, for the reason given in the case's comment.
	proxy *abuseAnswer
}

// abuseAnswer is what a server sent on a connection, and whether it then
// closed it.
type abuseAnswer struct {
	reply  []byte
	closed bool
}

func (a abuseAnswer) String() string {
	s := strconv.Quote(string(a.reply))
	if len(s) > 300 {
		s = s[:150] + "..." + s[len(s)-150:]
	}
	if a.closed {
		return s + " then closed"
	}
	return s + " and the connection open"
}

func abuseCases() []abuseCase {
	const unknownPI = "-ERR unknown command 'PI', with args beginning with: \r\n"
	garbage := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(15, 64))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	return []abuseCase{
		{name: "unknown type byte in a multibulk", in: []byte("*1\r\n%3\r\nfoo\r\n"),
			want: "-ERR Protocol error: expected '$', got '%'\r\n", closed: true},
		// A first byte other than '*' makes an inline command.
		{name: "unknown type byte first", in: []byte("%3\r\nPING\r\n"),
			want: "-ERR unknown command '%3', with args beginning with: \r\n+PONG\r\n"},
		{name: "negative bulk length", in: []byte("*1\r\n$-5\r\n"),
			want: "-ERR Protocol error: invalid bulk length\r\n", closed: true},
		{name: "huge bulk length", in: []byte("*1\r\n$999999999999\r\n"),
			want: "-ERR Protocol error: invalid bulk length\r\n", closed: true},
		{name: "bulk length over proto-max-bulk-len", in: []byte("*2\r\n$4\r\nECHO\r\n$536870913\r\n"),
			want: "-ERR Protocol error: invalid bulk length\r\n", closed: true},
		// redis-server 7.0 takes up to INT_MAX arguments and waits for
		// them; the proxy, which holds a command whole before routing it,
		// keeps the older bound of 1024*1024 (maxMultibulkLen).
		{name: "multibulk count over 1048576", in: []byte("*1048577\r\n"),
			want: "", proxy: &abuseAnswer{[]byte("-ERR Protocol error: invalid multibulk length\r\n"), true}},
		{name: "multibulk count over INT_MAX", in: []byte("*2147483648\r\n"),
			want: "-ERR Protocol error: invalid multibulk length\r\n", closed: true},
		// A count of 0 or less is an empty command, skipped.
		{name: "negative multibulk count", in: []byte("*-5\r\n*1\r\n$4\r\nPING\r\n"), want: "+PONG\r\n"},
		// The two bytes after a bulk are skipped unchecked: "*1" is taken
		// for them, then "\r\n" is an empty inline line and "$4" an
		// inline command.
		{name: "bulk missing its CRLF", in: []byte("*2\r\n$4\r\nECHO\r\n$1\r\na*1\r\n$4\r\nPING\r\n"),
			want: "$1\r\na\r\n-ERR unknown command '$4', with args beginning with: \r\n+PONG\r\n"},
		{name: "bulk missing its CRLF at the end", in: []byte("*1\r\n$4\r\nPING"), want: ""},
		{name: "bulk longer than announced", in: []byte("*1\r\n$2\r\nPING\r\n"), want: unknownPI},
		{name: "inline of 64 KiB + 1 without newline", in: bytes.Repeat([]byte("x"), 64<<10+1),
			want: "-ERR Protocol error: too big inline request\r\n", closed: true},
		// redis-server checks the inline limit only while the line has no
		// newline yet: one that has arrived whole is run.
		{name: "inline of 64 KiB + 1 with newline", in: append(bytes.Repeat([]byte("x"), 64<<10+1), '\n'),
			want: "-ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: \r\n"},
		{name: "inline with unbalanced quotes", in: []byte("SET abuse:q \"abc\r\nPING\r\n"),
			want: "-ERR Protocol error: unbalanced quotes in request\r\n", closed: true},
		{name: "inline with a closing quote then a letter", in: []byte("ECHO 'a'b\r\n"),
			want: "-ERR Protocol error: unbalanced quotes in request\r\n", closed: true},
		// redis-server looks for the newline with strchr, which stops at
		// the NUL: the line never ends.
		{name: "NUL byte in inline", in: []byte("PI\x00NG\r\nPING\r\n"), want: ""},
		{name: "NUL byte in inline, then 64 KiB", in: append([]byte("PING\x00\r\n"), bytes.Repeat([]byte("x"), 64<<10)...),
			want: "-ERR Protocol error: too big inline request\r\n", closed: true},
		{name: "*0 and empty lines", in: []byte("*0\r\n\r\n\n   \r\n*0\r\nPING\r\n"), want: "+PONG\r\n"},
		{name: "a million arguments announced, one sent, then hang-up",
			in: []byte("*1000000\r\n$1\r\na\r\n$1\r\n"), hangUp: true, want: "", closed: true},
		{name: "closes mid-bulk", in: []byte("*3\r\n$3\r\nSET\r\n$7\r\nabuse:m\r\n$100\r\nabc"),
			hangUp: true, want: "", closed: true},
		// redis-server checks a header's first byte only once the line
		// has its '\r' and one byte more.
		{name: "bulk header not ended", in: []byte("*1\r\nx"), want: ""},
		{name: "high byte for a type", in: []byte("*1\r\n\xff\r\n"),
			want: "-ERR Protocol error: expected '$', got '\xff'\r\n", closed: true},
		// An error reply stays on one line.
		{name: "CR for a type", in: []byte("*1\r\n\r\n"),
			want: "-ERR Protocol error: expected '$', got ' '\r\n", closed: true},
		{name: "LF for a type", in: []byte("*1\r\n\n\r\n"),
			want: "-ERR Protocol error: expected '$', got ' '\r\n", closed: true},
		// redis-server looks for a header's '\r' with strchr, which stops
		// at a NUL: the line never ends, until it is too big.
		{name: "NUL in a count", in: []byte("*\x001\r\n$4\r\nPING\r\n"), want: ""},
		{name: "NUL in a bulk length", in: []byte("*1\r\n$\x004\r\nPING\r\n"), want: ""},
		{name: "NUL for a type", in: []byte("*1\r\n\x00\r\n"), want: ""},
		{name: "NUL in a count, then 64 KiB", in: append([]byte("*\x00\r\n"), bytes.Repeat([]byte("1"), 64<<10)...),
			want: "-ERR Protocol error: too big mbulk count string\r\n", closed: true},
		{name: "NUL in a bulk length, then 64 KiB", in: append([]byte("*1\r\n$\x00\r\n"), bytes.Repeat([]byte("1"), 64<<10)...),
			want: "-ERR Protocol error: too big bulk count string\r\n", closed: true},
		// redis-server prints the name and arguments with "%.*s", which
		// stops at a NUL, and keeps every other byte as it is but CR and
		// LF.
		{name: "unknown command, CR LF and a high byte in an argument", in: []byte("*2\r\n$3\r\nFOO\r\n$5\r\n\xffa\r\nb\r\n"),
			want: "-ERR unknown command 'FOO', with args beginning with: '\xffa  b' \r\n"},
		{name: "unknown command, NUL in an argument", in: []byte("*2\r\n$3\r\nFOO\r\n$3\r\na\x00b\r\n"),
			want: "-ERR unknown command 'FOO', with args beginning with: 'a' \r\n"},
		{name: "unknown command, NUL in its name", in: []byte("*1\r\n$3\r\nF\x00O\r\n"),
			want: "-ERR unknown command 'F', with args beginning with: \r\n"},
		// A browser made to POST to the proxy by a web page: redis-server
		// closes the connection without a reply, and so does the proxy.
		{name: "HTTP request", in: []byte("POST / HTTP/1.1\r\nHost: x\r\n\r\n"), want: "", closed: true},
		{name: "HTTP header after a command", in: []byte("*1\r\n$4\r\nPING\r\nHost: x\r\n"), want: "", closed: true},
		{name: "binary garbage", in: garbage, fromRedis: true},
		{name: "binary garbage in a multibulk", in: append([]byte("*3\r\n$3\r\nSET\r\n"), garbage[:4096]...), fromRedis: true},
	}
}

// TestProtocolAbuse sends what broken and hostile clients send, each on a
// connection of its own, to a redis-server and to the proxy: the proxy
// must answer byte for byte as the server does, stay healthy, and leave
// a client busy on another connection unaffected.
func TestProtocolAbuse(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	srv := clustertest.Standalone(t, "")
	by := startBystander(t, p.Addr)

	for _, tc := range abuseCases() {
		t.Run(tc.name, func(t *testing.T) {
			from := by.done.Load()
			want := abuseAnswer{[]byte(tc.want), tc.closed}
			if tc.fromRedis {
				want = abuseExchange(t, srv.Addr, tc, nil)
				t.Logf("redis-server answers %v", want)
			} else if got := abuseExchange(t, srv.Addr, tc, &want); !got.equal(want) {
				t.Errorf("redis-server answers %v, the case says %v", got, want)
			}
			if tc.proxy != nil {
				want = *tc.proxy
			}
			if got := abuseExchange(t, p.Addr, tc, &want); !got.equal(want) {
				t.Errorf("the proxy answers %v, want %v", got, want)
			}
			abusePing(t, p.Addr)
			by.check(t, from)
		})
	}
}

func (a abuseAnswer) equal(b abuseAnswer) bool {
	return bytes.Equal(a.reply, b.reply) && a.closed == b.closed
}

// abuseQuiet is how long a connection that should stay open and silent
// is watched. Too short only lets a wrong answer pass, never fails a
// right one: an expected answer is waited for much longer.
const abuseQuiet = 300 * time.Millisecond

// abuseExchange sends tc.in on a new connection to addr and returns what
// comes back. With want, it waits as long as need be for want's bytes
// (and end, when want is closed), then abuseQuiet for more; without, it
// reads until the server closes the connection or falls quiet after its
// first bytes.
func abuseExchange(t *testing.T, addr string, tc abuseCase, want *abuseAnswer) abuseAnswer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go func() {
		// The server may close before it has read everything: the
		// error is the point, not a failure.
		nc.Write(tc.in)
		if tc.hangUp {
			nc.(*net.TCPConn).CloseWrite()
		}
	}()
	var got abuseAnswer
	long := time.Now().Add(10 * time.Second)
	buf := make([]byte, 64<<10)
	for {
		deadline := long
		switch {
		case want == nil && len(got.reply) > 0:
			deadline = time.Now().Add(abuseQuiet)
		case want != nil && !want.closed && len(got.reply) >= len(want.reply):
			deadline = time.Now().Add(abuseQuiet)
		}
		nc.SetReadDeadline(deadline)
		n, err := nc.Read(buf)
		got.reply = append(got.reply, buf[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			if deadline == long && (want == nil || want.closed) {
				t.Fatalf("%s: no end after 10s, got %v", addr, got)
			}
			return got
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			got.closed = true
			return got
		default:
			t.Fatalf("%s: %v", addr, err)
		}
	}
}

// abusePing checks that the proxy still answers a new client.
func abusePing(t *testing.T, addr string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the proxy no longer accepts: %v", err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "+PONG\r\n" {
		t.Fatalf("PING on a new connection: %q, %v", got, err)
	}
}

// bystander is a well-behaved client running SET and GET in a loop on its
// own connection while the abuse goes on.
type bystander struct {
	done atomic.Int64 // SET+GET pairs that round-tripped right
	mu   sync.Mutex
	err  error // the first thing that went wrong
}

func startBystander(t *testing.T, addr string) *bystander {
	by := &bystander{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			by.fail(err)
			return
		}
		defer nc.Close()
		got := make([]byte, 64)
		for i := 0; ctx.Err() == nil; i++ {
			key, val := "bystander:"+strconv.Itoa(i%100), "v"+strconv.Itoa(i)
			want := "+OK\r\n$" + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n"
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(append(ptEncode("SET", key, val), ptEncode("GET", key)...)); err != nil {
				by.fail(err)
				return
			}
			if _, err := io.ReadFull(nc, got[:len(want)]); err != nil || string(got[:len(want)]) != want {
				// What follows tells whose replies these are.
				after := make([]byte, 4096)
				nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				m, _ := io.ReadAtLeast(nc, after, 1)
				by.fail(fmt.Errorf("SET then GET %s: %q (then %q), %v; want %q", key, got[:len(want)], after[:m], err, want))
				return
			}
			by.done.Add(1)
		}
	}()
	return by
}

func (by *bystander) fail(err error) {
	by.mu.Lock()
	defer by.mu.Unlock()
	if by.err == nil {
		by.err = err
	}
}

// check fails t if the bystander met an error, or does not get on past
// from: its traffic must go on through the case.
func (by *bystander) check(t *testing.T, from int64) {
	t.Helper()
	clustertest.Eventually(t, 5*time.Second, func() error {
		by.mu.Lock()
		err := by.err
		by.mu.Unlock()
		if err != nil {
			t.Fatalf("the bystander client: %v", err)
		}
		if n := by.done.Load(); n < from+10 {
			return fmt.Errorf("the bystander client made %d round trips during the case, want 10 or more", n-from)
		}
		return nil
	})
}

// TestHalfSentCommandStaysWithItsClient: a client that hangs up in the
// middle of a command leaves nothing of it to the next client, whose
// session may reuse the pooled state the first one parsed into.
func TestHalfSentCommandStaysWithItsClient(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	for i := range 50 {
		half, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		// Two of three arguments: the parse stops at the third.
		io.WriteString(half, "*3\r\n$3\r\nSET\r\n$7\r\nabuse:h\r\n")
		// Its session must have parsed them before it sees the hang-up.
		abusePing(t, p.Addr)
		half.Close()
		clustertest.Eventually(t, 5*time.Second, func() error {
			if n := p.Server.Clients(); n != 0 {
				return fmt.Errorf("%d clients connected", n)
			}
			return nil
		})
		nc, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(ptEncode("ECHO", "next"))
		got := make([]byte, 10)
		if _, err := io.ReadFull(nc, got); err != nil || string(got) != "$4\r\nnext\r\n" {
			t.Fatalf("round %d: ECHO next after a half-sent SET: %q, %v", i, got, err)
		}
		nc.Close()
	}
}
