package proxy

import "bytes"

// Limits on what a client may send, as redis-server has them.
const (
	// maxMultibulkLen bounds the argument count of one command. Redis 7
	// accepts up to INT_MAX; the proxy, which buffers a command whole
	// before routing it, keeps the older bound of one million.
	maxMultibulkLen = 1024 * 1024
	// Before AUTH, as redis-server does, a command may have at most 10
	// arguments of at most 16 KiB each.
	maxUnauthMultibulkLen = 10
	maxUnauthBulkLen      = 16 << 10
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
	errUnauthMultibulkLen  error = protocolError("unauthenticated multibulk length")
	errUnauthBulkLen       error = protocolError("unauthenticated bulk length")
)

// request is one parsed command; args slice into the read buffer (or, for an
// inline request with quotes, into the session's inline buffer). raw is a
// multibulk request's own bytes, ready to be forwarded as they are; it is
// nil for an inline request, which is re-encoded before it is forwarded.
type request struct {
	args [][]byte
	raw  []byte
	// unauth applies the limits of a client that has yet to authenticate.
	unauth bool
	// resumeN and resumePos (when not 0) say where the parse of an
	// incomplete multibulk command stopped: its argument count and the
	// offset of the next argument; args holds those before it. The bytes
	// must not have moved since (see forgetPartial).
	resumeN, resumePos int
}

// forgetPartial makes the next parse start over, after the bytes of an
// incomplete command moved.
func (req *request) forgetPartial() { req.resumePos = 0 }

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
	n, pos := req.resumeN, req.resumePos
	if pos == 0 {
		req.args = req.args[:0]
		cr, err := headerEnd(b, 0, errBigMbulkCount)
		if cr < 0 || err != nil {
			return 0, err
		}
		var valid bool
		if n, valid = string2ll(b[1:cr]); !valid {
			return 0, badHeader(b, 0, cr, errInvalidMultibulkLen, errBigMbulkCount)
		}
		if n > maxMultibulkLen {
			return 0, errInvalidMultibulkLen
		}
		if n > maxUnauthMultibulkLen && req.unauth {
			return 0, errUnauthMultibulkLen
		}
		pos = cr + 2
	}
	for len(req.args) < n {
		// A command arriving in pieces resumes here, at the argument the
		// last call stopped at, rather than from its first byte.
		req.resumeN, req.resumePos = n, pos
		if pos >= len(b) {
			return 0, nil
		}
		cr, err := headerEnd(b, pos, errBigBulkCount)
		if cr < 0 || err != nil {
			if err != nil {
				req.resumePos = 0
			}
			return 0, err
		}
		if b[pos] != '$' {
			err = badHeader(b, pos, cr, expectedDollar(b[pos]), errBigBulkCount)
			if err != nil {
				req.resumePos = 0
			}
			return 0, err
		}
		size, valid := string2ll(b[pos+1 : cr])
		if !valid {
			err = badHeader(b, pos, cr, errInvalidBulkLen, errBigBulkCount)
			if err != nil {
				req.resumePos = 0
			}
			return 0, err
		}
		if size < 0 || size > maxBulkLen {
			req.resumePos = 0
			return 0, errInvalidBulkLen
		}
		if size > maxUnauthBulkLen && req.unauth {
			req.resumePos = 0
			return 0, errUnauthBulkLen
		}
		next := cr + 2
		if len(b)-next < size+2 {
			return 0, nil
		}
		// Like redis-server, skip the two terminator bytes unchecked.
		req.args = append(req.args, b[next:next+size:next+size])
		pos = next + size + 2
	}
	req.resumePos = 0
	req.raw = b[:pos]
	return pos, nil
}

// headerEnd finds the '\r' that ends the header line starting at b[start]
// (its '*' or '$'), as redis-server does: the byte after the '\r' must
// have arrived but is not checked. It returns -1 when the line is not
// complete yet; a line with no '\r' within the inline limit is tooBig.
func headerEnd(b []byte, start int, tooBig error) (int, error) {
	cr := bytes.IndexByte(b[start:], '\r')
	if cr < 0 {
		return -1, lineTooBig(b, start, tooBig)
	}
	if start+cr+1 >= len(b) {
		return -1, nil
	}
	return start + cr, nil
}

func lineTooBig(b []byte, start int, tooBig error) error {
	if len(b)-start > maxInlineLen {
		return tooBig
	}
	return nil
}

// badHeader is the error for the header line b[start:cr], which is not a
// valid one. redis-server looks for its '\r' with strchr, which stops at
// a NUL byte: a line with a NUL is never complete, and is refused only
// once it grows too big, as a line without a '\r' is. (Checked on this
// error path only: a valid header holds no NUL.)
func badHeader(b []byte, start, cr int, invalid, tooBig error) error {
	if bytes.IndexByte(b[start:cr], 0) >= 0 {
		return lineTooBig(b, start, tooBig)
	}
	return invalid
}

// expectedDollar is the error for a bulk header starting with c, not '$':
// c as the raw byte, but a '\r' or '\n' turned into a space, as
// redis-server keeps an error reply on one line.
func expectedDollar(c byte) error {
	if c == '\r' || c == '\n' {
		c = ' '
	}
	return protocolError("expected '$', got '" + string([]byte{c}) + "'")
}

// string2ll parses a decimal integer as strictly as redis-server's function
// of that name: an optional '-', no '+', no leading zeros, no "-0", no
// overflow.
func string2ll(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case neg && v <= 1<<63:
		return -int(v), true
	case !neg && v < 1<<63:
		return int(v), true
	}
	return 0, false
}
