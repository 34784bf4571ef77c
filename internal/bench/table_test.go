package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		num, den float64
		want     string
	}{
		{12, 10, "1.20×"},
		{8.4, 12, "0.70×"},
		{1, 3, "0.33×"},
		{5, 0, "—"},
	} {
		if got := ratio(tc.num, tc.den); got != tc.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tc.num, tc.den, got, tc.want)
		}
	}
}

func TestParseRSS(t *testing.T) {
	status := "Name:\tslotproxy\nVmPeak:\t  1266540 kB\nVmRSS:\t   17306 kB\nRssAnon:\t    5734 kB\nRssFile:\t   11572 kB\nRssShmem:\t       0 kB\n"
	got, err := parseRSS([]byte(status), "status")
	if err != nil {
		t.Fatal(err)
	}
	if want := (rss{total: 17306, anon: 5734, file: 11572}); got != want {
		t.Errorf("parseRSS = %+v, want %+v", got, want)
	}
	if s, want := got.String(), "16.9 MiB (anon 5.6, file 11.3)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	// A kernel without the split (before 4.5) must not pass for zero.
	if _, err := parseRSS([]byte("VmRSS:\t 17306 kB\n"), "status"); err == nil || !strings.Contains(err.Error(), "RssAnon, RssFile") {
		t.Errorf("without RssAnon/RssFile: err = %v, want one naming both", err)
	}
}

// fixedRuns are runs of one side whose medians are the given figures.
func fixedRuns(s side, rps, p50, p99, proxyUs, backendUs, standaloneUs float64) []runResult {
	const n = 100000
	perReq := func(us float64) time.Duration { return time.Duration(us * n * float64(time.Microsecond)) }
	var out []runResult
	for round := 1; round <= 3; round++ {
		out = append(out, runResult{
			side: s, round: round, n: n, rps: rps, benchRPS: rps, p50: p50, p99: p99,
			load:     time.Duration(n / rps * float64(time.Second)),
			proxyCPU: perReq(proxyUs), backendCPU: perReq(backendUs), standaloneCPU: perReq(standaloneUs),
			hits: n, misses: 0,
		})
	}
	return out
}

// firstRow returns the column names and the first row's cells of the
// table whose header line starts with header.
func firstRow(t *testing.T, md, header string) (names, cells []string) {
	t.Helper()
	split := func(l string) []string {
		f := strings.Split(strings.Trim(l, "|"), "|")
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		return f
	}
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, header) && i+2 < len(lines) {
			names, cells = split(l), split(lines[i+2])
			if len(names) != len(cells) {
				t.Fatalf("%d columns, %d cells in %q", len(names), len(cells), lines[i+2])
			}
			return names, cells
		}
	}
	t.Fatalf("no table with header %q in:\n%s", header, md)
	return nil, nil
}

func TestMarkdownStandaloneReference(t *testing.T) {
	sc := scenarios()[1] // GET
	res := scenarioResult{sc: sc}
	res.side[direct].runs = fixedRuns(direct, 90000, 0.35, 1.3, 0.01, 9.0, 0.01)
	res.side[viaProxy].runs = fixedRuns(viaProxy, 54000, 0.84, 1.9, 12.0, 4.5, 0.01)
	res.side[standalone].runs = fixedRuns(standalone, 80000, 0.40, 1.2, 0.01, 0.02, 15.0)
	// A second scenario whose standalone side failed: no ratios to it.
	broken := scenarioResult{sc: scenarios()[4]} // MGET
	broken.side[direct].runs = fixedRuns(direct, 90000, 0.35, 1.3, 0.01, 10.0, 0.01)
	broken.side[viaProxy].runs = fixedRuns(viaProxy, 50000, 0.9, 2.0, 13.0, 5.0, 0.01)
	broken.side[standalone].err = "ERR something"
	rep := report{
		cfg:     config{rounds: 3, seconds: 3, clients: 50, threads: 3, keyspace: 100000},
		results: []scenarioResult{res, broken},
		mem: memory{
			idle:  rss{total: 17306, anon: 5734, file: 11572},
			conns: 100, freshIdle: rss{total: 10240, anon: 4096, file: 6144}, connected: rss{total: 10340, anon: 4196, file: 6144},
		},
	}
	md := rep.markdown()

	names, cells := firstRow(t, md, "| scenario | direct req/s |")
	main := map[string]string{}
	for i, name := range names {
		main[name] = cells[i]
	}
	for col, want := range map[string]string{
		"scenario":                           "GET",
		"direct req/s":                       "90000",
		"slotproxy req/s (ratio)":            "54000 (0.60×)",
		"proxy CPU µs/req":                   "12.00",
		"standalone redis-server CPU µs/req": "15.00",
		"proxy CPU / standalone":             "0.80×",
		"backend CPU µs/req via proxy":       "4.50",
		"backend CPU µs/req direct":          "9.00",
		"masters via proxy / direct":         "0.50×",
	} {
		if got, ok := main[col]; !ok || got != want {
			t.Errorf("main table, column %q = %q (present %v), want %q", col, got, ok, want)
		}
	}

	if !strings.Contains(md, "### slotproxy vs. a standalone redis-server (the physical reference)") {
		t.Errorf("no standalone table heading in:\n%s", md)
	}
	_, ref := firstRow(t, md, "| scenario | standalone req/s | slotproxy req/s | ratio |")
	want := []string{"GET", "80000", "54000", "0.68×", "0.400 / 0.840", "1.200 / 1.900", "15.00", "12.00", "0.80×"}
	if !slices.Equal(ref, want) {
		t.Errorf("reference table row = %q, want %q", ref, want)
	}

	for _, s := range []string{
		"| MGET 10 keys (direct: 1 slot, a floor) | 90000 | 50000 (0.56×) |", // the broken scenario's row starts as usual...
		"| 13.00 | errors | — | 5.00 | 10.00 | 0.50× |",                      // ...and has no ratio to the standalone side
		"| MGET 10 keys | errors | 50000 | — |",                              // nor in the reference table, without the remark on the direct side
		"- **errors** (MGET 10 keys, standalone): ERR something",             // and says why
		"does one read and one write per client request",                     // the bullet explaining the reference
		"- idle, before any load: 16.9 MiB (anon 5.6, file 11.3)",            // RSS split
		"10.0 MiB (anon 4.0, file 6.0) idle → 10.1 MiB (anon 4.1, file 6.0): **1.0 KiB per connection**",
		"| GET | 1 | standalone | 100000 | 1.250 | 80000 | 80000 | 0.400 | 1.200 | — | — | 15.00 |", // per-run details
		"GET 100% direct / 100% proxy / 100% standalone",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}
}
