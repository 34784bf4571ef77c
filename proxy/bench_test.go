package proxy

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// memBackend answers like a master with canned replies over in-memory
// pipes: enough to measure the proxy's own cost per request, without a
// redis-server's. It is for benchmarks only; behaviour is tested against
// real servers.
func memBackend(nc net.Conn) {
	defer nc.Close()
	buf := make([]byte, 64<<10)
	var out []byte
	var req request
	var inline []byte
	start, end := 0, 0
	for {
		n, err := nc.Read(buf[end:])
		if err != nil {
			return
		}
		end += n
		out = out[:0]
		for {
			used, err := parseRequest(buf[start:end], &req, &inline)
			if err != nil || used == 0 {
				break
			}
			start += used
			switch name := req.args[0]; {
			case bytes.EqualFold(name, []byte("GET")):
				out = append(out, "$3\r\nbar\r\n"...)
			case bytes.EqualFold(name, []byte("MGET")):
				out = appendArrayHeader(out, len(req.args)-1)
				for range req.args[1:] {
					out = append(out, "$3\r\nbar\r\n"...)
				}
			case bytes.EqualFold(name, []byte("DEL")), bytes.EqualFold(name, []byte("EXISTS")):
				out = appendInt(out, int64(len(req.args)-1))
			default:
				out = append(out, "+OK\r\n"...)
			}
		}
		copy(buf, buf[start:end])
		end -= start
		start = 0
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// benchProxy wires a server and a router to three in-memory masters and
// returns the client end of a session.
func benchProxy(b *testing.B) net.Conn {
	b.Helper()
	return benchProxyOver(b, false)
}

// benchNoStats runs the session benchmarks on a server that keeps no
// stats, to measure what counting commands, latencies and bytes costs.
var benchNoStats = false

// benchProxyOver is benchProxy with loopback TCP instead of pipes when tcp
// is set, both to the client and to the masters: the sockets' own read and
// write path (raw system calls through syscall.RawConn) is then the one
// measured.
func benchProxyOver(b *testing.B, tcp bool) net.Conn {
	b.Helper()
	pipe := func() (net.Conn, net.Conn) {
		if !tcp {
			return net.Pipe()
		}
		return clustertest.TCPPair(b)
	}
	table, err := slotmap.BuildTable([]slotmap.Assignment{
		{Master: slotmap.Node{Addr: "m0:1"}, Ranges: []slotmap.SlotRange{{Start: 0, End: 5460}}},
		{Master: slotmap.Node{Addr: "m1:1"}, Ranges: []slotmap.SlotRange{{Start: 5461, End: 10922}}},
		{Master: slotmap.Node{Addr: "m2:1"}, Ranges: []slotmap.SlotRange{{Start: 10923, End: 16383}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	rt := router.New(slotmap.Static(table), router.Options{
		Dial: func(context.Context, string) (net.Conn, error) {
			proxySide, backendSide := pipe()
			go memBackend(backendSide)
			return proxySide, nil
		},
	})
	srv := New(rt, Options{NoStats: benchNoStats})
	client, serverSide := pipe()
	srv.start(serverSide)
	b.Cleanup(func() {
		client.Close()
		srv.Close()
		rt.Close()
	})
	return client
}

// roundTrips sends req, which holds n commands, b.N/n times and reads all
// replies each time.
func roundTrips(b *testing.B, client net.Conn, req []byte, n int) {
	buf := make([]byte, 64<<10)
	exchange := func() {
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		got, end := 0, 0
		for got < n {
			m, err := client.Read(buf[end:])
			if err != nil {
				b.Fatal(err)
			}
			end += m
			pos := 0
			for {
				size, err := router.ScanReply(buf[pos:end])
				if err != nil {
					b.Fatal(err)
				}
				if size == 0 {
					break
				}
				if buf[pos] == '-' {
					b.Fatalf("error reply %q", buf[pos:pos+size])
				}
				pos += size
				got++
			}
			end = copy(buf, buf[pos:end])
		}
	}
	exchange() // dial the backends before measuring
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		exchange()
	}
}

func benchCommands(n int, format string) []byte {
	var b []byte
	for i := range n {
		args := bytes.Fields([]byte(strings.ReplaceAll(format, "%d", strconv.Itoa(i))))
		b = appendCommand(b, args)
	}
	return b
}

func BenchmarkSessionGETNoStats(b *testing.B) {
	benchNoStats = true
	defer func() { benchNoStats = false }()
	roundTrips(b, benchProxyOver(b, true), benchCommands(1, "GET key:%d"), 1)
}

func BenchmarkSessionSETNoStats(b *testing.B) {
	benchNoStats = true
	defer func() { benchNoStats = false }()
	roundTrips(b, benchProxyOver(b, true), benchCommands(1, "SET key:%d value"), 1)
}

func BenchmarkSessionGET(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(1, "GET key:%d"), 1)
}

func BenchmarkSessionSET(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(1, "SET key:%d "+string(bytes.Repeat([]byte("x"), 32))), 1)
}

// GET and SET over loopback TCP: what the pipe benchmarks measure plus the
// kernel's socket cost, and the proof that the socket path allocates
// nothing either.
func BenchmarkSessionGETTCP(b *testing.B) {
	roundTrips(b, benchProxyOver(b, true), benchCommands(1, "GET key:%d"), 1)
}

func BenchmarkSessionSETTCP(b *testing.B) {
	roundTrips(b, benchProxyOver(b, true), benchCommands(1, "SET key:%d "+string(bytes.Repeat([]byte("x"), 32))), 1)
}

func BenchmarkSessionGETPipeline16(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(16, "GET key:%d"), 16)
}

func BenchmarkSessionSETPipeline16(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(16, "SET key:%d "+string(bytes.Repeat([]byte("x"), 32))), 16)
}

func BenchmarkParseGET(b *testing.B) {
	in := benchCommands(1, "GET key:%d")
	var req request
	var inline []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if n, err := parseRequest(in, &req, &inline); n != len(in) || err != nil {
			b.Fatal(n, err)
		}
	}
}

// An MGET of 10 keys in 10 slots: split into one MGET per slot, sent to
// the three masters and merged back in key order.
func BenchmarkSessionMGET10(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(1, "MGET k:0 k:1 k:2 k:3 k:4 k:5 k:6 k:7 k:8 k:9"), 1)
}

func BenchmarkSessionMSET10(b *testing.B) {
	roundTrips(b, benchProxy(b), benchCommands(1, "MSET k:0 v k:1 v k:2 v k:3 v k:4 v k:5 v k:6 v k:7 v k:8 v k:9 v"), 1)
}

// The merge alone: ten one-key parts back into one array.
func BenchmarkMergeMGET10(b *testing.B) {
	f := &fanout{op: fanMGet}
	for i := range 10 {
		f.parts = append(f.parts, fanPart{keys: 1, req: &router.Request{Reply: []byte("*1\r\n$32\r\n" + string(bytes.Repeat([]byte{'a' + byte(i)}, 32)) + "\r\n")}})
		f.keyPart = append(f.keyPart, int32(i))
	}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = f.appendMerged(out[:0])
	}
	if n, err := router.ScanReply(out); err != nil || n != len(out) || !bytes.HasPrefix(out, []byte("*10\r\n$32\r\naaaa")) {
		b.Fatalf("merged %q", out)
	}
}
