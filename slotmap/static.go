package slotmap

import (
	"context"
	"io"
	"log/slog"
)

// Assignment is one master, its replicas and the slots it serves.
type Assignment struct {
	Master   Node
	Replicas []Node
	Ranges   []SlotRange
}

// BuildTable builds a table from assignments, as a discovery would.
func BuildTable(assignments []Assignment) (*Table, error) {
	b := newBuilder()
	for _, a := range assignments {
		if err := b.add(a.Master, a.Replicas, a.Ranges); err != nil {
			return nil, err
		}
	}
	return b.table(), nil
}

// Static returns a Map that holds t from the start and never asks a node:
// Run only waits for its context and refreshes do nothing. MOVED patches
// still apply. It serves fixed layouts such as in-memory benchmarks.
func Static(t *Table) *Map {
	m := &Map{
		opts:   Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		kick:   make(chan string, 1),
		ready:  make(chan struct{}),
		static: true,
	}
	m.publish(t, "static")
	return m
}

func (m *Map) runStatic(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
