package proxy

import (
	"strconv"

	"github.com/slotproxy/slotproxy/router"
)

// value is a decoded reply, for the few commands whose replies the proxy
// reads rather than forwards: the parts of a command sent to every master
// (KEYS, DBSIZE, INFO, SCRIPT EXISTS, ...). The data path never decodes.
// tidwall/resp, which parses the COMMAND table, knows RESP2 only; these
// replies come in the client's protocol, RESP3 included.
type value struct {
	typ   byte    // the RESP type byte: '+', '-', ':', '$', '*', '%', '~', '_', ...
	str   []byte  // simple and bulk strings, errors, verbatim text without its format; aliases the reply
	num   int64   // integers
	elems []value // arrays, sets, pushes; a map as keys and values in turn
	null  bool
}

func (v value) isError() bool { return v.typ == '-' || v.typ == '!' }

// isArray reports whether v is a list of values in either protocol.
func (v value) isArray() bool { return (v.typ == '*' || v.typ == '~') && !v.null }

// parseValue decodes one whole reply; ok is false when b is not exactly
// one well-formed reply.
func parseValue(b []byte) (value, bool) {
	n, err := router.ScanReply(b)
	if err != nil || n != len(b) {
		return value{}, false
	}
	v, _ := decodeValue(b)
	return v, true
}

// decodeValue decodes the value at the start of b, which router.ScanReply
// has framed, and returns it with its length.
func decodeValue(b []byte) (value, int) {
	nl := 0
	for b[nl] != '\n' {
		nl++
	}
	v := value{typ: b[0]}
	line := b[1 : nl-1]
	pos := nl + 1
	switch v.typ {
	case '+', '-', ',', '(':
		v.str = line
	case ':':
		v.num, _ = strconv.ParseInt(string(line), 10, 64)
	case '#':
		v.num = 0
		if len(line) == 1 && line[0] == 't' {
			v.num = 1
		}
	case '_':
		v.null = true
	case '$', '!', '=':
		n, _ := strconv.Atoi(string(line))
		if n < 0 {
			v.null = true
			break
		}
		v.str = b[pos : pos+n]
		if v.typ == '=' && len(v.str) >= 4 {
			v.str = v.str[4:] // "txt:"
		}
		pos += n + 2
	case '*', '~', '>', '%', '|':
		n, _ := strconv.Atoi(string(line))
		if n < 0 {
			v.null = true
			break
		}
		if v.typ == '%' || v.typ == '|' {
			n *= 2
		}
		v.elems = make([]value, n)
		for i := range v.elems {
			e, size := decodeValue(b[pos:])
			v.elems[i] = e
			pos += size
		}
		if v.typ == '|' { // an attribute: the value it describes follows
			e, size := decodeValue(b[pos:])
			return e, pos + size
		}
	}
	return v, pos
}
