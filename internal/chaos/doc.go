// Package chaos puts a Redis Cluster through what operators do to it
// (failovers, reshards, node additions and removals, rolling restarts) and
// what fails under them (a master killed or hung), under a load that runs
// through slotproxy and, for comparison, through a cluster-aware client
// straight at the nodes. Its tests print one line of figures per scenario
// and side: requests, errors by kind, the longest stall, latencies, and
// acknowledged writes lost. `make chaos` runs every scenario; `make test`
// runs a bounded subset.
package chaos
