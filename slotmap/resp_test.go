package slotmap

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/slotproxy/slotproxy/internal/respenc"
)

// appendValue encodes v as a RESP2 server would: the inverse of
// replyReader, for round trips and for building replies in tests.
func appendValue(b []byte, v value) []byte {
	b = append(b, byte(v.kind))
	switch {
	case v.null:
		return append(b, "-1\r\n"...)
	case v.kind == kindInt:
		b = strconv.AppendInt(b, v.int, 10)
	case v.kind == kindBulk:
		b = strconv.AppendInt(b, int64(len(v.str)), 10)
		b = append(b, "\r\n"...)
		b = append(b, v.str...)
	case v.kind == kindArray:
		b = strconv.AppendInt(b, int64(len(v.array)), 10)
		b = append(b, "\r\n"...)
		for _, e := range v.array {
			b = appendValue(b, e)
		}
		return b
	default:
		b = append(b, v.str...)
	}
	return append(b, "\r\n"...)
}

func bulkV(s string) value     { return value{kind: kindBulk, str: s} }
func intV(n int64) value       { return value{kind: kindInt, int: n} }
func arrayV(vs ...value) value { return value{kind: kindArray, array: vs} }

// readAll reads every reply of in, and the error that ended the stream
// (nil for a clean end).
func readAll(in string) ([]value, error) {
	rr := newReplyReader(strings.NewReader(in))
	var vs []value
	for {
		v, err := rr.read()
		if err == io.EOF {
			return vs, nil
		}
		if err != nil {
			return vs, err
		}
		vs = append(vs, v)
	}
}

// sameValue compares values as the protocol does: an empty array and one
// read with spare capacity are the same.
func sameValue(a, b value) bool {
	if a.kind != b.kind || a.null != b.null || a.str != b.str || a.int != b.int || len(a.array) != len(b.array) {
		return false
	}
	for i := range a.array {
		if !sameValue(a.array[i], b.array[i]) {
			return false
		}
	}
	return true
}

func TestReplyReader(t *testing.T) {
	big := strings.Repeat("0123456789", 10_000) // 100 KB: many bufio buffers
	for _, tc := range []struct {
		name string
		in   string
		want []value
	}{
		{"simple", "+OK\r\n", []value{{kind: kindSimple, str: "OK"}}},
		{"empty simple", "+\r\n", []value{{kind: kindSimple}}},
		{"error", "-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n",
			[]value{{kind: kindError, str: "ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP."}}},
		{"integer", ":16383\r\n", []value{intV(16383)}},
		{"negative integer", ":-42\r\n", []value{intV(-42)}},
		{"bulk", "$5\r\nhello\r\n", []value{bulkV("hello")}},
		{"bulk with CRLF inside", "$4\r\na\r\nb\r\n", []value{bulkV("a\r\nb")}},
		{"empty bulk", "$0\r\n\r\n", []value{bulkV("")}},
		{"null bulk", "$-1\r\n", []value{{kind: kindBulk, null: true}}},
		{"null array", "*-1\r\n", []value{{kind: kindArray, null: true}}},
		{"empty array", "*0\r\n", []value{arrayV()}},
		{"bulk larger than the buffer", "$100000\r\n" + big + "\r\n", []value{bulkV(big)}},
		{"nested", "*2\r\n*3\r\n:1\r\n$-1\r\n*0\r\n*1\r\n-ERR x\r\n",
			[]value{arrayV(arrayV(intV(1), value{kind: kindBulk, null: true}, arrayV()), arrayV(value{kind: kindError, str: "ERR x"}))}},
		{"pipelined", "+OK\r\n:1\r\n$1\r\nx\r\n", []value{{kind: kindSimple, str: "OK"}, intV(1), bulkV("x")}},
		{"16 arrays deep", strings.Repeat("*1\r\n", 15) + "*0\r\n", []value{nest(16)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.in)
			if err != nil {
				t.Fatalf("read %q: %v", tc.in, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("read %d replies, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if !sameValue(got[i], tc.want[i]) {
					t.Errorf("reply %d = %+v, want %+v", i, got[i], tc.want[i])
				}
				if enc := string(appendValue(nil, got[i])); !strings.Contains(tc.in, enc) {
					t.Errorf("reply %d re-encodes as %q, not found in the input", i, enc)
				}
			}
		})
	}
}

// nest returns depth arrays, each holding the next; the innermost is empty.
func nest(depth int) value {
	v := arrayV()
	for range depth - 1 {
		v = arrayV(v)
	}
	return v
}

func TestReplyReaderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"RESP3 map", "%1\r\n+a\r\n+b\r\n", ErrProtocol},
		{"RESP3 null", "_\r\n", ErrProtocol},
		{"inline text", "OK\r\n", ErrProtocol},
		{"LF without CR", "+OK\n", ErrProtocol},
		{"empty line", "\r\n", ErrProtocol},
		{"bad integer", ":12a\r\n", ErrProtocol},
		{"bad length", "$abc\r\n", ErrProtocol},
		{"length below -1", "$-2\r\n", ErrProtocol},
		{"array length below -1", "*-5\r\n", ErrProtocol},
		{"bulk longer than announced", "$3\r\nabcde\r\n", ErrProtocol},
		{"17 arrays deep", strings.Repeat("*1\r\n", 16) + "*0\r\n", ErrProtocol},
		{"line over the buffer", "+" + strings.Repeat("x", 5000) + "\r\n", ErrProtocol},
		{"bulk over 64 MB", "$67108864\r\n", ErrProtocol},
		{"array over 64 MB", "*1000000000\r\n", ErrProtocol},
		{"truncated line", "+OK", io.ErrUnexpectedEOF},
		{"truncated after CR", "+OK\r", io.ErrUnexpectedEOF},
		{"bulk shorter than announced", "$10\r\nabc", io.ErrUnexpectedEOF},
		{"bulk without CRLF", "$3\r\nabc", io.ErrUnexpectedEOF},
		{"array shorter than announced", "*3\r\n:1\r\n:2\r\n", io.ErrUnexpectedEOF},
		{"nested array cut", "*2\r\n*2\r\n:1\r\n", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newReplyReader(strings.NewReader(tc.in)).read()
			if !errors.Is(err, tc.want) {
				t.Errorf("read %q = %+v, %v; want %v", tc.in, v, err, tc.want)
			}
		})
	}
}

// TestReplyReaderTruncated cuts a CLUSTER SHARDS-like reply at every byte:
// every cut is an unexpected EOF, none a value.
func TestReplyReaderTruncated(t *testing.T) {
	full := appendValue(nil, arrayV(arrayV(
		bulkV("slots"), arrayV(intV(0), intV(5460)),
		bulkV("nodes"), arrayV(arrayV(bulkV("id"), bulkV("abc"), bulkV("port"), intV(7000), bulkV("endpoint"), value{kind: kindBulk, null: true})),
	)))
	if _, err := newReplyReader(bytes.NewReader(full)).read(); err != nil {
		t.Fatalf("whole reply: %v", err)
	}
	for n := 1; n < len(full); n++ {
		v, err := newReplyReader(bytes.NewReader(full[:n])).read()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d (%q): %+v, %v; want unexpected EOF", n, full[:n], v, err)
		}
	}
	if _, err := newReplyReader(bytes.NewReader(nil)).read(); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

// TestReplyReaderLimit: the byte budget covers the whole reply, not only
// each length, and is renewed for every reply.
func TestReplyReaderLimit(t *testing.T) {
	reply := appendValue(nil, arrayV(bulkV(strings.Repeat("x", 40)), bulkV(strings.Repeat("y", 40))))
	rr := newReplyReader(bytes.NewReader(bytes.Repeat(reply, 2)))
	rr.limit = len(reply)
	for i := range 2 {
		if _, err := rr.read(); err != nil {
			t.Fatalf("reply %d of exactly the limit: %v", i, err)
		}
	}

	for name, in := range map[string][]byte{
		"bulk":     reply,
		"elements": appendValue(nil, arrayV(intV(1), intV(2), intV(3), intV(4), intV(5), intV(6), intV(7), intV(8), intV(9), intV(10))),
		"array":    []byte("*30\r\n"),
	} {
		rr := newReplyReader(bytes.NewReader(in))
		rr.limit = len(in) - 1
		if name == "array" {
			rr.limit = 80 // 30 elements need at least 90 bytes
		}
		if _, err := rr.read(); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s over the limit: %v, want ErrProtocol", name, err)
		}
	}
}

// TestReplyReaderAnnouncedLengths: lengths the peer announces but does not
// send cost no memory.
func TestReplyReaderAnnouncedLengths(t *testing.T) {
	for _, in := range []string{
		"$1000000000\r\nabc",               // refused at once: over 64 MB
		"$60000000\r\nabc",                 // within the limit, then EOF
		"*20000000\r\n:1\r\n:2\r\n",        // within the limit, then EOF
		"*2\r\n*20000000\r\n$60000000\r\n", // both, nested
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := newReplyReader(strings.NewReader(in)).read()
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%q: no error", in)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
			t.Errorf("%q: allocated %d bytes", in, alloc)
		}
	}
}

func TestAppendCommand(t *testing.T) {
	got := string(respenc.AppendCommand([]byte("x"), "AUTH", "", "pä ss\r\n"))
	want := "x*3\r\n$4\r\nAUTH\r\n$0\r\n\r\n$8\r\npä ss\r\n\r\n"
	if got != want {
		t.Errorf("AppendCommand = %q, want %q", got, want)
	}
	// What a server reads as a request is the same array a client's
	// reader reads back.
	v, err := newReplyReader(strings.NewReader(got[1:])).read()
	if err != nil || !sameValue(v, arrayV(bulkV("AUTH"), bulkV(""), bulkV("pä ss\r\n"))) {
		t.Errorf("read back %+v, %v", v, err)
	}
}

// FuzzReplyReader: no input panics or hangs the reader, and whatever it
// accepts re-encodes to bytes it reads back as the same value.
func FuzzReplyReader(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":-1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n*1\r\n:1\r\n$0\r\n\r\n", "$10\r\nabc", "*3\r\n:1\r\n", "%1\r\n", strings.Repeat("*1\r\n", 20),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := newReplyReader(bytes.NewReader(in))
		rr.limit = 1 << 20
		for {
			v, err := rr.read()
			if err != nil {
				return
			}
			enc := appendValue(nil, v)
			again, err := newReplyReader(bytes.NewReader(enc)).read()
			if err != nil || !sameValue(v, again) {
				t.Fatalf("%+v encodes as %q, read back as %+v, %v", v, enc, again, err)
			}
		}
	})
}
