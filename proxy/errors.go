package proxy

import (
	"bytes"
	"strings"
)

// Error replies, in redis-server's words where it has them.
const (
	msgNoAuth          = "NOAUTH Authentication required."
	msgWrongPass       = "WRONGPASS invalid username-password pair or user is disabled."
	msgNoPasswordSet   = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	msgHelloNoAuth     = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	msgNoProto         = "NOPROTO unsupported protocol version"
	msgCrossSlot       = "CROSSSLOT Keys in request don't hash to the same slot"
	msgSelectCluster   = "ERR SELECT is not allowed in cluster mode"
	msgNotInteger      = "ERR value is not an integer or out of range"
	msgSyntax          = "ERR syntax error"
	msgMaxClients      = "ERR max number of clients reached"
	msgNotSupportedFmt = "ERR slotproxy does not support '%s' yet"
	// msgNotSupportedWhyFmt names the command and the reason.
	msgNotSupportedWhyFmt = "ERR slotproxy does not support '%s': %s"
)

// unknownCommand is redis-server's reply to a command it does not know:
// the name and the first arguments, each cut to 128 bytes, quoted. Each
// also ends at its first NUL byte, as the C string redis formats it from.
func unknownCommand(args [][]byte) string {
	var list []byte
	for _, a := range args[1:] {
		if len(list) >= 128 {
			break
		}
		n := 128 - len(list)
		list = append(list, '\'')
		list = append(list, cstr(a, n)...)
		list = append(list, '\'', ' ')
	}
	return sanitize("ERR unknown command '" + string(cstr(args[0], 128)) +
		"', with args beginning with: " + string(list))
}

// unknownSubcommand is redis-server's reply to an unknown subcommand of a
// container command such as OBJECT or CLIENT.
func unknownSubcommand(container string, sub []byte) string {
	return sanitize("ERR unknown subcommand '" + string(cstr(sub, 128)) + "'. Try " +
		strings.ToUpper(container) + " HELP.")
}

func wrongArity(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

func cut(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// cstr is b as C's "%.*s" prints it: up to its first NUL, at most n bytes.
func cstr(b []byte, n int) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return cut(b, n)
}

// sanitize keeps an error reply on one line, as redis-server does with
// the text it echoes back: byte by byte, whatever the encoding.
func sanitize(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
