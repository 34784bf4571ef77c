package proxy

import "bytes"

// parseInline parses an inline command: a line of space separated words, as
// redis-cli in a pipe and telnet users send. Words may be quoted as
// redis-server's sdssplitargs allows.
func parseInline(b []byte, req *request, buf *[]byte) (int, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(b) > maxInlineLen {
			return 0, errBigInline
		}
		return 0, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	req.args = req.args[:0]
	req.raw = nil
	// Unquoted words are slices of line; quoted ones are unescaped into
	// buf, which never needs more room than the line itself, so earlier
	// words never move.
	if cap(*buf) < len(line) {
		*buf = make([]byte, 0, len(line))
	}
	out := (*buf)[:0]
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		if line[i] != '"' && line[i] != '\'' {
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			req.args = append(req.args, line[i:j:j])
			i = j
			continue
		}
		start := len(out)
		var ok bool
		out, i, ok = unquote(line, i, out)
		if !ok {
			return 0, errUnbalancedQuotes
		}
		req.args = append(req.args, out[start:len(out):len(out)])
	}
	*buf = out
	return nl + 1, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// unquote reads the quoted word starting at line[i], appending its bytes to
// out. It returns the index after the word, and false when the quotes do
// not balance or the closing quote is not followed by a space or the end.
func unquote(line []byte, i int, out []byte) ([]byte, int, bool) {
	q := line[i]
	i++
	for i < len(line) {
		c := line[i]
		switch {
		case q == '"' && c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
			out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
			i += 4
		case q == '"' && c == '\\' && i+1 < len(line):
			switch e := line[i+1]; e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b':
				out = append(out, '\b')
			case 'a':
				out = append(out, '\a')
			default:
				out = append(out, e)
			}
			i += 2
		case q == '\'' && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			out = append(out, '\'')
			i += 2
		case c == q:
			i++
			if i < len(line) && !isSpace(line[i]) {
				return out, i, false
			}
			return out, i, true
		default:
			out = append(out, c)
			i++
		}
	}
	return out, i, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
