package metrics

import "time"

type Histogram struct{ n uint64 }

func NewHistogram() *Histogram            { return &Histogram{} }
func (h *Histogram) Observe(time.Duration) {}

type AdminOptions struct {
	Ready func() (bool, string)
	Pprof bool
}

func NewAdmin(reg *Registry, o AdminOptions) *Admin { return Handler(reg) }

type EmitHistogram func(h *Histogram, labels ...Label)

func (r *Registry) MustRegisterHistogram(name, help string, collect func(EmitHistogram)) {}
