package metrics

import (
	"runtime"
	rm "runtime/metrics"
)

// registerGoRuntime adds the go_* families. The names are those
// client_golang's Go collector used, because dashboards expect them; the
// values come from runtime/metrics, which unlike runtime.ReadMemStats does
// not stop the world:
//
//	go_goroutines                  gauge    goroutines that exist
//	go_threads                     gauge    OS threads the runtime owns
//	go_info{version}               gauge    always 1; the Go version that built the binary
//	go_memstats_heap_alloc_bytes   gauge    bytes of live and not yet swept heap objects
//	go_memstats_heap_inuse_bytes   gauge    bytes in heap spans holding objects
//	go_memstats_heap_sys_bytes     gauge    bytes of heap memory obtained from the OS
//	go_memstats_sys_bytes          gauge    all bytes the runtime mapped
//	go_gc_cycles_total             counter  completed GC cycles
func registerGoRuntime(r *Registry) {
	r.MustRegister("go_goroutines", "Number of goroutines that currently exist.", Gauge,
		func(emit Emit) { emit(float64(runtime.NumGoroutine())) })
	r.MustRegister("go_threads", "Number of OS threads owned by the Go runtime.", Gauge,
		runtimeSum("/sched/threads/total:threads"))
	version := runtime.Version()
	r.MustRegister("go_info", "Information about the Go environment.", Gauge,
		func(emit Emit) { emit(1, Label{"version", version}) })

	// The memstats names are kept; their MemStats definitions are sums of
	// runtime/metrics memory classes.
	const (
		objects  = "/memory/classes/heap/objects:bytes"
		unused   = "/memory/classes/heap/unused:bytes"
		free     = "/memory/classes/heap/free:bytes"
		released = "/memory/classes/heap/released:bytes"
	)
	r.MustRegister("go_memstats_heap_alloc_bytes",
		"Number of heap bytes allocated and still in use (live objects and those not yet swept).", Gauge,
		runtimeSum(objects))
	r.MustRegister("go_memstats_heap_inuse_bytes", "Number of heap bytes in spans that hold objects.", Gauge,
		runtimeSum(objects, unused))
	r.MustRegister("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from the system.", Gauge,
		runtimeSum(objects, unused, free, released))
	r.MustRegister("go_memstats_sys_bytes", "Number of bytes obtained from the system.", Gauge,
		runtimeSum("/memory/classes/total:bytes"))
	r.MustRegister("go_gc_cycles_total", "Number of completed GC cycles, automatic and forced.", Counter,
		runtimeSum("/gc/cycles/total:gc-cycles"))
}

// runtimeSum returns a collect function that emits the sum of the named
// runtime/metrics values, all of them uint64 ones. If the running Go does
// not know one of them, it emits nothing rather than a wrong sum.
func runtimeSum(names ...string) func(Emit) {
	samples := make([]rm.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	// Scrapes are serialised by the registry, so samples can be reused.
	return func(emit Emit) {
		rm.Read(samples)
		var sum uint64
		for _, s := range samples {
			if s.Value.Kind() != rm.KindUint64 {
				return
			}
			sum += s.Value.Uint64()
		}
		emit(float64(sum))
	}
}
