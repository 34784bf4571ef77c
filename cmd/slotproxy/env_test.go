package main

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestEnvNames: every key of proxy.yaml has its variable, named after its
// path, and no variable names a key that does not exist.
func TestEnvNames(t *testing.T) {
	names := envNames()
	for _, want := range []string{
		"SLOTPROXY_LISTEN", "SLOTPROXY_CLUSTER_SEEDS", "SLOTPROXY_CLUSTER_PASSWORD",
		"SLOTPROXY_CLUSTER_REFRESH_INTERVAL", "SLOTPROXY_BACKEND_READ_TIMEOUT",
		"SLOTPROXY_CLIENTS_PASSWORD", "SLOTPROXY_METRICS_LISTEN", "SLOTPROXY_LOG_LEVEL",
		"SLOTPROXY_SHUTDOWN_GRACE", "SLOTPROXY_SLOWLOG_THRESHOLD",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	// The documented file and the variables name the same keys.
	data, err := os.ReadFile("../../proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromFile := yamlKeyPaths(t, data)
	var want []string
	for _, p := range fromFile {
		want = append(want, "SLOTPROXY_"+strings.ToUpper(strings.ReplaceAll(p, ".", "_")))
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("variables %v\nproxy.yaml keys give %v", names, want)
	}
}

// TestApplyEnv: each kind of key is read from its variable, over the file.
func TestApplyEnv(t *testing.T) {
	cfg, err := parseConfig([]byte("listen: \":6000\"\ncluster:\n  seeds: [\"a:1\"]\n  password: fromfile\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SLOTPROXY_LISTEN":                   "127.0.0.1:5005",
		"SLOTPROXY_CLUSTER_SEEDS":            "10.0.0.1:7000, 10.0.0.2:7000",
		"SLOTPROXY_CLUSTER_PASSWORD":         "yes: no # not YAML",
		"SLOTPROXY_CLUSTER_REFRESH_INTERVAL": "3s",
		"SLOTPROXY_CLIENTS_MAX_CLIENTS":      "42",
		"SLOTPROXY_METRICS_PPROF":            "true",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := applyEnv(&cfg, lookup); err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Listen, cfg.Cluster.Seeds, cfg.Cluster.Password, cfg.Cluster.RefreshInterval, cfg.Clients.MaxClients, cfg.Metrics.Pprof}
	want := []any{"127.0.0.1:5005", []string{"10.0.0.1:7000", "10.0.0.2:7000"}, "yes: no # not YAML", 3 * time.Second, 42, true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	env = map[string]string{"SLOTPROXY_CLIENTS_MAX_CLIENTS": "many", "SLOTPROXY_CLIENTS_PASSWORD": "s3cret"}
	err = applyEnv(&cfg, lookup)
	if err == nil || !strings.Contains(err.Error(), "SLOTPROXY_CLIENTS_MAX_CLIENTS") || strings.Contains(err.Error(), "many") {
		t.Errorf("a bad value: %v", err)
	}
}

// yamlKeyPaths returns the dotted paths of every leaf key of a YAML
// mapping ("cluster.seeds").
func yamlKeyPaths(t *testing.T, data []byte) []string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.MappingNode {
				walk(v, prefix+k+".")
				continue
			}
			paths = append(paths, prefix+k)
		}
	}
	if len(root.Content) > 0 {
		walk(root.Content[0], "")
	}
	return paths
}
