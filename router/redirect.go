package router

import (
	"bytes"
	"net"
	"strconv"
)

// redirect handles an error reply that is the proxy's business rather than
// the client's: MOVED and ASK are followed, TRYAGAIN and CLUSTERDOWN are
// retried. It reports whether it took r over; if not, reply goes to the
// client as it is.
func (rt *Router) redirect(r *Request, reply []byte, from string, st *nodeStats) bool {
	switch {
	case bytes.HasPrefix(reply, []byte("-MOVED ")), bytes.HasPrefix(reply, []byte("-ASK ")):
		ask := reply[1] == 'A'
		if ask {
			st.ask.Add(1)
		} else {
			st.moved.Add(1)
		}
		slot, addr, ok := parseRedirect(reply, from)
		if !ok {
			return false
		}
		if r.redirects >= rt.opts.MaxRedirects {
			r.fail(msgTooManyMoves)
			return true
		}
		r.redirects++
		if ask {
			r.pre = askingCmd
		} else {
			rt.slots.Patch(slot, addr)
		}
		r.target = addr
		rt.route(r)
		return true
	case r.Script != nil && bytes.HasPrefix(reply, []byte("-NOSCRIPT")):
		// Loaded where it ran before, not on this node: load it here
		// and run it again, once.
		r.pre = r.Script
		r.Script = nil
		r.target = from
		rt.route(r)
		return true
	case bytes.HasPrefix(reply, []byte("-TRYAGAIN")):
		st.tryagain.Add(1)
		rt.retry(r, string(trimCRLF(reply[1:])), retryTryAgain)
		return true
	case bytes.HasPrefix(reply, []byte("-CLUSTERDOWN")):
		st.clusterdown.Add(1)
		rt.slots.Refresh("clusterdown")
		rt.retry(r, string(trimCRLF(reply[1:])), retryClusterDown)
		return true
	}
	return false
}

// parseRedirect reads "-MOVED 3999 127.0.0.1:6381\r\n" (or ASK). A node that
// does not know its own IP sends ":6381"; it then means the host the reply
// came from.
func parseRedirect(reply []byte, from string) (slot uint16, addr string, ok bool) {
	f := bytes.Fields(trimCRLF(reply))
	if len(f) != 3 {
		return 0, "", false
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 16)
	if err != nil || n >= 16384 {
		return 0, "", false
	}
	host, port, err := net.SplitHostPort(string(f[2]))
	if err != nil {
		return 0, "", false
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return 0, "", false
	}
	if host == "" {
		host, _, _ = net.SplitHostPort(from)
	}
	return uint16(n), net.JoinHostPort(host, port), true
}

func trimCRLF(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n")
}
