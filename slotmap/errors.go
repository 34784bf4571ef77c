package slotmap

import "errors"

var (
	// ErrNoTable is returned while no seed has answered yet.
	ErrNoTable = errors.New("slotmap: no slot table yet")
	// ErrBadTopology is returned when a node describes an impossible topology.
	ErrBadTopology = errors.New("slotmap: bad topology")
	// ErrNoSeed is returned when no known node answered a discovery.
	ErrNoSeed = errors.New("slotmap: no node answered")
)
