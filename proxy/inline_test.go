package proxy

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// FuzzParseInline checks the inline parser on its own, whatever the first
// byte: a line is complete at its first newline before any NUL, as
// redis-server's strchr finds it; its words are sdssplitargs's
// (ptSplitArgs); an incomplete line is refused only past the inline limit;
// and the words, quoted back with hex escapes, parse to themselves.
func FuzzParseInline(f *testing.F) {
	for _, s := range []string{
		"PING\r\n", "PING\n", "SET k v\r\nGET k\r\n", "  \t \r\n", "\r\n",
		`SET k "a b" 'c d'` + "\r\n", `ECHO "\x41\x4g\q\n\\"` + "\n", `ECHO 'it\'s'` + "\r\n",
		`ECHO "a"b` + "\r\n", `ECHO 'a` + "\r\n", "ECHO a\"b c\"\r\n", "ECHO a\vb\fc\r\n",
		"PI\x00NG\r\n", "GET a\rb\r\n", "*1\r\n", "no newline",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req request
		var buf []byte
		n, err := parseInline(in, &req, &buf)
		search := in
		if z := bytes.IndexByte(in, 0); z >= 0 {
			search = in[:z]
		}
		nl := bytes.IndexByte(search, '\n')
		switch {
		case nl < 0:
			want := error(nil)
			if len(in) > maxInlineLen {
				want = errBigInline
			}
			if n != 0 || err != want {
				t.Fatalf("%q has no complete line: parseInline = %d, %v; want 0, %v", in, n, err, want)
			}
			return
		case err != nil:
			if n != 0 {
				t.Fatalf("%q: error %v after %d bytes", in, err, n)
			}
		case n != nl+1:
			t.Fatalf("%q: the line ends at byte %d, parseInline took %d", in, nl+1, n)
		}

		line := bytes.TrimSuffix(in[:nl], []byte("\r"))
		want, ok := ptSplitArgs(line)
		if !ok {
			if err != errUnbalancedQuotes {
				t.Fatalf("redis-server refuses %q (unbalanced quotes); parseInline = %d, %v, %q", line, n, err, req.args)
			}
			return
		}
		if err != nil {
			t.Fatalf("redis-server reads %q as %q; parseInline: %v", line, want, err)
		}
		got := ptStrings(req.args)
		if !slices.Equal(got, want) {
			t.Fatalf("redis-server reads %q as %q; parseInline as %q", line, want, got)
		}
		if req.raw != nil {
			t.Fatalf("raw = %q, want nil for an inline command", req.raw)
		}
		for _, a := range req.args {
			if !ptWithin(a, buf) || cap(a) != len(a) {
				t.Fatalf("word %q is not a capped slice of the inline buffer", a)
			}
		}

		// Blind to what follows the line.
		var req2 request
		var buf2 []byte
		if n2, err2 := parseInline(in[:n:n], &req2, &buf2); n2 != n || err2 != nil || !slices.Equal(ptStrings(req2.args), got) {
			t.Fatalf("%q alone: %d, %v, %q; with what follows: %d, %q", in[:n], n2, err2, req2.args, n, got)
		}

		// Every word quoted back, byte by byte, reads as itself.
		var quoted bytes.Buffer
		for i, w := range got {
			if i > 0 {
				quoted.WriteByte(' ')
			}
			quoted.WriteByte('"')
			for _, c := range []byte(w) {
				fmt.Fprintf(&quoted, `\x%02x`, c)
			}
			quoted.WriteByte('"')
		}
		quoted.WriteString("\r\n")
		if quoted.Len() > maxInlineLen {
			return
		}
		n3, err3 := parseInline(quoted.Bytes(), &req2, &buf2)
		if n3 != quoted.Len() || err3 != nil || !slices.Equal(ptStrings(req2.args), got) {
			t.Fatalf("%q quoted back as %q parses to %d, %v, %q", got, quoted.Bytes(), n3, err3, req2.args)
		}
	})
}
