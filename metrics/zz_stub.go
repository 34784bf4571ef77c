package metrics

type AdminOptions struct {
	Ready func() (bool, string)
	Pprof bool
}

func NewAdmin(reg *Registry, o AdminOptions) *Admin { return Handler(reg) }
