package router

import "github.com/slotproxy/slotproxy/metrics"

// RegisterMetrics adds the router's families to reg. They are read from
// NodeStats at scrape time: one scrape, one pass over the nodes per family.
func (rt *Router) RegisterMetrics(reg *metrics.Registry) {
	nodes := func(each func(n *NodeStat, emit metrics.Emit)) func(metrics.Emit) {
		return func(emit metrics.Emit) {
			ns := rt.NodeStats()
			for i := range ns {
				each(&ns[i], emit)
			}
		}
	}
	node := func(n *NodeStat) metrics.Label { return metrics.Label{Name: "node", Value: n.Addr} }
	reg.MustRegister("slotproxy_ready",
		"1 when the slot table covers all 16384 slots and every master has a working connection (/readyz answers 200), else 0.",
		metrics.Gauge, func(emit metrics.Emit) {
			if ok, _ := rt.Ready(); ok {
				emit(1)
			} else {
				emit(0)
			}
		})
	reg.MustRegister("slotproxy_backend_connections",
		"Connections open to a node: shared (multiplexed) ones, and dedicated ones (transactions, blocking commands, Pub/Sub) in use or idle.",
		metrics.Gauge, nodes(func(n *NodeStat, emit metrics.Emit) {
			role := metrics.Label{Name: "role", Value: n.Role}
			emit(float64(n.Shared), node(n), role, metrics.Label{Name: "kind", Value: "shared"})
			emit(float64(n.Dedicated), node(n), role, metrics.Label{Name: "kind", Value: "dedicated"})
		}))
	reg.MustRegister("slotproxy_dedicated_connections_in_use",
		"Dedicated connections to a node held by a client (a transaction, a blocking command, Pub/Sub).",
		metrics.Gauge, nodes(func(n *NodeStat, emit metrics.Emit) { emit(float64(n.Leased), node(n)) }))
	reg.MustRegister("slotproxy_backend_inflight_requests",
		"Requests on a node's shared connections that wait to be written or for their replies.",
		metrics.Gauge, nodes(func(n *NodeStat, emit metrics.Emit) { emit(float64(n.InFlight), node(n)) }))
	reg.MustRegister("slotproxy_backend_replies_total",
		"Replies read from a node on shared connections, redirections included.",
		metrics.Counter, nodes(func(n *NodeStat, emit metrics.Emit) { emit(float64(n.Replies), node(n)) }))
	reg.MustRegister("slotproxy_backend_errors_total",
		"Failures talking to a node: dials (with their authentication) that failed, and connections that broke or timed out.",
		metrics.Counter, nodes(func(n *NodeStat, emit metrics.Emit) {
			emit(float64(n.DialErrors), node(n), metrics.Label{Name: "kind", Value: "dial"})
			emit(float64(n.ConnErrors), node(n), metrics.Label{Name: "kind", Value: "connection"})
		}))
	reg.MustRegister("slotproxy_cluster_replies_total",
		"MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies from a node, which the proxy followed or retried.",
		metrics.Counter, nodes(func(n *NodeStat, emit metrics.Emit) {
			emit(float64(n.Moved), node(n), metrics.Label{Name: "reply", Value: "moved"})
			emit(float64(n.Ask), node(n), metrics.Label{Name: "reply", Value: "ask"})
			emit(float64(n.TryAgain), node(n), metrics.Label{Name: "reply", Value: "tryagain"})
			emit(float64(n.Down), node(n), metrics.Label{Name: "reply", Value: "clusterdown"})
		}))
	reg.MustRegisterHistogram("slotproxy_backend_request_duration_seconds",
		"Time from writing a request to a node on a shared connection to reading its reply.",
		func(emit metrics.EmitHistogram) {
			for _, n := range rt.NodeStats() {
				emit(n.Latency, metrics.Label{Name: "node", Value: n.Addr})
			}
		})
	reg.MustRegister("slotproxy_retries_total",
		"Requests queued to be sent again, by reason: TRYAGAIN, CLUSTERDOWN (or a slot without a master), a master that could not be reached, a connection that broke after the request was written.",
		metrics.Counter, func(emit metrics.Emit) {
			for i, name := range retryReasons {
				emit(float64(rt.stats.retries[i].Load()), metrics.Label{Name: "reason", Value: name})
			}
		})
}
