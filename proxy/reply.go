package proxy

import "strconv"

// Encoders for the replies the proxy makes itself, in the style of
// strconv.AppendInt: they append to b and return it.

func appendError(b []byte, msg string) []byte {
	b = append(b, '-')
	b = append(b, msg...)
	return append(b, '\r', '\n')
}

func appendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulk(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkString(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendNullBulk(b []byte) []byte { return append(b, "$-1\r\n"...) }

func appendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendCommand encodes args as a RESP array of bulk strings, the form a
// master expects.
func appendCommand(b []byte, args [][]byte) []byte {
	b = appendArrayHeader(b, len(args))
	for _, a := range args {
		b = appendBulk(b, a)
	}
	return b
}

// RESP3 types, and their RESP2 forms for a session that speaks RESP2, as
// redis-server encodes them: a map is a flat array of keys and values, a
// set an array, a null a null bulk string (or a null array where the
// command's RESP2 reply is an array), a double a bulk string, a boolean
// an integer, a verbatim string a bulk string.

func appendMapHeader(b []byte, n int, proto int) []byte {
	if proto < 3 {
		return appendArrayHeader(b, 2*n)
	}
	b = append(b, '%')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendSetHeader(b []byte, n int, proto int) []byte {
	if proto < 3 {
		return appendArrayHeader(b, n)
	}
	b = append(b, '~')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendNull is a null where RESP2 has a null bulk string.
func appendNull(b []byte, proto int) []byte {
	if proto < 3 {
		return appendNullBulk(b)
	}
	return append(b, "_\r\n"...)
}

// appendNullArray is a null where RESP2 has a null array.
func appendNullArray(b []byte, proto int) []byte {
	if proto < 3 {
		return append(b, "*-1\r\n"...)
	}
	return append(b, "_\r\n"...)
}

func appendBool(b []byte, v bool, proto int) []byte {
	if proto < 3 {
		if v {
			return appendInt(b, 1)
		}
		return appendInt(b, 0)
	}
	if v {
		return append(b, "#t\r\n"...)
	}
	return append(b, "#f\r\n"...)
}

// appendVerbatim is a text reply (INFO, CLIENT LIST): a verbatim string of
// format "txt" in RESP3, a bulk string in RESP2.
func appendVerbatim(b []byte, s string, proto int) []byte {
	if proto < 3 {
		return appendBulkString(b, s)
	}
	b = append(b, '=')
	b = strconv.AppendInt(b, int64(len(s)+4), 10)
	b = append(b, "\r\ntxt:"...)
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendPushHeader is an out-of-band message's header: a push in RESP3,
// an array in RESP2.
func appendPushHeader(b []byte, n int, proto int) []byte {
	if proto < 3 {
		return appendArrayHeader(b, n)
	}
	b = append(b, '>')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}
