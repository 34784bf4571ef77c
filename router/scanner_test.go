package router

import (
	"bytes"
	"fmt"
	"testing"
)

// The resuming scanner, fed growing prefixes of a reply (as reads deliver
// it), finds the same end as one scan of the whole, for every cut.
func TestReplyScannerResumes(t *testing.T) {
	var big bytes.Buffer
	big.WriteString("*3\r\n")
	big.WriteString("$5\r\nhello\r\n")
	big.WriteString("*2\r\n:1\r\n%1\r\n+k\r\n$-1\r\n")
	big.WriteString("|1\r\n+a\r\n:2\r\n,1.5\r\n")
	for _, reply := range [][]byte{big.Bytes(), []byte("+OK\r\n"), []byte("$3\r\nabc\r\n"), []byte("*0\r\n")} {
		want, err := ScanReply(reply)
		if err != nil || want != len(reply) {
			t.Fatalf("ScanReply(%q) = %d, %v", reply, want, err)
		}
		in := append(bytes.Clone(reply), "+next\r\n"...)
		for step := 1; step <= len(reply); step++ {
			var sc replyScanner
			got := 0
			for end := step; got == 0; end += step {
				n, err := sc.scan(in[:min(end, len(in))])
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				got = n
			}
			if got != want {
				t.Fatalf("reading %q %d bytes at a time: framed %d, want %d", reply, step, got, want)
			}
			// The scanner starts afresh on the next reply.
			if n, _ := sc.scan(in[want:]); n != len("+next\r\n") {
				t.Fatalf("next reply framed as %d", n)
			}
		}
	}
}

// A reply of many elements read in small pieces costs about one pass.
func BenchmarkReplyScannerChunked(b *testing.B) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "*%d\r\n", 100000)
	for i := range 100000 {
		fmt.Fprintf(&buf, "$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
	}
	reply := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(reply)))
	for b.Loop() {
		var sc replyScanner
		for end := 4096; ; end += 4096 {
			if n, _ := sc.scan(reply[:min(end, len(reply))]); n > 0 {
				break
			}
		}
	}
}
