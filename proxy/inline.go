package proxy

import "bytes"

// parseInline parses an inline command: a line of words, as telnet users and
// redis-cli in a pipe send. Words are split exactly as redis-server's
// sdssplitargs splits them, quotes and escapes included, so the proxy runs
// the arguments the server would have run.
func parseInline(b []byte, req *request, buf *[]byte) (int, error) {
	// redis-server looks for the newline with strchr, which stops at a NUL
	// byte: a line with a NUL before its newline is not complete yet.
	search := b
	if z := bytes.IndexByte(b, 0); z >= 0 {
		search = b[:z]
	}
	nl := bytes.IndexByte(search, '\n')
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
	// Words are unescaped into buf, which never needs more room than the
	// line itself: earlier words never move.
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
		start := len(out)
		var ok bool
		out, i, ok = splitWord(line, i, out)
		if !ok {
			return 0, errUnbalancedQuotes
		}
		req.args = append(req.args, out[start:len(out):len(out)])
	}
	*buf = out
	return nl + 1, nil
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// splitWord reads one word starting at line[i], appending its bytes to out.
// Quotes may open anywhere in a word; a closing quote must be followed by a
// space or the end of the line. It returns the index after the word and
// false when the quotes do not balance.
func splitWord(line []byte, i int, out []byte) ([]byte, int, bool) {
	var quote byte // '"' or '\'' inside quotes, 0 outside
	for i < len(line) {
		c := line[i]
		switch {
		case quote == 0:
			switch c {
			case ' ', '\n', '\r', '\t', 0:
				return out, i, true
			case '"', '\'':
				quote = c
			default:
				out = append(out, c)
			}
			i++
		case c == quote:
			i++
			if i < len(line) && !isSpace(line[i]) {
				return out, i, false
			}
			return out, i, true
		case quote == '"' && c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
			out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
			i += 4
		case quote == '"' && c == '\\' && i+1 < len(line):
			out = append(out, unescape(line[i+1]))
			i += 2
		case quote == '\'' && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			out = append(out, '\'')
			i += 2
		default:
			out = append(out, c)
			i++
		}
	}
	return out, i, quote == 0
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
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
