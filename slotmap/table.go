package slotmap

import (
	"fmt"
	"slices"
	"strings"
)

// Node is one cluster node.
type Node struct {
	ID   string // cluster node ID; empty when learned from a redirect
	Addr string // "host:port" the proxy dials
}

// Shard is a master and the replicas that follow it.
type Shard struct {
	Master   Node
	Replicas []Node
}

// noShard marks a slot that no master serves.
const noShard = 0xFFFF

// Table maps every hash slot to the shard that serves it. A Table is
// immutable once built: a refresh or a redirect builds a new one and
// publishes it with an atomic swap, so readers never lock.
type Table struct {
	shards  []Shard
	slots   [NumSlots]uint16 // index into shards, or noShard
	covered int
}

// Shards returns the shards of the table, indexed as ShardIndex reports them.
// The caller must not modify the slice.
func (t *Table) Shards() []Shard { return t.shards }

// ShardIndex returns the index in Shards of the shard serving slot, or -1
// when no master serves it.
func (t *Table) ShardIndex(slot uint16) int {
	i := t.slots[slot&(NumSlots-1)]
	if i == noShard {
		return -1
	}
	return int(i)
}

// Master returns the address of the master serving slot, or "" when none.
func (t *Table) Master(slot uint16) string {
	i := t.ShardIndex(slot)
	if i < 0 {
		return ""
	}
	return t.shards[i].Master.Addr
}

// Covered returns how many slots have a master.
func (t *Table) Covered() int { return t.covered }

// Replicas returns the number of replicas across all shards.
func (t *Table) Replicas() int {
	n := 0
	for _, s := range t.shards {
		n += len(s.Replicas)
	}
	return n
}

// SlotRange is an inclusive range of slots.
type SlotRange struct{ Start, End int }

// builder assembles a Table shard by shard.
type builder struct {
	t     *Table
	index map[string]int // master address -> shard index
}

func newBuilder() *builder {
	b := &builder{t: &Table{}, index: make(map[string]int)}
	for i := range b.t.slots {
		b.t.slots[i] = noShard
	}
	return b
}

// add records that master (with its replicas) serves ranges. A master listed
// twice, as CLUSTER SLOTS does for non-contiguous ranges, is merged.
func (b *builder) add(master Node, replicas []Node, ranges []SlotRange) error {
	if master.Addr == "" {
		return fmt.Errorf("%w: master without an address", ErrBadTopology)
	}
	i, ok := b.index[master.Addr]
	if !ok {
		i = len(b.t.shards)
		if i >= noShard {
			return fmt.Errorf("%w: too many shards", ErrBadTopology)
		}
		b.index[master.Addr] = i
		b.t.shards = append(b.t.shards, Shard{Master: master})
	}
	s := &b.t.shards[i]
	for _, r := range replicas {
		if !slices.ContainsFunc(s.Replicas, func(n Node) bool { return n.Addr == r.Addr }) {
			s.Replicas = append(s.Replicas, r)
		}
	}
	for _, r := range ranges {
		if r.Start < 0 || r.End >= NumSlots || r.Start > r.End {
			return fmt.Errorf("%w: slot range %d-%d", ErrBadTopology, r.Start, r.End)
		}
		for slot := r.Start; slot <= r.End; slot++ {
			if b.t.slots[slot] == noShard {
				b.t.covered++
			}
			b.t.slots[slot] = uint16(i)
		}
	}
	return nil
}

func (b *builder) table() *Table { return b.t }

// withSlot returns a copy of t in which slot is served by the master at
// addr, adding a shard for addr when the table does not know it yet. It is
// how a MOVED reply patches the table before the refresh it triggers.
func (t *Table) withSlot(slot uint16, addr string) *Table {
	nt := &Table{slots: t.slots, covered: t.covered}
	nt.shards = slices.Clone(t.shards)
	i := slices.IndexFunc(nt.shards, func(s Shard) bool { return s.Master.Addr == addr })
	if i < 0 {
		i = len(nt.shards)
		nt.shards = append(nt.shards, Shard{Master: Node{Addr: addr}})
	}
	if nt.slots[slot] == noShard {
		nt.covered++
	}
	nt.slots[slot] = uint16(i)
	return nt
}

// diff counts the slots whose master address differs between t and o.
func (t *Table) diff(o *Table) int {
	n := 0
	for slot := range NumSlots {
		if t.Master(uint16(slot)) != o.Master(uint16(slot)) {
			n++
		}
	}
	return n
}

// String summarizes the table for logs: each master with its slot count.
func (t *Table) String() string {
	counts := make([]int, len(t.shards))
	for _, i := range t.slots {
		if i != noShard {
			counts[i]++
		}
	}
	var sb strings.Builder
	for i, s := range t.shards {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s=%d", s.Master.Addr, counts[i])
	}
	return sb.String()
}
