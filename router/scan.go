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
	pos := 0
	need := 1 // values still to frame
	for need > 0 {
		if pos >= len(b) {
			return 0, nil
		}
		typ := b[pos]
		nl := bytes.IndexByte(b[pos+1:], '\n')
		if nl < 0 {
			return 0, nil
		}
		line := b[pos+1 : pos+1+nl] // header without its '\n'
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return 0, ErrProtocol
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
				return 0, ErrProtocol
			}
			if n < 0 {
				continue // null bulk string
			}
			if len(b)-pos < n+2 {
				return 0, nil
			}
			if b[pos+n] != '\r' || b[pos+n+1] != '\n' {
				return 0, ErrProtocol
			}
			pos += n + 2
		case '*', '~', '>':
			n, ok := parseLen(line)
			if !ok || n >= maxAggregateLen {
				return 0, ErrProtocol
			}
			if n > 0 {
				need += n
			}
		case '%':
			n, ok := parseLen(line)
			if !ok || n < 0 || n >= maxAggregateLen {
				return 0, ErrProtocol
			}
			need += 2 * n
		case '|':
			// An attribute map precedes the value it describes; both are
			// one frame.
			n, ok := parseLen(line)
			if !ok || n < 0 || n >= maxAggregateLen {
				return 0, ErrProtocol
			}
			need += 2*n + 1
		default:
			return 0, ErrProtocol
		}
	}
	return pos, nil
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
