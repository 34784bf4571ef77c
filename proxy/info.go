package proxy

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slotproxy/slotproxy/router"
)

// INFO is answered as one standalone redis-server 7.0 would answer it, built
// from every master's "INFO everything" and the proxy's own figures. Clients
// read it as a health check (Spring Boot reads redis_version, ioredis waits
// for loading:0, redis-py parses every line), so every field a 7.0 server
// prints is printed, in its order, even where the value can only be an
// approximation of "the whole cluster as one server". The rules, section by
// section:
//
//   - server, clients, replication, cpu, cluster describe the process the
//     client talks to, so they are the proxy's; what describes the build
//     (redis_version, os, gcc_version, ...) comes from the master with the
//     lowest version, the one whose features the client may rely on.
//   - memory, persistence, stats: sums where a sum means something, ratios
//     recomputed from the summed parts, otherwise the first master's value.
//   - commandstats, errorstats, keyspace: summed per command, error, db.
//   - latencystats: percentiles cannot be summed; the worst master's line.
//   - proxy: slotproxy's own figures, only in "everything" or by name, as
//     a module's section would be.

// proxyFacts are the proxy's own figures for INFO. The zero value of each
// field prints as a zero (or empty) value.
type proxyFacts struct {
	Version    string    // slotproxy's version, for slotproxy_version
	PID        int       // the proxy's process id
	RunID      string    // 40 hex characters chosen once per process; also master_replid
	TCPPort    int       // the port clients connect to
	Started    time.Time // when the process started, for uptime_in_seconds
	Now        time.Time // when this reply is built; zero means time.Now()
	Executable string    // absolute path of the proxy's binary
	ConfigFile string    // absolute path of the config file, "" when none

	ConnectedClients            int   // client connections open now
	MaxClients                  int   // the clients.max_clients bound
	BlockedClients              int   // clients waiting in a blocking command
	ClientRecentMaxInputBuffer  int64 // bytes, the largest client read buffer lately
	ClientRecentMaxOutputBuffer int64 // bytes, the largest client pending output lately
	TotalConnections            int64 // connections accepted since start
	RejectedConnections         int64 // connections refused past MaxClients

	CPUSys  time.Duration // system CPU time of the process (getrusage RUSAGE_SELF)
	CPUUser time.Duration // user CPU time of the process

	Masters        int       // masters in the current slot table
	Replicas       int       // replicas in the current slot table
	SlotsCovered   int       // slots with a master, out of 16384
	TableRefreshed time.Time // when the slot table was last built; zero means never

	// The proxy's own figures, as its metrics show them.
	Ready           bool   // /readyz would answer 200
	ClientsParked   int    // idle clients without a goroutine
	NetInput        uint64 // bytes read from clients
	NetOutput       uint64 // bytes handed to clients
	CommandResults  [numResults]uint64
	Retries         map[string]uint64 // by reason
	RefreshesOK     uint64
	RefreshesFailed uint64
	Nodes           []router.NodeStat
}

// infoDefaultSections are what INFO without an argument, or with "default",
// prints, as redis-server 7.0 lists them.
var infoDefaultSections = []string{
	"server", "clients", "memory", "persistence", "stats", "replication",
	"cpu", "module_list", "errorstats", "cluster", "keyspace",
}

// infoScope says which catch-all argument brings a section in besides its
// own names.
type infoScope int

const (
	inAll        infoScope = iota // "all" and "everything"
	inEverything                  // "everything" only, as a module's section
)

// infoSectionDef is one section of the reply, in the order redis prints them.
type infoSectionDef struct {
	names []string // the arguments that ask for it, lower case
	title string
	scope infoScope
	write func(w *infoWriter, ms *infoMasters, self *proxyFacts)
}

var infoSections = []infoSectionDef{
	{[]string{"server"}, "Server", inAll, writeInfoServer},
	{[]string{"clients"}, "Clients", inAll, writeInfoClients},
	{[]string{"memory"}, "Memory", inAll, writeInfoMemory},
	{[]string{"persistence"}, "Persistence", inAll, writeInfoPersistence},
	{[]string{"stats"}, "Stats", inAll, writeInfoStats},
	{[]string{"replication"}, "Replication", inAll, writeInfoReplication},
	{[]string{"cpu"}, "CPU", inAll, writeInfoCPU},
	{[]string{"module_list", "modules"}, "Modules", inAll, writeInfoModules},
	{[]string{"commandstats"}, "Commandstats", inAll, writeInfoCommandstats},
	{[]string{"errorstats"}, "Errorstats", inAll, writeInfoErrorstats},
	{[]string{"latencystats"}, "Latencystats", inAll, writeInfoLatencystats},
	{[]string{"cluster"}, "Cluster", inAll, writeInfoCluster},
	{[]string{"keyspace"}, "Keyspace", inAll, writeInfoKeyspace},
	{[]string{"proxy"}, "Proxy", inEverything, writeInfoProxy},
}

// buildInfo returns the INFO text for the section arguments a client gave
// (possibly none), built from masters (each master's raw reply text to
// "INFO everything", CRLF lines) and self. As redis-server does, an unknown
// section contributes nothing, and the sections come in redis' order
// whatever the order of the arguments.
func buildInfo(sections [][]byte, masters []string, self proxyFacts) string {
	if self.Now.IsZero() {
		self.Now = time.Now()
	}
	all, everything, asked := infoSelection(sections)
	ms := newInfoMasters(masters)
	w := &infoWriter{written: make(map[string]bool)}
	for i := range infoSections {
		s := &infoSections[i]
		chosen := everything || (all && s.scope == inAll)
		for _, n := range s.names {
			chosen = chosen || asked[n]
		}
		if chosen {
			w.section(s.title)
			s.write(w, ms, &self)
		}
	}
	return w.b.String()
}

// infoSelection reads INFO's arguments: section names are case-insensitive,
// "default" stands for the default sections, no argument means "default".
func infoSelection(args [][]byte) (all, everything bool, asked map[string]bool) {
	asked = make(map[string]bool)
	if len(args) == 0 {
		args = [][]byte{[]byte("default")}
	}
	for _, a := range args {
		switch name := strings.ToLower(string(a)); name {
		case "default":
			for _, d := range infoDefaultSections {
				asked[d] = true
			}
		case "all":
			all = true
		case "everything":
			all, everything = true, true
		default:
			asked[name] = true
		}
	}
	return all, everything, asked
}

func writeInfoServer(w *infoWriter, ms *infoMasters, self *proxyFacts) {
	ref := infoFields{ms.ref.section("server")}
	uptime := int64(self.Now.Sub(self.Started) / time.Second)
	if self.Started.IsZero() || uptime < 0 {
		uptime = 0
	}
	// With no master to ask, the fallbacks keep each field the kind of
	// value (number, dotted version) that a client parsing it expects.
	w.str("redis_version", ref.first("redis_version"))
	w.str("redis_git_sha1", ref.firstOr("redis_git_sha1", "00000000"))
	w.str("redis_git_dirty", ref.firstOr("redis_git_dirty", "0"))
	w.str("redis_build_id", ref.first("redis_build_id"))
	w.str("redis_mode", "standalone")
	w.str("os", ref.first("os"))
	w.str("arch_bits", ref.firstOr("arch_bits", strconv.Itoa(strconv.IntSize)))
	w.str("monotonic_clock", ref.first("monotonic_clock"))
	w.str("multiplexing_api", ref.first("multiplexing_api"))
	w.str("atomicvar_api", ref.first("atomicvar_api"))
	w.str("gcc_version", ref.firstOr("gcc_version", "0.0.0"))
	w.int("process_id", int64(self.PID))
	// The proxy does not speak upstart's or systemd's readiness protocol.
	w.str("process_supervised", "no")
	w.str("run_id", self.RunID)
	w.int("tcp_port", int64(self.TCPPort))
	w.int("server_time_usec", self.Now.UnixMicro())
	w.int("uptime_in_seconds", uptime)
	w.int("uptime_in_days", uptime/(3600*24))
	// hz paces the masters' expiry and eviction, which is what a client
	// tuning against it cares about; the proxy has no such cron.
	w.str("hz", ref.firstOr("hz", "0"))
	w.str("configured_hz", ref.firstOr("configured_hz", "0"))
	// OBJECT IDLETIME is answered by the masters, against their clock.
	w.str("lru_clock", ref.firstOr("lru_clock", "0"))
	w.str("executable", infoSafe(self.Executable))
	w.str("config_file", infoSafe(self.ConfigFile))
	w.int("io_threads_active", 0)
}

func writeInfoClients(w *infoWriter, _ *infoMasters, self *proxyFacts) {
	w.int("connected_clients", int64(self.ConnectedClients))
	// A standalone server has no cluster bus.
	w.int("cluster_connections", 0)
	w.int("maxclients", int64(self.MaxClients))
	w.int("client_recent_max_input_buffer", self.ClientRecentMaxInputBuffer)
	w.int("client_recent_max_output_buffer", self.ClientRecentMaxOutputBuffer)
	w.int("blocked_clients", int64(self.BlockedClients))
	// Client-side caching and blocking timeouts are not served by the proxy.
	w.int("tracking_clients", 0)
	w.int("clients_in_timeout_table", 0)
}

func writeInfoMemory(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	f := ms.section("memory")
	used := f.sum("used_memory")
	rss := f.sum("used_memory_rss")
	peak := f.sum("used_memory_peak") // the sum of peaks bounds the peak of the sum
	startup := f.sum("used_memory_startup")
	dataset := f.sum("used_memory_dataset")
	allocated := f.sum("allocator_allocated")
	active := f.sum("allocator_active")
	resident := f.sum("allocator_resident")

	w.bytes("used_memory", used)
	w.bytes("used_memory_rss", rss)
	w.bytes("used_memory_peak", peak)
	w.str("used_memory_peak_perc", infoPercent(f, "used_memory_peak_perc", used, peak))
	w.sum(f, "used_memory_overhead")
	w.int("used_memory_startup", startup)
	w.int("used_memory_dataset", dataset)
	w.str("used_memory_dataset_perc", infoPercent(f, "used_memory_dataset_perc", dataset, used-startup))
	w.int("allocator_allocated", allocated)
	w.int("allocator_active", active)
	w.int("allocator_resident", resident)
	// The masters may share a host or not; summing could count one
	// machine's memory several times.
	system, _ := strconv.ParseInt(f.first("total_system_memory"), 10, 64)
	w.bytes("total_system_memory", system)
	lua := f.sum("used_memory_lua")
	w.int("used_memory_lua", lua)
	w.sum(f, "used_memory_vm_eval")
	w.str("used_memory_lua_human", bytesToHuman(lua))
	w.sum(f, "used_memory_scripts_eval")
	// Scripts and functions are loaded on every master alike: the count of
	// one master is the count a client loaded, a sum would multiply it.
	w.max(f, "number_of_cached_scripts")
	w.max(f, "number_of_functions")
	w.max(f, "number_of_libraries")
	w.sum(f, "used_memory_vm_functions")
	w.bytes("used_memory_vm_total", f.sum("used_memory_vm_total"))
	w.sum(f, "used_memory_functions")
	w.bytes("used_memory_scripts", f.sum("used_memory_scripts"))
	// maxmemory 0 means no limit: one unlimited master leaves the whole
	// without a limit.
	maxmemory := f.sum("maxmemory")
	if f.min("maxmemory") == 0 {
		maxmemory = 0
	}
	w.bytes("maxmemory", maxmemory)
	w.str("maxmemory_policy", f.first("maxmemory_policy"))
	w.str("allocator_frag_ratio", infoRatio(f, "allocator_frag_ratio", active, allocated))
	w.sum(f, "allocator_frag_bytes")
	w.str("allocator_rss_ratio", infoRatio(f, "allocator_rss_ratio", resident, active))
	w.sum(f, "allocator_rss_bytes")
	w.str("rss_overhead_ratio", infoRatio(f, "rss_overhead_ratio", rss, resident))
	w.sum(f, "rss_overhead_bytes")
	// redis divides rss by the used memory its cron last sampled, which is
	// rss minus the fragmentation bytes it prints, not by used_memory.
	fragBytes := f.sum("mem_fragmentation_bytes")
	w.str("mem_fragmentation_ratio", infoRatio(f, "mem_fragmentation_ratio", rss, rss-fragBytes))
	w.int("mem_fragmentation_bytes", fragBytes)
	for _, name := range []string{
		"mem_not_counted_for_evict", "mem_replication_backlog",
		"mem_total_replication_buffers", "mem_clients_slaves",
		"mem_clients_normal", "mem_cluster_links", "mem_aof_buffer",
	} {
		w.sum(f, name)
	}
	w.str("mem_allocator", f.first("mem_allocator"))
	w.max(f, "active_defrag_running")
	w.sum(f, "lazyfree_pending_objects")
	w.sum(f, "lazyfreed_objects")
	w.rest(f)
}

func writeInfoPersistence(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	f := ms.section("persistence")
	// A client waits for loading:0 before it sends commands: the whole is
	// loading while any master is.
	w.max(f, "loading")
	w.max(f, "async_loading")
	w.sum(f, "current_cow_peak")
	w.sum(f, "current_cow_size")
	w.max(f, "current_cow_size_age")
	processed := f.sum("current_save_keys_processed")
	total := f.sum("current_save_keys_total")
	if total > 0 {
		w.float("current_fork_perc", float64(processed)/float64(total)*100)
	} else {
		// Module forks report progress without key counts.
		w.float("current_fork_perc", f.maxFloat("current_fork_perc"))
	}
	w.int("current_save_keys_processed", processed)
	w.int("current_save_keys_total", total)
	w.sum(f, "rdb_changes_since_last_save")
	w.max(f, "rdb_bgsave_in_progress")
	// Every master has saved since the oldest of their last saves.
	w.min(f, "rdb_last_save_time")
	w.status(f, "rdb_last_bgsave_status")
	w.maxOr(f, "rdb_last_bgsave_time_sec", -1)
	w.maxOr(f, "rdb_current_bgsave_time_sec", -1)
	w.sum(f, "rdb_saves")
	w.sum(f, "rdb_last_cow_size")
	w.sum(f, "rdb_last_load_keys_expired")
	w.sum(f, "rdb_last_load_keys_loaded")
	w.max(f, "aof_enabled")
	w.max(f, "aof_rewrite_in_progress")
	w.max(f, "aof_rewrite_scheduled")
	w.maxOr(f, "aof_last_rewrite_time_sec", -1)
	w.maxOr(f, "aof_current_rewrite_time_sec", -1)
	w.status(f, "aof_last_bgrewrite_status")
	w.sum(f, "aof_rewrites")
	w.max(f, "aof_rewrites_consecutive_failures")
	w.status(f, "aof_last_write_status")
	w.sum(f, "aof_last_cow_size")
	w.max(f, "module_fork_in_progress")
	w.sum(f, "module_fork_last_cow_size")
	// Printed only by masters with appendonly on.
	if f.has("aof_current_size") {
		w.sum(f, "aof_current_size")
		w.sum(f, "aof_base_size")
		w.max(f, "aof_pending_rewrite")
		w.sum(f, "aof_buffer_length")
		w.sum(f, "aof_pending_bio_fsync")
		w.sum(f, "aof_delayed_fsync")
	}
	// Printed only by masters that are loading; the whole is ready when the
	// slowest of them is, and ioredis retries after loading_eta_seconds.
	if f.has("loading_start_time") {
		w.min(f, "loading_start_time")
		w.sum(f, "loading_total_bytes")
		w.sum(f, "loading_rdb_used_mem")
		w.sum(f, "loading_loaded_bytes")
		w.float("loading_loaded_perc", f.minFloat("loading_loaded_perc"))
		w.max(f, "loading_eta_seconds")
	}
	w.rest(f)
}

func writeInfoStats(w *infoWriter, ms *infoMasters, self *proxyFacts) {
	f := ms.section("stats")
	w.int("total_connections_received", self.TotalConnections)
	for _, name := range []string{
		"total_commands_processed", "instantaneous_ops_per_sec",
		"total_net_input_bytes", "total_net_output_bytes",
		"total_net_repl_input_bytes", "total_net_repl_output_bytes",
	} {
		w.sum(f, name)
	}
	for _, name := range []string{
		"instantaneous_input_kbps", "instantaneous_output_kbps",
		"instantaneous_input_repl_kbps", "instantaneous_output_repl_kbps",
	} {
		w.float(name, f.sumFloat(name))
	}
	w.int("rejected_connections", self.RejectedConnections)
	w.sum(f, "sync_full")
	w.sum(f, "sync_partial_ok")
	w.sum(f, "sync_partial_err")
	w.sum(f, "expired_keys")
	// A per-master estimate with no parts printed to weigh it by.
	w.str("expired_stale_perc", f.firstOr("expired_stale_perc", "0.00"))
	for _, name := range []string{
		"expired_time_cap_reached_count", "expire_cycle_cpu_milliseconds",
		"evicted_keys", "evicted_clients", "total_eviction_exceeded_time",
	} {
		w.sum(f, name)
	}
	w.max(f, "current_eviction_exceeded_time")
	for _, name := range []string{
		"keyspace_hits", "keyspace_misses", "pubsub_channels",
		"pubsub_patterns", "pubsubshard_channels",
	} {
		w.sum(f, name)
	}
	w.max(f, "latest_fork_usec")
	for _, name := range []string{
		"total_forks", "migrate_cached_sockets", "slave_expires_tracked_keys",
		"active_defrag_hits", "active_defrag_misses", "active_defrag_key_hits",
		"active_defrag_key_misses", "total_active_defrag_time",
	} {
		w.sum(f, name)
	}
	w.max(f, "current_active_defrag_time")
	for _, name := range []string{
		"tracking_total_keys", "tracking_total_items", "tracking_total_prefixes",
		"unexpected_error_replies", "total_error_replies",
		"dump_payload_sanitizations", "total_reads_processed",
		"total_writes_processed", "io_threaded_reads_processed",
		"io_threaded_writes_processed", "reply_buffer_shrinks",
		"reply_buffer_expands",
	} {
		w.sum(f, name)
	}
	w.rest(f)
}

// writeInfoReplication describes the proxy as what its clients see: a
// master without replicas. The cluster's replicas are in the proxy section.
func writeInfoReplication(w *infoWriter, ms *infoMasters, self *proxyFacts) {
	w.str("role", "master")
	w.int("connected_slaves", 0)
	w.str("master_failover_state", "no-failover")
	w.str("master_replid", self.RunID)
	w.str("master_replid2", "0000000000000000000000000000000000000000")
	w.int("master_repl_offset", 0)
	w.int("second_repl_offset", -1)
	w.int("repl_backlog_active", 0)
	// The configured size, printed by a server that has no backlog too.
	w.str("repl_backlog_size", ms.section("replication").firstOr("repl_backlog_size", "1048576"))
	w.int("repl_backlog_first_byte_offset", 0)
	w.int("repl_backlog_histlen", 0)
}

func writeInfoCPU(w *infoWriter, _ *infoMasters, self *proxyFacts) {
	w.str("used_cpu_sys", infoSeconds(self.CPUSys))
	w.str("used_cpu_user", infoSeconds(self.CPUUser))
	// The proxy forks no children.
	w.str("used_cpu_sys_children", infoSeconds(0))
	w.str("used_cpu_user_children", infoSeconds(0))
	// Go spreads the work of serving clients over all its threads; the
	// process as a whole is what redis's main thread stands for.
	w.str("used_cpu_sys_main_thread", infoSeconds(self.CPUSys))
	w.str("used_cpu_user_main_thread", infoSeconds(self.CPUUser))
}

// writeInfoModules lists each module once, as the first master that has it
// describes it: modules are loaded on every master alike.
func writeInfoModules(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	seen := make(map[string]bool)
	for _, m := range ms.all {
		for _, l := range m.section("modules").lines() {
			if name := infoPair(l.value, "name"); l.name == "module" && !seen[name] {
				seen[name] = true
				w.str(l.name, l.value)
			}
		}
	}
}

func writeInfoCommandstats(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	type counts struct{ calls, usec, rejected, failed int64 }
	var order []string
	stats := make(map[string]*counts)
	for _, m := range ms.all {
		for _, l := range m.section("commandstats").lines() {
			c := stats[l.name]
			if c == nil {
				c = new(counts)
				stats[l.name] = c
				order = append(order, l.name)
			}
			c.calls += infoPairInt(l.value, "calls")
			c.usec += infoPairInt(l.value, "usec")
			c.rejected += infoPairInt(l.value, "rejected_calls")
			c.failed += infoPairInt(l.value, "failed_calls")
		}
	}
	for _, name := range order {
		c := stats[name]
		// redis divides in single precision; so does this, for the same digits.
		var perCall float32
		if c.calls != 0 {
			perCall = float32(c.usec) / float32(c.calls)
		}
		w.str(name, "calls="+strconv.FormatInt(c.calls, 10)+
			",usec="+strconv.FormatInt(c.usec, 10)+
			",usec_per_call="+strconv.FormatFloat(float64(perCall), 'f', 2, 64)+
			",rejected_calls="+strconv.FormatInt(c.rejected, 10)+
			",failed_calls="+strconv.FormatInt(c.failed, 10))
	}
}

func writeInfoErrorstats(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	counts := make(map[string]int64)
	for _, m := range ms.all {
		for _, l := range m.section("errorstats").lines() {
			counts[l.name] += infoPairInt(l.value, "count")
		}
	}
	// redis keeps error codes in a radix tree, so it prints them sorted.
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w.str(n, "count="+strconv.FormatInt(counts[n], 10))
	}
}

// writeInfoLatencystats cannot merge percentiles: the p99 of the whole is
// not a function of each master's p99. It prints, per command, the line of
// the master whose highest printed percentile is the slowest, a bound the
// whole does not exceed.
func writeInfoLatencystats(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	var order []string
	worst := make(map[string]string)
	for _, m := range ms.all {
		for _, l := range m.section("latencystats").lines() {
			cur, ok := worst[l.name]
			if !ok {
				order = append(order, l.name)
			}
			if !ok || infoTopPercentile(l.value) > infoTopPercentile(cur) {
				worst[l.name] = l.value
			}
		}
	}
	for _, name := range order {
		w.str(name, worst[name])
	}
}

func writeInfoCluster(w *infoWriter, _ *infoMasters, _ *proxyFacts) {
	// A cluster-aware client that sees 1 here would send CLUSTER SLOTS and
	// go around the proxy.
	w.int("cluster_enabled", 0)
}

// writeInfoKeyspace sums each db's keys and expires. avg_ttl is the mean TTL
// of the keys that have one, so each master's figure weighs by its expires;
// a master that prints 0 has not sampled its keys yet and does not count.
func writeInfoKeyspace(w *infoWriter, ms *infoMasters, _ *proxyFacts) {
	type db struct {
		keys, expires, ttlWeight int64
		ttlSum                   float64
	}
	dbs := make(map[int]*db)
	for _, m := range ms.all {
		for _, l := range m.section("keyspace").lines() {
			n, err := strconv.Atoi(strings.TrimPrefix(l.name, "db"))
			if err != nil || !strings.HasPrefix(l.name, "db") {
				continue
			}
			d := dbs[n]
			if d == nil {
				d = new(db)
				dbs[n] = d
			}
			expires := infoPairInt(l.value, "expires")
			d.keys += infoPairInt(l.value, "keys")
			d.expires += expires
			if ttl := infoPairInt(l.value, "avg_ttl"); ttl > 0 && expires > 0 {
				d.ttlSum += float64(ttl) * float64(expires)
				d.ttlWeight += expires
			}
		}
	}
	ids := make([]int, 0, len(dbs))
	for n := range dbs {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	for _, n := range ids {
		d := dbs[n]
		if d.keys == 0 && d.expires == 0 {
			continue // as redis prints no line for an empty db
		}
		var avg int64
		if d.ttlWeight > 0 {
			avg = int64(math.Round(d.ttlSum / float64(d.ttlWeight)))
		}
		w.str("db"+strconv.Itoa(n), "keys="+strconv.FormatInt(d.keys, 10)+
			",expires="+strconv.FormatInt(d.expires, 10)+
			",avg_ttl="+strconv.FormatInt(avg, 10))
	}
}

func writeInfoProxy(w *infoWriter, ms *infoMasters, self *proxyFacts) {
	age := int64(-1)
	if !self.TableRefreshed.IsZero() {
		age = max(0, int64(self.Now.Sub(self.TableRefreshed)/time.Second))
	}
	w.str("slotproxy_version", infoSafe(self.Version))
	w.int("masters", int64(self.Masters))
	w.int("replicas", int64(self.Replicas))
	w.int("slots_covered", int64(self.SlotsCovered))
	w.int("slot_table_age_seconds", age)
	// The other sections merge only the masters that answered INFO; this
	// says how many did.
	w.int("masters_in_info", int64(len(ms.all)))
	ready := int64(0)
	if self.Ready {
		ready = 1
	}
	w.int("ready", ready)
	w.int("clients_parked", int64(self.ClientsParked))
	w.int("client_received_bytes", int64(self.NetInput))
	w.int("client_sent_bytes", int64(self.NetOutput))
	for r, name := range resultNames {
		w.int("commands_"+name, int64(self.CommandResults[r]))
	}
	for _, name := range router.RetryReasons() {
		w.int("retries_"+name, int64(self.Retries[name]))
	}
	w.int("slot_table_refreshes_ok", int64(self.RefreshesOK))
	w.int("slot_table_refreshes_failed", int64(self.RefreshesFailed))
	// One line per node, as redis-server's slave0: lines.
	for i, n := range self.Nodes {
		w.str("node"+strconv.Itoa(i), "addr="+infoSafe(n.Addr)+",role="+n.Role+
			",shared="+strconv.Itoa(n.Shared)+",dedicated="+strconv.Itoa(n.Dedicated)+
			",dedicated_in_use="+strconv.Itoa(n.Leased)+",inflight="+strconv.Itoa(n.InFlight)+
			",replies="+strconv.FormatUint(n.Replies, 10)+
			",dial_errors="+strconv.FormatUint(n.DialErrors, 10)+",conn_errors="+strconv.FormatUint(n.ConnErrors, 10)+
			",moved="+strconv.FormatUint(n.Moved, 10)+",ask="+strconv.FormatUint(n.Ask, 10)+
			",tryagain="+strconv.FormatUint(n.TryAgain, 10)+",clusterdown="+strconv.FormatUint(n.Down, 10))
	}
}
