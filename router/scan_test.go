package router

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/resp"
)

// scanComplete are whole replies, one per RESP2/RESP3 type and nesting.
var scanComplete = []struct {
	name, in string
}{
	{"simple string", "+OK\r\n"},
	{"empty simple string", "+\r\n"},
	{"error", "-ERR unknown command 'foo'\r\n"},
	{"moved", "-MOVED 3999 127.0.0.1:6381\r\n"},
	{"integer", ":1000\r\n"},
	{"negative integer", ":-1\r\n"},
	{"bulk", "$3\r\nfoo\r\n"},
	{"empty bulk", "$0\r\n\r\n"},
	{"binary bulk with CRLF inside", "$8\r\na\r\nb\r\n\x00\xff\r\n"},
	{"null bulk", "$-1\r\n"},
	{"empty array", "*0\r\n"},
	{"null array", "*-1\r\n"},
	{"array", "*2\r\n$3\r\nfoo\r\n:1\r\n"},
	{"nested arrays", "*2\r\n*1\r\n+a\r\n*2\r\n:1\r\n$-1\r\n"},
	{"array of nulls and empties", "*4\r\n*-1\r\n*0\r\n$0\r\n\r\n$-1\r\n"},
	{"deep nesting", strings.Repeat("*1\r\n", 100) + ":7\r\n"},
	{"RESP3 null", "_\r\n"},
	{"RESP3 double", ",3.14\r\n"},
	{"RESP3 double inf", ",-inf\r\n"},
	{"RESP3 big number", "(3492890328409238509324850943850943825024385\r\n"},
	{"RESP3 boolean", "#t\r\n"},
	{"RESP3 blob error", "!21\r\nSYNTAX invalid syntax\r\n"},
	{"RESP3 null blob error", "!-1\r\n"},
	{"RESP3 verbatim", "=15\r\ntxt:Some string\r\n"},
	{"RESP3 set", "~2\r\n+a\r\n+b\r\n"},
	{"RESP3 empty set", "~0\r\n"},
	{"RESP3 map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"},
	{"RESP3 empty map", "%0\r\n"},
	{"RESP3 map of aggregates", "%1\r\n*2\r\n:1\r\n:2\r\n~1\r\n%1\r\n_\r\n#f\r\n"},
	{
		"RESP3 attribute before a value",
		"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
	},
	{"RESP3 attribute inside an array", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n"},
	{"RESP3 push", ">3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n"},
}

func TestScanReplyComplete(t *testing.T) {
	for _, tt := range scanComplete {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if n, err := ScanReply(in); n != len(in) || err != nil {
				t.Errorf("ScanReply(%q) = %d, %v; want %d, nil", in, n, err, len(in))
			}
			// Followed by the next reply (pipelining): only the first.
			two := append(bytes.Clone(in), "+OK\r\n"...)
			if n, err := ScanReply(two); n != len(in) || err != nil {
				t.Errorf("ScanReply(%q) = %d, %v; want %d, nil", two, n, err, len(in))
			}
		})
	}
}

// TestScanReplyTruncated cuts every complete reply at every byte: a part of
// a reply is "not yet" (0, nil), never an error.
func TestScanReplyTruncated(t *testing.T) {
	for _, tt := range scanComplete {
		for i := range len(tt.in) {
			part := []byte(tt.in[:i]) // exactly i bytes: no peeking past them
			if n, err := ScanReply(part); n != 0 || err != nil {
				t.Errorf("ScanReply(%q) = %d, %v; want 0, nil", part, n, err)
			}
		}
	}
}

func TestScanReplyIncomplete(t *testing.T) {
	for _, in := range []string{
		"",
		"$536870912\r\n",       // the largest bulk allowed, none of it here yet
		"*2147483647\r\n",      // the largest aggregate allowed
		"%1073741823\r\n",      // a map of 2^31-2 elements
		"*3\r\n:1\r\n:2\r\n",   // an element missing
		"|1\r\n+a\r\n+b\r\n",   // the attribute, not yet its value
		"*2\r\n:1\r\n$3\r\nab", // half of the second element
	} {
		if n, err := ScanReply([]byte(in)); n != 0 || err != nil {
			t.Errorf("ScanReply(%q) = %d, %v; want 0, nil", in, n, err)
		}
	}
}

func TestScanReplyErrors(t *testing.T) {
	for _, in := range []string{
		"x\r\n",             // unknown type
		"\r\n",              // no type
		"OK\r\n",            // no type byte
		"+OK\n",             // bare LF
		"*1\r\n+OK\n",       // bare LF inside an aggregate
		"$3\r\nfooXY",       // bulk not ended by CRLF
		"$3\r\nfoo\n\r",     // bulk ended by LF CR
		"$-2\r\n",           // only -1 is null
		"$-0\r\n",           // not a length
		"$+3\r\nfoo\r\n",    // not a length
		"$\r\n",             // no length
		"$abc\r\n",          // not a number
		"$3 \r\nfoo\r\n",    // trailing space
		"$536870913\r\n",    // over proto-max-bulk-len
		"$123456789012\r\n", // too many digits
		"*2147483648\r\n",   // aggregate too large
		"*-2\r\n",           // only -1 is null
		"*1\r\nx\r\n",       // garbage inside an aggregate
		"%-1\r\n",           // a map cannot be null
		"|-1\r\n",           // nor an attribute
		"%2147483648\r\n",   // map too large
		"!3\r\nabcd\r\n",    // blob error of the wrong length
		"=-5\r\n",           // verbatim with a bad length
	} {
		n, err := ScanReply([]byte(in))
		if n != 0 || !errors.Is(err, ErrProtocol) {
			t.Errorf("ScanReply(%q) = %d, %v; want 0, ErrProtocol", in, n, err)
		}
	}
}

// TestScanReplyAllocs: framing a reply allocates nothing.
func TestScanReplyAllocs(t *testing.T) {
	for _, tt := range scanComplete {
		in := []byte(tt.in)
		if allocs := testing.AllocsPerRun(50, func() { ScanReply(in) }); allocs != 0 {
			t.Errorf("ScanReply(%q): %.1f allocs per run, want 0", in, allocs)
		}
	}
}

// scanTidwallSafe reports whether tidwall/resp may be given b: it allocates
// every bulk and array its header announces before reading it, so a header
// larger than the input would cost up to 512 MiB per fuzz run.
func scanTidwallSafe(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '$' && b[i] != '*' {
			continue
		}
		j := i + 1
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] >= '0' && b[j] <= '9') {
			j++
		}
		if n, err := strconv.ParseInt(string(b[i+1:j]), 10, 64); err == nil && n > int64(len(b)) {
			return false
		}
		if j-i > 20 {
			return false
		}
	}
	return true
}

// scanTidwall reads one RESP2 value from the start of b with tidwall/resp,
// returning how many bytes it took, or false when it read no whole value.
func scanTidwall(b []byte) (resp.Value, int, bool) {
	if len(b) == 0 || !strings.ContainsRune("+-:$*", rune(b[0])) || !scanTidwallSafe(b) {
		return resp.Value{}, 0, false
	}
	v, n, err := resp.NewReader(bytes.NewReader(b)).ReadValue()
	return v, n, err == nil
}

// scanCanonical reports whether raw is exactly how a server writes v: the
// re-encoding gives the same bytes, and no simple string or error holds a
// '\n'. tidwall/resp is more lenient than redis-server's writer and than
// ScanReply in three deliberate ways, which this excludes:
//   - a simple string or error line may hold a bare '\n' (tidwall reads up
//     to the first "\r\n"); ScanReply ends the line at the first '\n' and
//     rejects it, as RESP forbids CR and LF in simple strings;
//   - lengths in any form strconv.ParseInt takes ("+3", "-0", any negative
//     for null, any number of leading zeros); ScanReply takes only digits
//     (at most 11) and "-1";
//   - integers are decoded; ScanReply frames ":" lines without reading
//     them, so it accepts what tidwall refuses (only the other direction
//     is checked).
func scanCanonical(v resp.Value, raw []byte) bool {
	enc, err := v.MarshalRESP()
	if err != nil || !bytes.Equal(enc, raw) {
		return false
	}
	var hasLF func(v resp.Value) bool
	hasLF = func(v resp.Value) bool {
		switch v.Type() {
		case resp.SimpleString, resp.Error:
			return strings.ContainsAny(v.String(), "\n")
		case resp.Array:
			for _, e := range v.Array() {
				if hasLF(e) {
					return true
				}
			}
		}
		return false
	}
	return !hasLF(v)
}

// TestScanReplyTidwallOracle pins down the oracle FuzzScanReply uses: it
// agrees with ScanReply on every RESP2 reply of the table, and the inputs
// it reads leniently are the documented differences, which ScanReply
// refuses.
func TestScanReplyTidwallOracle(t *testing.T) {
	agreed := 0
	for _, tt := range scanComplete {
		in := []byte(tt.in)
		v, m, ok := scanTidwall(in)
		if !ok {
			continue // a RESP3 type
		}
		agreed++
		if !scanCanonical(v, in[:m]) || m != len(in) {
			t.Errorf("tidwall/resp reads %q as %d bytes, canonical %v", in, m, scanCanonical(v, in[:m]))
		}
	}
	if agreed < 10 {
		t.Errorf("only %d RESP2 replies checked against tidwall/resp", agreed)
	}
	for _, in := range []string{"+a\nb\r\n", "$+3\r\nfoo\r\n", "$-5\r\n", "*-0\r\n", "$000000000003\r\nfoo\r\n"} {
		v, m, ok := scanTidwall([]byte(in))
		if !ok || m != len(in) || scanCanonical(v, []byte(in)) {
			t.Errorf("tidwall/resp: %q read %v, %d bytes, canonical %v; want a lenient whole read", in, ok, m, scanCanonical(v, []byte(in)))
		}
		if n, err := ScanReply([]byte(in)); n != 0 || !errors.Is(err, ErrProtocol) {
			t.Errorf("ScanReply(%q) = %d, %v; want ErrProtocol", in, n, err)
		}
	}
}

// FuzzScanReply checks ScanReply against tidwall/resp as a reference
// reader of RESP2: whenever tidwall reads a canonical value from the start
// of the input, ScanReply frames exactly the bytes it took; on inputs that
// tidwall reads leniently (see scanCanonical), ScanReply either agrees or
// refuses, and never frames a different length. Whatever the input,
// ScanReply does not panic, frames at most the input, frames the same
// length from the framed bytes alone, and calls every prefix incomplete.
func FuzzScanReply(f *testing.F) {
	for _, tt := range scanComplete {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("+a\nb\r\n"))
	f.Add([]byte("$0003\r\nabc\r\n"))
	f.Add([]byte("*1\r\n:+5\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ScanReply(b)
		if n < 0 || n > len(b) {
			t.Fatalf("ScanReply framed %d of %d bytes", n, len(b))
		}
		if err != nil && (n != 0 || !errors.Is(err, ErrProtocol)) {
			t.Fatalf("ScanReply = %d, %v; an error must be ErrProtocol with 0", n, err)
		}
		if err == nil && n > 0 {
			if m, err := ScanReply(b[:n:n]); m != n || err != nil {
				t.Fatalf("ScanReply(whole) = %d; ScanReply(first %d bytes) = %d, %v", n, n, m, err)
			}
			if n <= 512 {
				for i := range n {
					if m, err := ScanReply(b[:i:i]); m != 0 || err != nil {
						t.Fatalf("prefix of %d bytes of a %d-byte reply: %d, %v", i, n, m, err)
					}
				}
			}
			// Where ScanReply frames a value tidwall also reads, they agree
			// on its length.
			if _, m, ok := scanTidwall(b[:n:n]); ok && m != n {
				t.Fatalf("ScanReply frames %d bytes of %q, tidwall/resp reads %d", n, b, m)
			}
		}
		v, m, ok := scanTidwall(b)
		if !ok {
			return
		}
		if scanCanonical(v, b[:m]) {
			if n != m || err != nil {
				t.Fatalf("tidwall/resp reads %d bytes of %q; ScanReply = %d, %v", m, b, n, err)
			}
		} else if err == nil && n != m {
			t.Fatalf("tidwall/resp reads %d bytes of %q (leniently); ScanReply frames %d", m, b, n)
		}
	})
}

func BenchmarkScanReply(b *testing.B) {
	array := []byte("*10\r\n")
	for i := range 10 {
		array = append(array, "$6\r\nvalue"+strconv.Itoa(i)+"\r\n"...)
	}
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"OK", []byte("+OK\r\n")},
		{"Bulk32", []byte("$32\r\n" + strings.Repeat("v", 32) + "\r\n")},
		{"Array10", array},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				if n, err := ScanReply(bc.in); n != len(bc.in) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
