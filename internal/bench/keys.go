package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// Keys. Through the proxy redis-benchmark names its keys key:<n>, n being
// __rand_int__: 12 zero-padded digits below -r. Under --cluster it names them
// key:{tag}:<n>, with {tag} replaced by a hash tag of a slot the connection's
// node owns. redis-benchmark's source draws that slot per request, which
// would make the direct keyspace 16384 x -r keys, impossible to
// pre-populate; 7.0.15 was seen to use one tag per master instead (that of
// its first slot). So the tags are discovered, not assumed: a short direct
// SET run, then a SCAN of the masters. When they are few, key:{tag}:<n> is
// pre-populated for each, and direct reads hit as proxy reads do.

// maxDirectPrefixes bounds the pre-population: more tags than this means
// redis-benchmark does draw one per request, and direct reads will miss.
const maxDirectPrefixes = 64

const keyPrefix = "key"

// benchKey is redis-benchmark's key:__rand_int__ for i.
func benchKey(i int) string { return prefixedKey(keyPrefix, i) }

func prefixedKey(prefix string, i int) string { return fmt.Sprintf("%s:%012d", prefix, i) }

// directPrefixes returns the key prefixes ("key:{06S}") that redis-benchmark
// --cluster writes, or nil (with a reason) when they are too many to
// pre-populate.
func directPrefixes(ctx context.Context, cluster *clustertest.Cluster, cfg config) ([]string, string, error) {
	const probeN = 2000
	sc := scenario{name: "probe", pipeline: 1, test: "set"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-benchmark", sc.args(direct, cfg, cluster.Nodes[0].Port, probeN)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("probing redis-benchmark --cluster's keys: %w: %s", err, firstLine(string(out)))
	}
	seen := map[string]bool{}
	for _, n := range cluster.Nodes {
		iter := cluster.Client(n.Addr).Scan(ctx, 0, keyPrefix+":{*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if i := strings.LastIndexByte(k, ':'); i > 0 {
				seen[k[:i]] = true
			}
		}
		if err := iter.Err(); err != nil {
			return nil, "", fmt.Errorf("scanning %s for redis-benchmark's keys: %w", n.Addr, err)
		}
	}
	if len(seen) > maxDirectPrefixes {
		return nil, fmt.Sprintf("%d different hash tags in %d requests", len(seen), probeN), nil
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, "", nil
}

// populate writes prefix:<12 digits> for every number redis-benchmark -r can
// draw and every prefix, straight to the servers (a cluster client for the
// cluster, a plain one for the standalone server): the proxy sees no load
// before the measured runs.
func populate(ctx context.Context, cc redis.Cmdable, prefixes []string, n int) error {
	value := strings.Repeat("p", valueSize)
	const batch = 5000
	for _, prefix := range prefixes {
		for start := 0; start < n; start += batch {
			_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := start; i < min(start+batch, n); i++ {
					p.Set(ctx, prefixedKey(prefix, i), value, 0)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("pre-populating %s:<n>: %w", prefix, err)
			}
		}
	}
	return nil
}

// keyCount is the number of keys over the masters (DBSIZE summed).
func keyCount(ctx context.Context, cluster *clustertest.Cluster) (int64, error) {
	var total int64
	for _, n := range cluster.Nodes {
		v, err := cluster.Client(n.Addr).DBSize(ctx).Result()
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}
