package proxy

// A write whose connection to its master broke after it was written may or
// may not have run. The client of a plain redis-server never has to guess,
// so the proxy sends such a write again when running it twice cannot be
// told from running it once: the same effect and the same reply. Other
// writes are answered "may or may not have run" (router.MsgConnLost).
type resendKind uint8

const (
	resendNever  resendKind = iota
	resendAlways            // SETEX, PSETEX, MSET: the value is set and OK is the reply, whatever was there
	resendSet               // SET: as SETEX unless an option makes it depend on what was there
)

func resendOf(name string) resendKind {
	switch name {
	case "setex", "psetex", "mset":
		return resendAlways
	case "set":
		return resendSet
	}
	return resendNever
}

// idempotent reports whether this run of the command may be sent again
// after its connection broke.
func (c *Command) idempotent(args [][]byte) bool {
	switch c.resend {
	case resendAlways:
		return true
	case resendSet:
		return plainSet(args)
	}
	return false
}

// plainSet reports whether a SET has only expiry options. NX, XX and GET
// (and any option this proxy does not know) make its reply or effect
// depend on the value before it: not sent twice. EX and PX set a TTL from
// when the write runs, which a second run renews, as a client's own retry
// of the same SET would.
func plainSet(args [][]byte) bool {
	for i := 3; i < len(args); i++ {
		switch a := args[i]; {
		case equalFoldLower(a, "keepttl"):
		case equalFoldLower(a, "ex"), equalFoldLower(a, "px"), equalFoldLower(a, "exat"), equalFoldLower(a, "pxat"):
			i++
		default:
			return false
		}
	}
	return true
}
