package proxy

import "bytes"

// Limits on what a client may send, as redis-server has them.
const (
	// maxMultibulkLen bounds the argument count of one command.
	maxMultibulkLen = 1024 * 1024
	// maxBulkLen bounds one argument (proto-max-bulk-len).
	maxBulkLen = 512 << 20
	// maxInlineLen bounds an inline command, and the header line of a
	// multibulk request (PROTO_INLINE_MAX_SIZE).
	maxInlineLen = 64 << 10
)

// protocolError is a malformed request: the client gets
// "-ERR Protocol error: <text>" and is disconnected, as redis-server does.
type protocolError string

func (e protocolError) Error() string { return "Protocol error: " + string(e) }

// The errors are kept as error values: converting a protocolError to an
// error at each use would allocate.
var (
	errInvalidMultibulkLen error = protocolError("invalid multibulk length")
	errInvalidBulkLen      error = protocolError("invalid bulk length")
	errBigInline           error = protocolError("too big inline request")
	errBigMbulkCount       error = protocolError("too big mbulk count string")
	errBigBulkCount        error = protocolError("too big bulk count string")
	errUnbalancedQuotes    error = protocolError("unbalanced quotes in request")
)

// request is one parsed command; args slice into the read buffer (or, for an
// inline request with quotes, into the session's inline buffer). raw is a
// multibulk request's own bytes, ready to be forwarded as they are; it is
// nil for an inline request, which is re-encoded before it is forwarded.
type request struct {
	args [][]byte
	raw  []byte
}

// parseRequest parses the request at the start of b into req, reusing its
// storage. It returns how many bytes the request took, or 0 when b holds only
// a part of it. An empty request (an empty inline line, "*0") takes its bytes
// and leaves req.args empty.
func parseRequest(b []byte, req *request, inlineBuf *[]byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if b[0] != '*' {
		return parseInline(b, req, inlineBuf)
	}
	req.args = req.args[:0]
	n, pos, ok, err := parseHeader(b, 1, errBigMbulkCount)
	if !ok || err != nil {
		return 0, err
	}
	if n > maxMultibulkLen {
		return 0, errInvalidMultibulkLen
	}
	for range n {
		if pos >= len(b) {
			return 0, nil
		}
		if b[pos] != '$' {
			return 0, protocolError("expected '$', got '" + string(b[pos]) + "'")
		}
		size, next, ok, err := parseHeader(b, pos+1, errBigBulkCount)
		if !ok || err != nil {
			return 0, err
		}
		if size < 0 || size > maxBulkLen {
			return 0, errInvalidBulkLen
		}
		if len(b)-next < size+2 {
			return 0, nil
		}
		// Like redis-server, skip the two terminator bytes unchecked.
		req.args = append(req.args, b[next:next+size:next+size])
		pos = next + size + 2
	}
	req.raw = b[:pos]
	return pos, nil
}

// parseHeader reads the decimal number that starts at b[pos] and ends with
// "\r\n". ok is false when the line is not complete yet. A line longer than
// the inline limit is tooBig.
func parseHeader(b []byte, pos int, tooBig error) (n, next int, ok bool, err error) {
	nl := bytes.IndexByte(b[pos:], '\n')
	if nl < 0 {
		if len(b)-pos > maxInlineLen {
			return 0, 0, false, tooBig
		}
		return 0, 0, false, nil
	}
	line := b[pos : pos+nl]
	next = pos + nl + 1
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	n, valid := atoi(line)
	if !valid {
		if tooBig == errBigMbulkCount {
			return 0, 0, false, errInvalidMultibulkLen
		}
		return 0, 0, false, errInvalidBulkLen
	}
	return n, next, true, nil
}

// atoi parses a signed decimal integer of at most 18 digits, which is all
// the protocol needs; anything else is invalid.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 19 || (len(b) == 19 && b[0] != '-') {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
