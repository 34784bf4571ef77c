package proxy

import "github.com/slotproxy/slotproxy/router"

// CONFIG GET is answered by one master, as it was, with the values of the
// parameters that hold credentials (sensitiveConfig, those redis-server
// redacts from its slow log) replaced: requirepass and masterauth are the
// cluster's password, which the proxy's clients need not know (they may
// have a password of their own, clients.password).
// hiddenValue stands for a secret parameter's value that is set.
const hiddenValue = "(hidden by slotproxy)"

func (s *session) configGet(args [][]byte) {
	r := s.jobRequest(appendCommand(nil, args), router.NoSlot, "", true)
	s.startJob(&routedJob{r: r, merge: func(s *session, b []byte, v value) []byte {
		// RESP2 answers name, value, name, value...; RESP3 a map, whose
		// elems are in the same order.
		for i := 0; i+1 < len(v.elems); i += 2 {
			if sensitiveConfig(v.elems[i].str) && len(v.elems[i+1].str) > 0 {
				v.elems[i+1].str = []byte(hiddenValue)
			}
		}
		return appendValue(b, v, s.proto)
	}}, false)
}
