package router

import (
	"bytes"
	"errors"
)

// ErrProtocol reports bytes that are not a RESP reply.
var ErrProtocol = errors.New("router: protocol error")

// MaxBulkLen bounds the length of one bulk string in a reply, as
// proto-max-bulk-len bounds it in redis-server (512 MiB by default).
const MaxBulkLen = 512 << 20

// maxAggregateLen bounds the element count of one aggregate header, so a
// corrupt header cannot make the scanner believe a reply is endless.
const maxAggregateLen = 1 << 31

// ScanReply returns the length of the RESP2 or RESP3 value at the start of
// b, or 0 when b holds only a part of it. It only frames the value: nothing
// is decoded or allocated, and the bytes are forwarded as they are.
func ScanReply(b []byte) (int, error) {
	n, _, _, err := scanFrom(b, 0, 1)
	return n, err
}

// replyScanner frames replies that arrive in pieces without going over
// what it already framed: a reply of a million elements read 64 KiB at a
// time would otherwise be scanned from its start after every read.
type replyScanner struct {
	pos, need int // where the last scan stopped in the current reply, and what it still needed
}

// scan is ScanReply for the reply at the start of b, resuming where the
// previous call on the same reply stopped. b must start with the same
// reply, possibly with more of it.
func (s *replyScanner) scan(b []byte) (int, error) {
	if s.need == 0 {
		s.pos, s.need = 0, 1
	}
	n, pos, need, err := scanFrom(b, s.pos, s.need)
	if n > 0 || err != nil {
		s.need = 0
		return n, err
	}
	s.pos, s.need = pos, need
	return 0, nil
}

// scanFrom frames from pos, where need values are still to be framed. When
// b ends first it returns 0 and the last position between two values, with
// what was still needed there.
func scanFrom(b []byte, pos, need int) (n, stopPos, stopNeed int, err error) {
	for need > 0 {
		start, startNeed := pos, need
		if pos >= len(b) {
			return 0, start, startNeed, nil
		}
		typ := b[pos]
		nl := bytes.IndexByte(b[pos+1:], '\n')
		if nl < 0 {
			return 0, start, startNeed, nil
		}
		line := b[pos+1 : pos+1+nl] // header without its '\n'
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return 0, 0, 0, ErrProtocol
		}
		line = line[:len(line)-1]
		pos += nl + 2
		need--
		switch typ {
		case '+', '-', ':', ',', '(', '#', '_':
			// a simple value: the header line is the whole value
		case '$', '!', '=':
			n, ok := parseLen(line)
			if !ok || n > MaxBulkLen {
				return 0, 0, 0, ErrProtocol
			}
			if n < 0 {
				continue // null bulk string
			}
			if len(b)-pos < n+2 {
				return 0, start, startNeed, nil
			}
			if b[pos+n] != '\r' || b[pos+n+1] != '\n' {
				return 0, 0, 0, ErrProtocol
			}
			pos += n + 2
		case '*', '~', '>':
			n, ok := parseLen(line)
			if !ok || n >= maxAggregateLen {
				return 0, 0, 0, ErrProtocol
			}
			if n > 0 {
				need += n
			}
		case '%':
			n, ok := parseLen(line)
			if !ok || n < 0 || n >= maxAggregateLen {
				return 0, 0, 0, ErrProtocol
			}
			need += 2 * n
		case '|':
			// An attribute map precedes the value it describes; both are
			// one frame.
			n, ok := parseLen(line)
			if !ok || n < 0 || n >= maxAggregateLen {
				return 0, 0, 0, ErrProtocol
			}
			need += 2*n + 1
		default:
			return 0, 0, 0, ErrProtocol
		}
	}
	return pos, 0, 0, nil
}

// parseLen parses a RESP length: a decimal integer, -1 for null.
func parseLen(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 11 {
		return 0, false
	}
	if b[0] == '-' {
		if len(b) == 2 && b[1] == '1' {
			return -1, true
		}
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
