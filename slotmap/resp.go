package slotmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// This file holds the little RESP2 that discovery needs: encoding a command
// and reading a reply into a generic value. Discovery talks to a node a few
// times a minute, so clarity beats speed here; the data path never uses it.

// ErrProtocol is returned when a node's reply is not well-formed RESP2 or
// exceeds the reader's bounds.
var ErrProtocol = errors.New("slotmap: protocol error")

// Bounds on a reply. The largest legitimate reply, CLUSTER SHARDS of a
// 1000-node cluster, is well under a megabyte and four arrays deep.
const (
	maxReplyBytes = 64 << 20
	maxReplyDepth = 16
)

// kind is a RESP2 type, named by its type byte.
type kind byte

const (
	kindSimple kind = '+'
	kindError  kind = '-'
	kindInt    kind = ':'
	kindBulk   kind = '$'
	kindArray  kind = '*'
)

func (k kind) String() string {
	switch k {
	case kindSimple:
		return "a simple string"
	case kindError:
		return "an error"
	case kindInt:
		return "an integer"
	case kindBulk:
		return "a bulk string"
	case kindArray:
		return "an array"
	}
	return fmt.Sprintf("type %q", byte(k))
}

// value is one RESP2 reply. str holds simple strings, errors and bulk
// strings; null marks a null bulk string ($-1) or a null array (*-1).
type value struct {
	kind  kind
	null  bool
	str   string
	int   int64
	array []value
}

// text returns the string of a bulk or simple string ("" for a null one)
// and whether v is one.
func (v value) text() (string, bool) {
	switch v.kind {
	case kindBulk, kindSimple:
		return v.str, true
	}
	return "", false
}

// replyError is an error reply sent by a node, its text unchanged.
type replyError string

func (e replyError) Error() string { return string(e) }

// replyReader reads RESP2 replies. A peer controls every length it
// announces, so nothing is allocated from a length until the bytes it
// announces have arrived, and a reply may use at most maxReplyBytes.
type replyReader struct {
	r     *bufio.Reader
	limit int // bytes one reply may use: maxReplyBytes, lowered by tests
	left  int // bytes the current reply may still use
}

func newReplyReader(r io.Reader) *replyReader {
	return &replyReader{r: bufio.NewReader(r), limit: maxReplyBytes}
}

// read returns the next reply. It returns io.EOF when the stream ends
// cleanly before a reply, io.ErrUnexpectedEOF when it ends inside one. An
// error reply is a value of kindError, not an error.
func (rr *replyReader) read() (value, error) {
	rr.left = rr.limit
	if _, err := rr.r.Peek(1); err != nil {
		return value{}, err
	}
	v, err := rr.value(1)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return v, err
}

func (rr *replyReader) value(depth int) (value, error) {
	line, err := rr.line()
	if err != nil {
		return value{}, err
	}
	v := value{kind: kind(line[0])}
	rest := string(line[1:])
	switch v.kind {
	case kindSimple, kindError:
		v.str = rest
		return v, nil
	case kindInt:
		v.int, err = strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return value{}, fmt.Errorf("%w: integer %q", ErrProtocol, rest)
		}
		return v, nil
	case kindBulk:
		n, err := rr.length(rest)
		if err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		if n+2 > rr.left {
			return value{}, fmt.Errorf("%w: bulk string of %d bytes exceeds the %d-byte reply limit", ErrProtocol, n, rr.limit)
		}
		v.str, err = rr.bulk(n)
		return v, err
	case kindArray:
		n, err := rr.length(rest)
		if err != nil || n < 0 {
			v.null = n < 0
			return v, err
		}
		// Every element takes at least 3 bytes ("+\r\n").
		if n > rr.left/3 {
			return value{}, fmt.Errorf("%w: array of %d elements exceeds the %d-byte reply limit", ErrProtocol, n, rr.limit)
		}
		if depth > maxReplyDepth {
			return value{}, fmt.Errorf("%w: arrays nested more than %d deep", ErrProtocol, maxReplyDepth)
		}
		// Room only for the elements whose bytes may already be here.
		v.array = make([]value, 0, min(n, rr.r.Buffered()/3))
		for range n {
			e, err := rr.value(depth + 1)
			if err != nil {
				return value{}, err
			}
			v.array = append(v.array, e)
		}
		return v, nil
	}
	return value{}, fmt.Errorf("%w: unexpected type byte %q", ErrProtocol, line[0])
}

// line returns the next CRLF-terminated line without its CRLF; it is valid
// until the next read. A line must fit the bufio buffer (4 KiB): every
// header does, and so do the error and status lines discovery meets.
func (rr *replyReader) line() ([]byte, error) {
	line, err := rr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, rr.r.Size())
	}
	if err != nil {
		return nil, err
	}
	if rr.left -= len(line); rr.left < 0 {
		return nil, fmt.Errorf("%w: reply exceeds %d bytes", ErrProtocol, rr.limit)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: malformed line %q", ErrProtocol, line)
	}
	return line[:len(line)-2], nil
}

// length parses the length of a bulk string or array: -1 means null.
func (rr *replyReader) length(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 {
		return 0, fmt.Errorf("%w: length %q", ErrProtocol, s)
	}
	return n, nil
}

// bulk reads n bytes and their CRLF, in chunks of at most the bufio
// buffer, so memory grows only with the bytes that arrive.
func (rr *replyReader) bulk(n int) (string, error) {
	rr.left -= n + 2
	var sb strings.Builder
	for sb.Len() < n {
		chunk, err := rr.r.Peek(min(n-sb.Len(), rr.r.Size()))
		sb.Write(chunk)
		rr.r.Discard(len(chunk))
		if err != nil {
			return "", err
		}
	}
	crlf, err := rr.r.Peek(2)
	if err != nil {
		return "", err
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return "", fmt.Errorf("%w: bulk string not followed by CRLF", ErrProtocol)
	}
	rr.r.Discard(2)
	return sb.String(), nil
}
