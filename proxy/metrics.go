package proxy

import "github.com/slotproxy/slotproxy/metrics"

// Why the proxy closed a client's connection, the label values of
// slotproxy_client_disconnections_total.
const (
	closedOutputLimit   = iota // clients.max_output_bytes of replies unread
	closedIdleTimeout          // clients.idle_timeout
	closedProtocolError        // a request that is not RESP
	closedCrossProtocol        // an HTTP request line
	numClosedReasons
)

var closedReasons = [numClosedReasons]string{"output_limit", "idle_timeout", "protocol_error", "cross_protocol"}

// closedBy counts a client the proxy disconnected.
func (s *Server) closedBy(reason int) {
	if s.stats != nil {
		s.stats.closed[reason].Add(1)
	}
}

// RegisterMetrics adds the client side's families to reg: commands by
// name and result, their latency by family, client connections and bytes.
// A Server built with Options.NoStats registers the connection counts
// only.
func (s *Server) RegisterMetrics(reg *metrics.Registry) {
	reg.MustRegister("slotproxy_clients_connected", "Client connections open.",
		metrics.Gauge, func(emit metrics.Emit) { emit(float64(s.clients.cur.Load())) })
	reg.MustRegister("slotproxy_clients_parked",
		"Idle client connections waiting without a goroutine of their own.",
		metrics.Gauge, func(emit metrics.Emit) { emit(float64(s.parkedN.Load())) })
	reg.MustRegister("slotproxy_clients_blocked", "Clients waiting in a blocking command (BLPOP, XREAD BLOCK, ...).",
		metrics.Gauge, func(emit metrics.Emit) { emit(float64(s.blockedClients())) })
	reg.MustRegister("slotproxy_client_connections_total", "Client connections accepted, including those then refused.",
		metrics.Counter, func(emit metrics.Emit) { emit(float64(s.accepted.Load())) })
	reg.MustRegister("slotproxy_client_connections_rejected_total",
		"Client connections refused at once, by reason: clients.max_clients reached, or the proxy shutting down.",
		metrics.Counter, func(emit metrics.Emit) {
			emit(float64(s.rejected.Load()), metrics.Label{Name: "reason", Value: "max_clients"})
			emit(float64(s.rejectedDraining.Load()), metrics.Label{Name: "reason", Value: "shutting_down"})
		})
	st := s.stats
	if st == nil {
		return
	}
	reg.MustRegister("slotproxy_client_disconnections_total",
		"Client connections the proxy closed, by reason.",
		metrics.Counter, func(emit metrics.Emit) {
			for i, name := range closedReasons {
				emit(float64(st.closed[i].Load()), metrics.Label{Name: "reason", Value: name})
			}
		})
	reg.MustRegister("slotproxy_client_received_bytes_total", "Bytes read from clients.",
		metrics.Counter, func(emit metrics.Emit) {
			in, _ := s.netBytes()
			emit(float64(in))
		})
	reg.MustRegister("slotproxy_client_sent_bytes_total", "Bytes of replies and messages handed to client connections.",
		metrics.Counter, func(emit metrics.Emit) {
			_, out := s.netBytes()
			emit(float64(out))
		})
	reg.MustRegister("slotproxy_commands_total",
		"Commands answered, by top-level command name (\"other\" for unknown ones) and result: error (an error reply), redirected (a MOVED or ASK was followed), retried (sent again after TRYAGAIN, CLUSTERDOWN or a failure), else ok.",
		metrics.Counter, func(emit metrics.Emit) {
			names := commandNames()
			for id, name := range names {
				for r := range numResults {
					if n := st.commands[id][r].Load(); n > 0 {
						emit(float64(n), metrics.Label{Name: "command", Value: name}, metrics.Label{Name: "result", Value: resultNames[r]})
					}
				}
			}
		})
	reg.MustRegisterHistogram("slotproxy_command_duration_seconds",
		"Time from reading a command to writing its reply, by command family (from the command's ACL categories).",
		func(emit metrics.EmitHistogram) {
			for f, h := range st.latency {
				emit(h, metrics.Label{Name: "family", Value: familyName(uint8(f))})
			}
		})
}

// blockedClients counts the clients waiting in a blocking command.
func (s *Server) blockedClients() int {
	n := 0
	s.mu.Lock()
	for c := range s.sessions {
		if c.blockedOn.Load() != nil {
			n++
		}
	}
	s.mu.Unlock()
	return n
}
