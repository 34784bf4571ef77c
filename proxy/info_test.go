package proxy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// infoInputs are real "INFO everything" replies and what was done to the
// servers that gave them, so that sums can be checked against both.
type infoInputs struct {
	standalone []string      // three plain servers
	ref        *redis.Client // the first of them, to ask for real selections
	cluster    []string      // the three masters of a cluster

	keys, expires []int64          // db0 of each plain server
	db1Keys       int64            // db1 of the plain servers
	sets          int64            // SET calls on the plain servers
	hits, misses  int64            // on the plain servers
	errors        map[string]int64 // errorstats of the plain servers, by name

	clusterKeys, clusterExpires int64
	clusterMoved                int64 // MOVED replies the masters gave
}

func infoClient(t *testing.T, addr string, db int) *redis.Client {
	t.Helper()
	cl := redis.NewClient(&redis.Options{
		Addr: addr, DB: db, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second,
		// Its CLIENT MAINT_NOTIFICATIONS, which 7.0 refuses, would count
		// in errorstats beside the errors the test makes.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// startInfoInputs starts three plain servers and a three-master cluster,
// writes keys with and without TTLs, runs commands that hit, miss and
// fail, and collects every server's INFO everything.
func startInfoInputs(t *testing.T) *infoInputs {
	ctx := t.Context()
	in := &infoInputs{errors: map[string]int64{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// db0 keys and how many of them have a TTL, per plain server.
	plan := []struct{ keys, ttl int }{{40, 10}, {7, 0}, {15, 15}}
	var plain []*redis.Client
	for i, p := range plan {
		n := clustertest.Standalone(t, "")
		cl := infoClient(t, n.Addr, 0)
		plain = append(plain, cl)
		// The harness's own client may have caused errors already.
		before, err := cl.Info(ctx, "errorstats").Result()
		must(err)
		b := splitInfo(t, before)
		for _, name := range b.names["Errorstats"] {
			in.errors[name] += b.pairInt(t, name, "count")
		}
		for k := range p.keys {
			var ttl time.Duration
			if k < p.ttl {
				ttl = time.Duration(1000+100*k) * time.Second
			}
			must(cl.Set(ctx, "key:"+strconv.Itoa(k), "v", ttl).Err())
			in.sets++
		}
		in.keys = append(in.keys, int64(p.keys))
		in.expires = append(in.expires, int64(p.ttl))
		switch i {
		case 0:
			db1 := infoClient(t, n.Addr, 1)
			for k := range 3 {
				must(db1.Set(ctx, "db1:"+strconv.Itoa(k), "v", 0).Err())
				in.sets++
			}
			in.db1Keys += 3
			for k := range 3 {
				must(cl.Get(ctx, "key:"+strconv.Itoa(k)).Err())
			}
			in.hits += 3
			for range 2 {
				if err := cl.Get(ctx, "absent").Err(); err != redis.Nil {
					t.Fatalf("GET absent: %v", err)
				}
			}
			in.misses += 2
			if err := cl.Do(ctx, "nosuchcommand").Err(); err == nil {
				t.Fatal("an unknown command succeeded")
			}
			in.errors["errorstat_ERR"]++
			in.ref = cl
		case 1:
			must(cl.Get(ctx, "key:0").Err())
			must(cl.Get(ctx, "key:1").Err())
			in.hits += 2
			// A write lookup counts neither a hit nor a miss.
			must(cl.LPush(ctx, "list", "x").Err())
			in.keys[i]++
			if err := cl.Incr(ctx, "list").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
				t.Fatalf("INCR on a list: %v", err)
			}
			in.errors["errorstat_WRONGTYPE"]++
		case 2:
			must(cl.Get(ctx, "key:0").Err())
			in.hits++
			if err := cl.Get(ctx, "absent").Err(); err != redis.Nil {
				t.Fatalf("GET absent: %v", err)
			}
			in.misses++
		}
	}

	c := clustertest.New(t, clustertest.Options{Masters: 3})
	masters, err := c.MasterAddrs(ctx)
	must(err)
	if len(masters) != 3 {
		t.Fatalf("masters %v, want 3", masters)
	}
	// Every key is tried on every master: the owner stores it, the others
	// answer MOVED, which shows in their errorstats.
	for k := range 60 {
		var ttl time.Duration
		if k%3 == 0 {
			ttl = time.Hour
		}
		stored := 0
		for _, addr := range masters {
			err := c.Client(addr).Set(ctx, "ckey:"+strconv.Itoa(k), "v", ttl).Err()
			switch {
			case err == nil:
				stored++
			case strings.HasPrefix(err.Error(), "MOVED "):
				in.clusterMoved++
			default:
				t.Fatalf("SET on %s: %v", addr, err)
			}
		}
		if stored != 1 {
			t.Fatalf("key %d stored on %d masters", k, stored)
		}
		in.clusterKeys++
		if ttl > 0 {
			in.clusterExpires++
		}
	}

	for _, cl := range plain {
		text, err := cl.Info(ctx, "everything").Result()
		must(err)
		in.standalone = append(in.standalone, text)
	}
	for _, addr := range masters {
		text, err := c.Client(addr).Info(ctx, "everything").Result()
		must(err)
		in.cluster = append(in.cluster, text)
	}
	return in
}

// infoTestFacts are fixed figures, so that the proxy's own fields can be
// checked to the digit.
func infoTestFacts() proxyFacts {
	now := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	return proxyFacts{
		Version:                     "0.9.0-test",
		PID:                         4242,
		RunID:                       strings.Repeat("5e", 20),
		TCPPort:                     5000,
		Started:                     now.Add(-90061 * time.Second),
		Now:                         now,
		Executable:                  "/usr/local/bin/slotproxy",
		ConfigFile:                  "/etc/slotproxy/proxy.yaml",
		ConnectedClients:            12,
		MaxClients:                  10000,
		BlockedClients:              1,
		ClientRecentMaxInputBuffer:  20480,
		ClientRecentMaxOutputBuffer: 64,
		TotalConnections:            345,
		RejectedConnections:         6,
		CPUSys:                      1500 * time.Millisecond,
		CPUUser:                     2*time.Second + 7*time.Microsecond,
		Masters:                     3,
		Replicas:                    3,
		SlotsCovered:                16384,
		TableRefreshed:              now.Add(-4 * time.Second),
	}
}

// infoDoc is an INFO text split into sections and fields.
type infoDoc struct {
	titles []string
	names  map[string][]string // field names by section title, in order
	values map[string]string   // by field name
}

// splitInfo fails t unless text is laid out as redis lays INFO out: "# Title"
// lines, "name:value" lines, CRLF line ends, one blank line between
// sections and none after the last.
func splitInfo(t *testing.T, text string) infoDoc {
	t.Helper()
	d := infoDoc{names: map[string][]string{}, values: map[string]string{}}
	if text == "" {
		return d
	}
	crlf := strings.Count(text, "\r\n")
	if strings.Count(text, "\n") != crlf || strings.Count(text, "\r") != crlf {
		t.Fatalf("a line break that is not CRLF in %q", text)
	}
	if !strings.HasSuffix(text, "\r\n") || strings.HasSuffix(text, "\r\n\r\n") {
		t.Fatalf("the text does not end with exactly one CRLF: ...%q", text[max(0, len(text)-40):])
	}
	for i, block := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n\r\n") {
		lines := strings.Split(block, "\r\n")
		title, ok := strings.CutPrefix(lines[0], "# ")
		if !ok {
			t.Fatalf("section %d starts with %q, not with a title", i, lines[0])
		}
		d.titles = append(d.titles, title)
		for _, l := range lines[1:] {
			name, value, ok := strings.Cut(l, ":")
			if !ok || name == "" {
				t.Fatalf("section %s: %q is not a name:value line", title, l)
			}
			d.names[title] = append(d.names[title], name)
			d.values[name] = value
		}
	}
	return d
}

func (d infoDoc) get(t *testing.T, name string) string {
	t.Helper()
	v, ok := d.values[name]
	if !ok {
		t.Fatalf("no field %s", name)
	}
	return v
}

func (d infoDoc) int(t *testing.T, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(d.get(t, name), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// pairInt reads key from a "k=v,k=v" field.
func (d infoDoc) pairInt(t *testing.T, name, key string) int64 {
	t.Helper()
	for kv := range strings.SplitSeq(d.get(t, name), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s %s: %v", name, key, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %s: %q", name, key, d.values[name])
	return 0
}

func splitAll(t *testing.T, texts []string) []infoDoc {
	t.Helper()
	docs := make([]infoDoc, len(texts))
	for i, text := range texts {
		docs[i] = splitInfo(t, text)
	}
	return docs
}

// setInfoField replaces the value of name in an INFO text.
func setInfoField(t *testing.T, text, name, value string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:[^\r\n]*\r\n`)
	if !re.MatchString(text) {
		t.Fatalf("no field %s to set", name)
	}
	return re.ReplaceAllLiteralString(text, name+":"+value+"\r\n")
}

// insertInfoLines puts lines after the line of field name.
func insertInfoLines(t *testing.T, text, name string, lines ...string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:[^\r\n]*\r\n`)
	loc := re.FindStringIndex(text)
	if loc == nil {
		t.Fatalf("no field %s to insert after", name)
	}
	return text[:loc[1]] + strings.Join(lines, "\r\n") + "\r\n" + text[loc[1]:]
}

func infoArgs(args []string) [][]byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return b
}

func sameNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var missing, extra []string
	for _, n := range want {
		if !slices.Contains(got, n) {
			missing = append(missing, n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) {
			extra = append(extra, n)
		}
	}
	t.Errorf("%s: fields differ: missing %v, extra %v\ngot  %v\nwant %v", what, missing, extra, got, want)
}

// dataSections are the sections whose field names depend on what the
// servers did (which commands ran, which errors, which dbs have keys).
var dataSections = []string{"Commandstats", "Errorstats", "Latencystats", "Keyspace"}

// wantDataNames is what a data section of the merged reply should list:
// every name any master lists, in the order the merge promises.
func wantDataNames(title string, docs []infoDoc) []string {
	var names []string
	for _, d := range docs {
		for _, n := range d.names[title] {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	switch title {
	case "Errorstats":
		slices.Sort(names) // as redis' radix tree orders them
	case "Keyspace":
		slices.SortFunc(names, func(a, b string) int {
			x, _ := strconv.Atoi(strings.TrimPrefix(a, "db"))
			y, _ := strconv.Atoi(strings.TrimPrefix(b, "db"))
			return x - y
		})
	}
	return names
}

var proxySectionNames = []string{
	"slotproxy_version", "masters", "replicas", "slots_covered",
	"slot_table_age_seconds", "masters_in_info", "ready", "clients_parked",
	"client_received_bytes", "client_sent_bytes",
	"commands_ok", "commands_error", "commands_redirected", "commands_retried",
	"retries_tryagain", "retries_clusterdown", "retries_unreachable", "retries_connection_lost",
	"slot_table_refreshes_ok", "slot_table_refreshes_failed",
}

func TestBuildInfo(t *testing.T) {
	in := startInfoInputs(t)
	self := infoTestFacts()
	everything := infoArgs([]string{"everything"})
	// A real standalone redis-server 7.0's reply: the reference for which
	// fields each section has, and in what order.
	real := splitInfo(t, in.standalone[0])
	if v := real.get(t, "redis_version"); !strings.HasPrefix(v, "7.0.") {
		t.Fatalf("the reference server is %s, not 7.0", v)
	}
	for i, text := range in.cluster {
		d := splitInfo(t, text)
		if d.get(t, "redis_mode") != "cluster" || d.get(t, "cluster_enabled") != "1" {
			t.Fatalf("cluster master %d does not say it is in a cluster", i)
		}
	}

	t.Run("Selection", func(t *testing.T) {
		for _, args := range [][]string{
			nil, {"default"}, {"all"}, {"everything"}, {"server", "keyspace"},
			{"keyspace", "server"}, {"SERVER"}, {"Clients", "cPu"}, {"bogus"},
			{"bogus", "memory"}, {"commandstats"}, {"latencystats"},
			{"errorstats"}, {"modules"}, {"module_list"}, {"default", "commandstats"},
			{"all", "latencystats"}, {"everything", "server"}, {"server", "server"},
			{"replication", "cluster", "persistence", "stats"},
			{"proxy"}, {"PROXY", "stats"}, {"all", "proxy"}, {"Everything"},
		} {
			text, err := in.ref.Info(t.Context(), args...).Result()
			if err != nil {
				t.Fatalf("INFO %v on redis-server: %v", args, err)
			}
			want := splitInfo(t, text).titles
			// The proxy section is the proxy's own, as a module's section is
			// a module's: in "everything" or by name, last.
			if slices.ContainsFunc(args, func(a string) bool {
				return strings.EqualFold(a, "everything") || strings.EqualFold(a, "proxy")
			}) {
				want = append(want, "Proxy")
			}
			for _, masters := range [][]string{in.standalone, in.cluster} {
				out := buildInfo(infoArgs(args), masters, self)
				if got := splitInfo(t, out).titles; !slices.Equal(got, want) {
					t.Errorf("INFO %q: sections %v, want %v", args, got, want)
				}
				if len(want) == 0 && out != "" {
					t.Errorf("INFO %q: %q, want nothing, as redis-server answers", args, out)
				}
			}
		}
	})

	t.Run("FieldsLikeStandalone", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			masters []string
		}{{"standalone", in.standalone}, {"cluster", in.cluster}, {"no masters", nil}} {
			got := splitInfo(t, buildInfo(everything, tc.masters, self))
			inputs := splitAll(t, tc.masters)
			if want := append(slices.Clone(real.titles), "Proxy"); !slices.Equal(got.titles, want) {
				t.Errorf("%s: sections %v, want %v", tc.name, got.titles, want)
			}
			for _, title := range real.titles {
				want := real.names[title]
				if slices.Contains(dataSections, title) {
					want = wantDataNames(title, inputs)
				}
				sameNames(t, tc.name+" "+title, got.names[title], want)
			}
			// Not in redis: slotproxy's own section.
			sameNames(t, tc.name+" Proxy", got.names["Proxy"], proxySectionNames)
		}
		for _, title := range dataSections {
			if len(wantDataNames(title, splitAll(t, in.cluster))) == 0 {
				t.Errorf("the cluster inputs have no %s lines: the test checks nothing there", title)
			}
		}
	})

	t.Run("Sums", func(t *testing.T) {
		inputs := splitAll(t, in.standalone)
		got := splitInfo(t, buildInfo(everything, in.standalone, self))
		sum := func(name string) int64 {
			var total int64
			for _, d := range inputs {
				total += d.int(t, name)
			}
			return total
		}
		var wantKeys, wantExpires int64
		for i := range in.keys {
			wantKeys += in.keys[i]
			wantExpires += in.expires[i]
		}
		if k, e := got.pairInt(t, "db0", "keys"), got.pairInt(t, "db0", "expires"); k != wantKeys || e != wantExpires {
			t.Errorf("db0 keys=%d expires=%d, want %d and %d", k, e, wantKeys, wantExpires)
		}
		if k, e := got.pairInt(t, "db1", "keys"), got.pairInt(t, "db1", "expires"); k != in.db1Keys || e != 0 {
			t.Errorf("db1 keys=%d expires=%d, want %d and 0", k, e, in.db1Keys)
		}
		var ttlSum float64
		var ttlWeight int64
		for _, d := range inputs {
			if ttl, e := d.pairInt(t, "db0", "avg_ttl"), d.pairInt(t, "db0", "expires"); ttl > 0 {
				ttlSum += float64(ttl * e)
				ttlWeight += e
			}
		}
		var wantTTL int64
		if ttlWeight > 0 {
			wantTTL = int64(ttlSum/float64(ttlWeight) + 0.5)
		}
		if ttl := got.pairInt(t, "db0", "avg_ttl"); ttl != wantTTL {
			t.Errorf("db0 avg_ttl=%d, want %d", ttl, wantTTL)
		}
		for _, name := range []string{
			"used_memory", "used_memory_rss", "used_memory_dataset",
			"allocator_allocated", "total_commands_processed", "total_error_replies",
		} {
			if g, w := got.int(t, name), sum(name); g != w {
				t.Errorf("%s: %d, want the sum %d", name, g, w)
			}
		}
		if g, w := got.get(t, "used_memory_human"), bytesToHuman(sum("used_memory")); g != w {
			t.Errorf("used_memory_human %s, want %s", g, w)
		}
		if h, m := got.int(t, "keyspace_hits"), got.int(t, "keyspace_misses"); h != in.hits || m != in.misses {
			t.Errorf("keyspace_hits %d misses %d, want %d and %d", h, m, in.hits, in.misses)
		}
		if n := got.pairInt(t, "cmdstat_set", "calls"); n != in.sets {
			t.Errorf("cmdstat_set calls=%d, want %d", n, in.sets)
		}
		var usec int64
		for _, d := range inputs {
			usec += d.pairInt(t, "cmdstat_set", "usec")
		}
		if got.pairInt(t, "cmdstat_set", "usec") != usec {
			t.Errorf("cmdstat_set %s, want usec=%d", got.values["cmdstat_set"], usec)
		}
		perCall := regexp.MustCompile(`usec_per_call=([0-9.]+)`).FindStringSubmatch(got.get(t, "cmdstat_set"))
		if x, _ := strconv.ParseFloat(perCall[1], 64); x < float64(usec)/float64(in.sets)-0.006 || x > float64(usec)/float64(in.sets)+0.006 {
			t.Errorf("cmdstat_set usec_per_call=%s, want %.2f", perCall[1], float64(usec)/float64(in.sets))
		}
		sameNames(t, "errorstats", got.names["Errorstats"], slices.Sorted(maps.Keys(in.errors)))
		for name, want := range in.errors {
			if n := got.pairInt(t, name, "count"); n != want {
				t.Errorf("%s count=%d, want %d", name, n, want)
			}
		}

		cluster := splitInfo(t, buildInfo(everything, in.cluster, self))
		if k, e := cluster.pairInt(t, "db0", "keys"), cluster.pairInt(t, "db0", "expires"); k != in.clusterKeys || e != in.clusterExpires {
			t.Errorf("cluster db0 keys=%d expires=%d, want %d and %d", k, e, in.clusterKeys, in.clusterExpires)
		}
		if n := cluster.pairInt(t, "errorstat_MOVED", "count"); n != in.clusterMoved {
			t.Errorf("errorstat_MOVED count=%d, want %d", n, in.clusterMoved)
		}
	})

	// With one master, everything taken from the masters must come out as
	// that master printed it: the merge recomputes ratios, human sizes and
	// per-call figures the way redis computes them.
	t.Run("OneMasterUnchanged", func(t *testing.T) {
		own := []string{
			"redis_mode", "process_id", "process_supervised", "run_id", "tcp_port",
			"server_time_usec", "uptime_in_seconds", "uptime_in_days", "executable",
			"config_file", "io_threads_active",
			"total_connections_received", "rejected_connections",
			// redis divides used_memory by the peak after a later read of
			// used_memory than the one it prints.
			"used_memory_peak_perc",
		}
		for _, text := range append(slices.Clone(in.standalone), in.cluster...) {
			src := splitInfo(t, text)
			got := splitInfo(t, buildInfo(everything, []string{text}, self))
			for _, title := range []string{
				"Server", "Memory", "Persistence", "Stats", "Commandstats",
				"Errorstats", "Latencystats", "Keyspace",
			} {
				for _, name := range src.names[title] {
					if slices.Contains(own, name) {
						continue
					}
					if g, w := got.values[name], src.values[name]; g != w {
						t.Errorf("%s %s: %q, want %q as the master printed it", title, name, g, w)
					}
				}
			}
		}
	})

	t.Run("ProxyOwnFields", func(t *testing.T) {
		got := splitInfo(t, buildInfo(everything, in.cluster, self))
		for _, line := range []string{
			"redis_mode:standalone", "process_id:4242", "run_id:" + self.RunID, "tcp_port:5000",
			"server_time_usec:" + strconv.FormatInt(self.Now.UnixMicro(), 10),
			"uptime_in_seconds:90061", "uptime_in_days:1",
			"executable:" + self.Executable, "config_file:" + self.ConfigFile,
			"connected_clients:12", "cluster_connections:0", "maxclients:10000",
			"client_recent_max_input_buffer:20480", "client_recent_max_output_buffer:64",
			"blocked_clients:1", "total_connections_received:345", "rejected_connections:6",
			"role:master", "connected_slaves:0", "master_failover_state:no-failover",
			"master_replid:" + self.RunID, "master_repl_offset:0", "second_repl_offset:-1",
			"repl_backlog_active:0",
			"used_cpu_sys:1.500000", "used_cpu_user:2.000007",
			"used_cpu_sys_children:0.000000", "used_cpu_user_children:0.000000",
			"cluster_enabled:0", "loading:0", "async_loading:0",
			"slotproxy_version:0.9.0-test", "masters:3", "replicas:3",
			"slots_covered:16384", "slot_table_age_seconds:4", "masters_in_info:3",
		} {
			name, want, _ := strings.Cut(line, ":")
			if g := got.get(t, name); g != want {
				t.Errorf("%s: %q, want %q", name, g, want)
			}
		}
		fresh := self
		fresh.TableRefreshed = time.Time{}
		if g := splitInfo(t, buildInfo(infoArgs([]string{"proxy"}), nil, fresh)).get(t, "slot_table_age_seconds"); g != "-1" {
			t.Errorf("slot_table_age_seconds with no table: %s, want -1", g)
		}
	})

	t.Run("LowestVersion", func(t *testing.T) {
		texts := slices.Clone(in.cluster)
		texts[1] = setInfoField(t, texts[1], "redis_version", "7.0.9")
		texts[1] = setInfoField(t, texts[1], "os", "Plan 9 from Bell Labs")
		texts[2] = setInfoField(t, texts[2], "redis_version", "7.0.10")
		got := splitInfo(t, buildInfo(nil, texts, self))
		// Compared as text, 7.0.10 would be lower than 7.0.9.
		if v, os := got.get(t, "redis_version"), got.get(t, "os"); v != "7.0.9" || os != "Plan 9 from Bell Labs" {
			t.Errorf("redis_version %s os %q, want 7.0.9 and the os of that master", v, os)
		}
		texts[0] = setInfoField(t, texts[0], "redis_version", "6.2.14")
		texts[0] = setInfoField(t, texts[0], "gcc_version", "4.8.5")
		got = splitInfo(t, buildInfo(infoArgs([]string{"server"}), texts, self))
		if v, gcc := got.get(t, "redis_version"), got.get(t, "gcc_version"); v != "6.2.14" || gcc != "4.8.5" {
			t.Errorf("redis_version %s gcc_version %s, want 6.2.14 and 4.8.5", v, gcc)
		}
	})

	t.Run("Loading", func(t *testing.T) {
		texts := slices.Clone(in.cluster)
		texts[2] = setInfoField(t, texts[2], "loading", "1")
		if got := splitInfo(t, buildInfo(nil, texts, self)).get(t, "loading"); got != "1" {
			t.Errorf("loading:%s with one master loading, want 1", got)
		}
		// A loading redis prints where it is; ioredis waits loading_eta_seconds.
		texts[1] = setInfoField(t, texts[1], "loading", "1")
		texts[1] = insertInfoLines(t, texts[1], "module_fork_last_cow_size",
			"loading_start_time:1700000000", "loading_total_bytes:1000",
			"loading_rdb_used_mem:0", "loading_loaded_bytes:250",
			"loading_loaded_perc:25.00", "loading_eta_seconds:9")
		got := splitInfo(t, buildInfo(infoArgs([]string{"persistence"}), texts, self))
		for name, want := range map[string]string{"loading": "1", "loading_eta_seconds": "9", "loading_loaded_perc": "25.00", "loading_total_bytes": "1000"} {
			if g := got.get(t, name); g != want {
				t.Errorf("%s: %s, want %s", name, g, want)
			}
		}
		want := append(slices.Clone(real.names["Persistence"]), "loading_start_time", "loading_total_bytes",
			"loading_rdb_used_mem", "loading_loaded_bytes", "loading_loaded_perc", "loading_eta_seconds")
		sameNames(t, "Persistence while loading", got.names["Persistence"], want)
	})

	t.Run("Keyspace", func(t *testing.T) {
		noKeys := regexp.MustCompile(`(?m)^db[0-9]+:[^\r\n]*\r\n`)
		var texts []string
		for _, text := range in.standalone {
			texts = append(texts, noKeys.ReplaceAllLiteralString(text, ""))
		}
		if got := buildInfo(infoArgs([]string{"keyspace"}), texts, self); got != "# Keyspace\r\n" {
			t.Errorf("keyspace with no keys: %q, want the header alone", got)
		}
		// avg_ttl is the mean over keys with a TTL: each master weighs by its
		// expires, and one that has not sampled yet (0) does not count.
		texts = slices.Clone(in.standalone)
		texts[0] = setInfoField(t, texts[0], "db0", "keys=100,expires=10,avg_ttl=1000")
		texts[1] = setInfoField(t, texts[1], "db0", "keys=50,expires=0,avg_ttl=0")
		texts[2] = setInfoField(t, texts[2], "db0", "keys=30,expires=15,avg_ttl=4000")
		texts = append(texts, setInfoField(t, in.cluster[0], "db0", "keys=5,expires=5,avg_ttl=0"))
		got := splitInfo(t, buildInfo(infoArgs([]string{"keyspace"}), texts, self))
		if g := got.get(t, "db0"); g != "keys=185,expires=30,avg_ttl=2800" {
			t.Errorf("db0:%s, want keys=185,expires=30,avg_ttl=2800", g)
		}
	})

	t.Run("MergeRules", func(t *testing.T) {
		texts := slices.Clone(in.cluster)
		// The slowest master's percentiles, judged by the highest one.
		texts[1] = setInfoField(t, texts[1], "latency_percentiles_usec_set", "p50=1.000,p99=900.000,p99.9=1000.000")
		texts[2] = setInfoField(t, texts[2], "latency_percentiles_usec_set", "p50=500.000,p99=600.000,p99.9=700.000")
		// Modules loaded on several masters are listed once.
		search := "module:name=search,ver=20410,api=1,filters=0,usedby=[],using=[],options=[]"
		json := "module:name=ReJSON,ver=20407,api=1,filters=0,usedby=[search],using=[],options=[handle-io-errors]"
		texts[0] = strings.Replace(texts[0], "# Modules\r\n", "# Modules\r\n"+search+"\r\n", 1)
		texts[2] = strings.Replace(texts[2], "# Modules\r\n", "# Modules\r\n"+json+"\r\n"+search+"\r\n", 1)
		// A field of a newer redis is passed on, with the first value; one in
		// a section the proxy owns is not.
		texts[1] = insertInfoLines(t, texts[1], "reply_buffer_expands", "eventloop_cycles:77")
		texts[2] = insertInfoLines(t, texts[2], "reply_buffer_expands", "eventloop_cycles:88")
		texts[1] = insertInfoLines(t, texts[1], "io_threads_active", "listener0:name=tcp,bind=127.0.0.1,port=7001")
		// AOF figures appear when a master has appendonly on.
		for i, size := range map[int]string{0: "1000", 2: "234"} {
			texts[i] = setInfoField(t, texts[i], "aof_enabled", "1")
			texts[i] = insertInfoLines(t, texts[i], "module_fork_last_cow_size",
				"aof_current_size:"+size, "aof_base_size:100", "aof_pending_rewrite:0",
				"aof_buffer_length:0", "aof_pending_bio_fsync:0", "aof_delayed_fsync:0")
		}
		texts[2] = setInfoField(t, texts[2], "aof_last_write_status", "err")
		// One unlimited master leaves the whole unlimited; otherwise limits add.
		texts[0] = setInfoField(t, texts[0], "maxmemory", "1048576")
		texts[1] = setInfoField(t, texts[1], "maxmemory", "2097152")

		got := splitInfo(t, buildInfo(everything, texts, self))
		for _, line := range []string{
			"latency_percentiles_usec_set:p50=1.000,p99=900.000,p99.9=1000.000",
			"eventloop_cycles:77", "aof_enabled:1", "aof_current_size:1234",
			"aof_base_size:200", "aof_last_write_status:err", "maxmemory:0", "maxmemory_human:0B",
		} {
			name, want, _ := strings.Cut(line, ":")
			if g := got.get(t, name); g != want {
				t.Errorf("%s: %q, want %q", name, g, want)
			}
		}
		sameNames(t, "Modules", got.names["Modules"], []string{"module", "module"})
		if !strings.Contains(buildInfo(infoArgs([]string{"modules"}), texts, self), search+"\r\n"+json+"\r\n") {
			t.Error("the modules are not each listed once, in the order first seen")
		}
		if stats := got.names["Stats"]; stats[len(stats)-1] != "eventloop_cycles" {
			t.Errorf("stats end with %v, want the newer field last", stats[len(stats)-3:])
		}
		if _, ok := got.values["listener0"]; ok {
			t.Error("a master's listener is shown in the proxy's server section")
		}
		texts[2] = setInfoField(t, texts[2], "maxmemory", "4194304")
		if g := splitInfo(t, buildInfo(infoArgs([]string{"memory"}), texts, self)).get(t, "maxmemory_human"); g != "7.00M" {
			t.Errorf("maxmemory_human %s, want 7.00M", g)
		}
	})

	t.Run("ParsesLikeRedisPy", func(t *testing.T) {
		ref, err := parseInfoLikeRedisPy(in.standalone[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, masters := range [][]string{in.standalone, in.cluster, nil} {
			text := buildInfo(everything, masters, self)
			got, err := parseInfoLikeRedisPy(text)
			if err != nil {
				t.Fatal(err)
			}
			if raw, ok := got["__raw__"]; ok {
				t.Errorf("lines redis-py cannot split: %v", raw)
			}
			// redis-py keeps one value per name: a name printed twice would
			// lose a line.
			lines := 0
			for l := range strings.SplitSeq(text, "\r\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					lines++
				}
			}
			if lines != len(got) {
				t.Errorf("%d field lines, %d names after parsing: a name is printed twice", lines, len(got))
			}
			// A client finds every field the reference server has, parsed
			// to the same kind of value.
			for name, rv := range ref {
				gv, ok := got[name]
				if !ok {
					if !regexp.MustCompile(`^(cmdstat_|errorstat_|latency_percentiles_usec_|db[0-9])`).MatchString(name) {
						t.Errorf("redis-py finds no %s", name)
					}
					continue
				}
				if fmt.Sprintf("%T", gv) != fmt.Sprintf("%T", rv) {
					t.Errorf("%s parses as %T (%v), the server's as %T (%v)", name, gv, gv, rv, rv)
				}
			}
			if got["loading"] != int64(0) {
				t.Errorf("loading parses as %#v, want 0", got["loading"])
			}
			if masters != nil {
				if v, _ := got["redis_version"].(string); !strings.HasPrefix(v, "7.0.") {
					t.Errorf("redis_version parses as %#v", got["redis_version"])
				}
				db0, _ := got["db0"].(map[string]any)
				if _, ok := db0["keys"].(int64); !ok {
					t.Errorf("db0 parses as %#v, want a dict with an int keys", got["db0"])
				}
				set, _ := got["cmdstat_set"].(map[string]any)
				if _, ok := set["usec_per_call"].(float64); !ok {
					t.Errorf("cmdstat_set parses as %#v, want a dict with a float usec_per_call", got["cmdstat_set"])
				}
			}
		}
	})
}

// parseInfoLikeRedisPy parses INFO as redis-py's parse_info does: lines
// split at the first ':', a value with '=' becomes a dict (items split at
// ',' then at the last '='), one with ',' only a list, a value with '.' a
// float when it parses as one, else an int when it parses as one, else a
// string; 'module' lines gather under "modules", lines without ':' under
// "__raw__". Go's number parsing stands in for Python's int() and float().
func parseInfoLikeRedisPy(text string) (map[string]any, error) {
	info := map[string]any{}
	lines := strings.FieldsFunc(text, func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			raw, _ := info["__raw__"].([]string)
			info["__raw__"] = append(raw, line)
			continue
		}
		if key == "cmdstat_host" {
			i := strings.LastIndexByte(line, ':')
			key, value = line[:i], line[i+1:]
		}
		if key == "module" {
			mods, _ := info["modules"].([]any)
			info["modules"] = append(mods, redisPyValue(value))
			continue
		}
		if _, dup := info[key]; dup {
			return nil, fmt.Errorf("field %s twice", key)
		}
		info[key] = redisPyValue(value)
	}
	return info, nil
}

func redisPyValue(value string) any {
	switch {
	case !strings.Contains(value, ",") && !strings.Contains(value, "="):
		s := strings.TrimSpace(value)
		if strings.Contains(value, ".") {
			if x, err := strconv.ParseFloat(s, 64); err == nil {
				return x
			}
			return value
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		return value
	case !strings.Contains(value, "="):
		var list []any
		for v := range strings.SplitSeq(value, ",") {
			if v != "" {
				list = append(list, redisPyValue(v))
			}
		}
		return list
	}
	dict := map[string]any{}
	for item := range strings.SplitSeq(value, ",") {
		if item == "" {
			continue
		}
		if i := strings.LastIndexByte(item, '='); i >= 0 {
			dict[item[:i]] = redisPyValue(item[i+1:])
		} else {
			dict[item] = true
		}
	}
	return dict
}

func TestBuildInfoFormats(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 1023: "1023B", 1024: "1.00K", 966064: "943.42K",
		12279808: "11.71M", 25276514304: "23.54G", 1 << 40: "1.00T",
		1 << 50: "1.00P", 1<<60 - 1: "1024.00P", 1 << 60: "1152921504606846976B",
	} {
		if got := bytesToHuman(n); got != want {
			t.Errorf("bytesToHuman(%d) = %s, want %s", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0.000000", 1500 * time.Millisecond: "1.500000",
		2*time.Second + 7*time.Microsecond: "2.000007", 12345678 * time.Microsecond: "12.345678",
	} {
		if got := infoSeconds(d); got != want {
			t.Errorf("infoSeconds(%v) = %s, want %s", d, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		cmp  int
	}{{"7.0.9", "7.0.10", -1}, {"6.2.14", "7.0.0", -1}, {"7.2.4", "7.2.4", 0}, {"", "7.0.0", 1}, {"7.0", "7.0.1", -1}} {
		if got := compareVersions(infoVersion(tc.a), infoVersion(tc.b)); got != tc.cmp {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.cmp)
		}
	}
	// Nothing from the masters: still every field, and a name with a line
	// break in it cannot break the layout.
	self := infoTestFacts()
	self.Executable = "/tmp/odd\r\nname"
	out := buildInfo(infoArgs([]string{"everything"}), nil, self)
	d := splitInfo(t, out)
	if got := d.get(t, "executable"); got != "/tmp/odd__name" {
		t.Errorf("executable %q, want the line breaks replaced", got)
	}
	if names := d.names["Keyspace"]; len(names) != 0 {
		t.Errorf("keyspace %v with no masters", names)
	}
}
