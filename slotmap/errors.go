package slotmap

import "errors"

var (
	// ErrBadTopology is returned when a node describes an impossible topology.
	ErrBadTopology = errors.New("slotmap: bad topology")
	// ErrNoSeed is returned when no known node answered a discovery.
	ErrNoSeed = errors.New("slotmap: no node answered")
)
