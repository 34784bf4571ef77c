package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// limitsConn is a raw client connection of a limits test.
type limitsConn struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
}

func limitsDial(t *testing.T, addr string) *limitsConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &limitsConn{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

func (c *limitsConn) send(cmd ...string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(ptEncode(cmd...)); err != nil {
		c.t.Fatalf("%q: %v", cmd, err)
	}
}

// expect reads exactly want, within 5 s.
func (c *limitsConn) expect(want string) error {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.rd, got); err != nil || string(got) != want {
		return fmt.Errorf("read %q, %v; want %q", got, err, want)
	}
	return nil
}

func (c *limitsConn) roundTrip(want string, cmd ...string) {
	c.t.Helper()
	c.send(cmd...)
	if err := c.expect(want); err != nil {
		c.t.Fatalf("%q: %v", cmd, err)
	}
}

// closedAfter waits up to wait for the proxy to close the connection and
// returns when it did; any byte received first is an error.
func (c *limitsConn) closedAfter(wait time.Duration) (time.Time, error) {
	c.nc.SetReadDeadline(time.Now().Add(wait))
	b, err := c.rd.ReadByte()
	switch {
	case err == nil:
		return time.Time{}, fmt.Errorf("received %q instead of the end", b)
	case errors.Is(err, io.EOF):
		return time.Now(), nil
	}
	return time.Time{}, err
}

// TestIdleTimeout: with Options.IdleTimeout, a client that sends nothing
// for that long is disconnected, as by redis-server's timeout: whether it
// never sent anything (parked from the start), went idle after a command,
// stopped halfway through one, or sits in a MULTI. Clients that keep
// sending, Pub/Sub subscribers and clients blocked in BLPOP 0 stay.
func TestIdleTimeout(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	const timeout = time.Second
	p := startProxy(t, c, Options{IdleTimeout: timeout}, router.Options{})

	type idler struct {
		name string
		conn *limitsConn
		sent time.Time // when it began to send its last bytes
	}
	var idlers []idler
	// setup returns when the client began to send its last bytes: the
	// proxy cannot have seen them earlier.
	add := func(name string, setup func(c *limitsConn) time.Time) {
		sent := time.Now()
		conn := limitsDial(t, p.Addr)
		if last := setup(conn); !last.IsZero() {
			sent = last
		}
		idlers = append(idlers, idler{name, conn, sent})
	}
	add("never sent anything", func(*limitsConn) time.Time { return time.Time{} })
	add("idle after a command", func(c *limitsConn) time.Time {
		sent := time.Now()
		c.roundTrip("+PONG\r\n", "PING")
		return sent
	})
	add("stopped halfway through a command", func(c *limitsConn) time.Time {
		c.roundTrip("+PONG\r\n", "PING")
		sent := time.Now()
		io.WriteString(c.nc, "*2\r\n$4\r\nECHO\r\n$5\r\nhel")
		return sent
	})
	add("in a MULTI", func(c *limitsConn) time.Time {
		c.roundTrip("+OK\r\n", "MULTI")
		sent := time.Now()
		c.roundTrip("+QUEUED\r\n", "SET", "limits:multi", "v")
		return sent
	})

	sub := limitsDial(t, p.Addr)
	sub.roundTrip("*3\r\n$9\r\nsubscribe\r\n$9\r\nlimits:ch\r\n:1\r\n", "SUBSCRIBE", "limits:ch")
	blocked := limitsDial(t, p.Addr)
	blocked.send("BLPOP", "limits:list", "0")

	// A client sending a command every 300 ms, for as long as the others
	// are watched.
	busy := limitsDial(t, p.Addr)
	stopBusy := make(chan struct{})
	busyDone := make(chan error, 1)
	var busyPings atomic.Int64
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopBusy:
				busyDone <- nil
				return
			case <-tick.C:
			}
			busy.nc.Write(ptEncode("PING"))
			if err := busy.expect("+PONG\r\n"); err != nil {
				busyDone <- err
				return
			}
			busyPings.Add(1)
		}
	}()

	for _, it := range idlers {
		// Closed no sooner than the timeout after its last byte, and
		// within the sweeper's latency after (half the timeout).
		at, err := it.conn.closedAfter(timeout + 5*time.Second)
		if err != nil {
			t.Fatalf("a client %s: %v", it.name, err)
		}
		if idle := at.Sub(it.sent); idle < timeout {
			t.Errorf("a client %s was closed after %v idle, before the timeout of %v", it.name, idle.Round(time.Millisecond), timeout)
		} else {
			t.Logf("a client %s: closed after %v idle", it.name, idle.Round(time.Millisecond))
		}
	}

	// The others have now been idle as long as the closed ones; four
	// more pings of the busy client outlast another timeout.
	from := busyPings.Load()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := busyPings.Load() - from; n < 4 {
			return fmt.Errorf("the busy client pinged %d times more, want 4", n)
		}
		return nil
	})
	close(stopBusy)
	if err := <-busyDone; err != nil {
		t.Errorf("the client sending every 300 ms: %v", err)
	}

	other := limitsDial(t, p.Addr)
	other.roundTrip(":1\r\n", "PUBLISH", "limits:ch", "hello")
	if err := sub.expect("*3\r\n$7\r\nmessage\r\n$9\r\nlimits:ch\r\n$5\r\nhello\r\n"); err != nil {
		t.Errorf("the subscribed client: %v", err)
	}
	other.roundTrip(":1\r\n", "RPUSH", "limits:list", "x")
	if err := blocked.expect("*2\r\n$11\r\nlimits:list\r\n$1\r\nx\r\n"); err != nil {
		t.Errorf("the client blocked in BLPOP 0: %v", err)
	}
	if n := p.Server.Clients(); n != 4 {
		t.Errorf("%d clients connected, want 4 (busy, subscribed, blocked, other)", n)
	}
}

// limitsHeap returns the heap in use (whole spans) once the garbage is
// collected.
func limitsHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// limitsLive returns the bytes of live objects once the garbage is
// collected: for small objects, HeapInuse would count the spans they
// share with others.
func limitsLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// slowClientHeap bounds the heap a client that sends a command a byte at
// a time costs the proxy: the read buffer its part of a command waits in
// (16 KiB, pooled: redis-server's query buffer takes 16 KiB too), the state
// of its batch (under 1 KiB) and of its session and socket (about 1 KiB),
// and this test's own side of the connection (about 1 KiB). Nothing grows
// with the time the command takes; a second buffer (a write buffer taken
// for a reply that does not exist yet) would show.
const slowClientHeap = readBufferSize + 6<<10

// TestSlowClients: 50 clients each sending a SET one byte every 100 ms
// cost one session each, waiting in its read or parked, and the heap a
// partial command needs.
func TestSlowClients(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	sessions := func() int64 { return p.Server.serving.cur.Load() + p.Server.parkedN.Load() }

	const n = 50
	cmds := make([][]byte, n)
	for i := range cmds {
		cmds[i] = ptEncode("SET", "limits:slow:"+strconv.Itoa(i), "slow value "+strconv.Itoa(i))
	}
	// The same commands sent whole first: the backend connections they
	// need are there before the heap is measured.
	warm := limitsDial(t, p.Addr)
	for _, cmd := range cmds {
		warm.nc.Write(cmd)
		if err := warm.expect("+OK\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	warm.nc.Close()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := p.Server.Clients(); n != 0 {
			return fmt.Errorf("%d clients before the slow ones", n)
		}
		return nil
	})

	goroutines, heap := runtime.NumGoroutine(), limitsLive()
	conns := make([]net.Conn, n) // no bufio.Reader: 4 KiB each in the heap measured
	for i := range conns {
		nc, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns[i] = nc
	}

	var sent atomic.Int64 // bytes, by all clients
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for j := range cmds[i] {
				<-tick.C
				if _, err := conn.Write(cmds[i][j : j+1]); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, 5)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "+OK\r\n" {
				errs <- fmt.Errorf("client %d: %q, %v; want +OK", i, got, err)
			}
		}()
	}

	// Half-way through their commands: every client is connected, and
	// costs a session (serving, or parked), a goroutine of this test and
	// the heap of its partial command.
	half := int64(n * len(cmds[0]) / 2)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if s := sent.Load(); s < half {
			return fmt.Errorf("%d bytes sent, want %d", s, half)
		}
		return nil
	})
	if got := p.Server.Clients(); got != n {
		t.Errorf("%d clients, want %d", got, n)
	}
	if got := sessions(); got > n {
		t.Errorf("%d sessions serving or parked for %d clients", got, n)
	}
	if g := runtime.NumGoroutine() - goroutines; g > 2*n+5 {
		t.Errorf("%d more goroutines with %d slow clients: want at most one for each client's session and one for its sender", g, n)
	}
	grown := int64(limitsLive()) - int64(heap)
	t.Logf("%d slow clients: live heap +%d KiB, %d B a client", n, grown>>10, grown/n)
	if grown > n*slowClientHeap {
		t.Errorf("heap grew by %d B with %d slow clients, %d B a client; want at most %d", grown, n, grown/n, slowClientHeap)
	}

	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// bigValueSize is the size of TestBigValues's value, made on the fly so
// that the test's own side holds no copy of it.
const bigValueSize = 100 << 20

// bigValueHeap bounds the heap the proxy takes while the big value is in
// flight. Measured: about 3 times the value during the SET and 4 during
// the GET, as it is held, once each, by
//   - SET: the session's read buffer, doubled up to 128 MiB as the value
//     arrives (the smaller ones before it left to the GC), and the backend
//     connection's write buffer the command is copied into (router);
//   - GET: the backend connection's read buffer, doubled up to 128 MiB in
//     the same way, the reply's copy in the request (router), and the part
//     the client has not read yet, copied into its backlog (output.go).
//
// Five times the value leaves room for garbage not yet collected; one
// holder more would pass it.
const bigValueHeap = 5 * bigValueSize

func bigValueByte(i int) byte { return 'a' + byte(i%26) }

// bigValueReader yields the bytes of the big value.
type bigValueReader struct{ off int }

func (r *bigValueReader) Read(p []byte) (int, error) {
	if r.off == bigValueSize {
		return 0, io.EOF
	}
	n := min(len(p), bigValueSize-r.off)
	for i := range n {
		p[i] = bigValueByte(r.off + i)
	}
	r.off += n
	return n, nil
}

// TestBigValues: a client that sets a 100 MB value and reads it back
// costs the proxy memory in proportion to that value while it is in
// flight, and none once it is gone, while another client goes on with
// small commands; three such clients in turn cost no more than one.
func TestBigValues(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	// Another client's GETs keep taking the pooled batch state the big
	// SET was parsed into, and parse fewer arguments into it.
	var gets atomic.Int64
	getErr := make(chan error, 1)
	stopGets := make(chan struct{})
	getter := limitsDial(t, p.Addr)
	go func() {
		for {
			select {
			case <-stopGets:
				return
			default:
			}
			getter.nc.Write(ptEncode("GET", "limits:absent"))
			if err := getter.expect("$-1\r\n"); err != nil {
				getErr <- err
				return
			}
			gets.Add(1)
		}
	}()
	defer close(stopGets)

	base := limitsHeap()
	for round := range 3 {
		from := gets.Load()
		conn := limitsDial(t, p.Addr)
		set := limitsPeakHeap(func() { limitsBigSet(t, conn) })
		get := limitsPeakHeap(func() { limitsBigGet(t, conn) })
		conn.nc.Close()
		t.Logf("client %d: heap peak +%d MiB during SET, +%d MiB during GET of a %d MiB value",
			round, (int64(set)-int64(base))>>20, (int64(get)-int64(base))>>20, bigValueSize>>20)
		for _, peak := range []uint64{set, get} {
			if grown := int64(peak) - int64(base); grown > bigValueHeap {
				t.Errorf("client %d: the heap grew by %d MiB while a %d MiB value was in flight; want at most %d MiB",
					round, grown>>20, bigValueSize>>20, bigValueHeap>>20)
			}
		}
		// Given back once the client is gone, while the other client's
		// commands keep the pooled state in use.
		clustertest.Eventually(t, 10*time.Second, func() error {
			if h := limitsHeap(); h > base+8<<20 {
				return fmt.Errorf("client %d gone: the heap is %d MiB over its %d MiB before", round, (h-base)>>20, base>>20)
			}
			return nil
		})
		select {
		case err := <-getErr:
			t.Fatalf("the other client: %v", err)
		default:
		}
		if gets.Load() == from {
			t.Fatalf("the other client made no GET while client %d came and went", round)
		}
	}
}

// limitsPeakHeap runs f and returns the highest heap in use seen meanwhile.
func limitsPeakHeap(f func()) uint64 {
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak
}

// limitsBigSet sets the big value, streaming it.
func limitsBigSet(t *testing.T, conn *limitsConn) {
	t.Helper()
	conn.nc.SetDeadline(time.Now().Add(60 * time.Second))
	w := bufio.NewWriterSize(conn.nc, 64<<10)
	fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$10\r\nlimits:big\r\n$%d\r\n", bigValueSize)
	if _, err := io.Copy(w, &bigValueReader{}); err != nil {
		t.Fatal(err)
	}
	w.WriteString("\r\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := conn.expect("+OK\r\n"); err != nil {
		t.Fatalf("SET of %d bytes: %v", bigValueSize, err)
	}
}

// limitsBigGet gets the big value and checks it as it streams in.
func limitsBigGet(t *testing.T, conn *limitsConn) {
	t.Helper()
	conn.nc.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.nc.Write(ptEncode("GET", "limits:big")); err != nil {
		t.Fatal(err)
	}
	header := "$" + strconv.Itoa(bigValueSize) + "\r\n"
	got := make([]byte, len(header))
	if _, err := io.ReadFull(conn.rd, got); err != nil || string(got) != header {
		t.Fatalf("GET of %d bytes: %q, %v; want %q", bigValueSize, got, err, header)
	}
	chunk := make([]byte, 64<<10)
	want := make([]byte, len(chunk))
	for off := 0; off < bigValueSize; {
		n, err := conn.rd.Read(chunk[:min(len(chunk), bigValueSize-off)])
		for i := range n {
			want[i] = bigValueByte(off + i)
		}
		if !bytes.Equal(chunk[:n], want[:n]) {
			t.Fatalf("GET: the value differs within bytes %d to %d", off, off+n)
		}
		off += n
		if err != nil {
			t.Fatalf("GET, after %d bytes of the value: %v", off, err)
		}
	}
	if _, err := io.ReadFull(conn.rd, got[:2]); err != nil || string(got[:2]) != "\r\n" {
		t.Fatalf("GET: the value ends with %q, %v", got[:2], err)
	}
}

// TestIdleSessionForgetsBigCommand: once a command that needed a grown
// read buffer is answered, the batch state going back to the pool holds
// no argument into that buffer, which would keep it from the GC for as
// long as other sessions reuse the state (and parse fewer arguments).
func TestIdleSessionForgetsBigCommand(t *testing.T) {
	big := make([]byte, 4*readBufferSize)
	in := ptEncode("SET", "k", string(bytes.Repeat([]byte("v"), 3*readBufferSize)))
	copy(big, in)
	b := &batch{wake: make(chan struct{}, 1)}
	s := &session{rbuf: big, rend: len(in), batch: b}
	if n, err := parseRequest(s.rbuf[:s.rend], &s.parsed, &s.inline); n != len(in) || err != nil {
		t.Fatalf("parseRequest = %d, %v", n, err)
	}
	s.rpos = s.rend
	s.releaseBuffers()
	if s.batch != nil || s.rbuf != nil {
		t.Fatal("the idle session kept its buffers")
	}
	for i, a := range b.parsed.args[:cap(b.parsed.args)] {
		if limitsPointsInto(a, big) {
			t.Errorf("argument %d of the pooled batch still points into the grown buffer", i)
		}
	}
	if limitsPointsInto(b.parsed.raw, big) {
		t.Error("the pooled batch's raw command still points into the grown buffer")
	}
}

// limitsPointsInto reports whether sub's pointer, empty or not, lies in
// outer's storage: what keeps outer alive.
func limitsPointsInto(sub, outer []byte) bool {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	return p != 0 && p >= o && p <= o+uintptr(cap(outer))
}
