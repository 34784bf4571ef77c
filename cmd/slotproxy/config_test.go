package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotproxy/slotproxy/proxy"
)

// cfgFile writes a config file for one test and returns its path.
func cfgFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProxyYAMLIsTheDefault: the documented proxy.yaml says exactly what an
// absent key means, and passes the checks.
func TestProxyYAMLIsTheDefault(t *testing.T) {
	cfg, err := loadConfig("../../proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("proxy.yaml loads as\n%+v\nthe defaults are\n%+v", cfg, want)
	}
	if err := cfg.check(); err != nil {
		t.Errorf("proxy.yaml fails the checks: %v", err)
	}
	// And it is what slotproxy runs with, given only -config.
	got, err := parseArgs([]string{"-config", "../../proxy.yaml"}, io.Discard)
	want := defaultConfig()
	want.File, _ = filepath.Abs("../../proxy.yaml")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseArgs(-config proxy.yaml) = %+v, %v", got, err)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("empty file means the defaults", func(t *testing.T) {
		cfg, err := loadConfig(cfgFile(t, "# nothing\n"))
		if err != nil || !reflect.DeepEqual(cfg, defaultConfig()) {
			t.Errorf("loadConfig = %+v, %v", cfg, err)
		}
	})
	t.Run("keys not given keep their defaults", func(t *testing.T) {
		cfg, err := loadConfig(cfgFile(t, "cluster:\n  refresh_interval: 1500ms\nbackend:\n  connections_per_node: 4\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := defaultConfig()
		want.Cluster.RefreshInterval = 1500 * time.Millisecond
		want.Backend.ConnectionsPerNode = 4
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("loadConfig = %+v, want %+v", cfg, want)
		}
	})
	t.Run("every key", func(t *testing.T) {
		cfg, err := loadConfig(cfgFile(t, `
listen: "127.0.0.1:6000"
cluster:
  seeds: ["10.0.0.1:7000", "10.0.0.2:7000"]
  username: app
  password: secret
  refresh_interval: 30s
backend:
  connections_per_node: 8
  dial_timeout: 250ms
  read_timeout: 2s
  retry_timeout: 9s
  max_dedicated_per_node: 32
  dedicated_wait: 1500ms
clients:
  password: client-secret
  max_clients: 50
  max_output_bytes: 2097152
  idle_timeout: 5m
  users:
    - name: app
      password: app-pw
    - name: reports
      password_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
      read_only: true
commands:
  config_set: all-nodes
  script_cache_bytes: 1024
  deny: [shutdown, "config|rewrite"]
  deny_flush: true
  deny_keys: true
slowlog:
  threshold: 0s
  max_len: 1000
  backend_fields: true
metrics:
  listen: ""
log:
  level: debug
  format: json
runtime:
  gomaxprocs: 4
shutdown_grace: 2500ms
tls:
  cert_file: /etc/slotproxy/proxy.crt
  key_file: /etc/slotproxy/proxy.key
  client_ca_file: /etc/slotproxy/clients-ca.crt
  min_version: "1.3"
  handshake_timeout: 3s
backend_tls:
  enabled: true
  ca_file: /etc/slotproxy/redis-ca.crt
  cert_file: /etc/slotproxy/redis-client.crt
  key_file: /etc/slotproxy/redis-client.key
  server_name: redis.internal
`))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			Listen: "127.0.0.1:6000",
			Cluster: ClusterConfig{
				Seeds: []string{"10.0.0.1:7000", "10.0.0.2:7000"}, Username: "app", Password: "secret",
				RefreshInterval: 30 * time.Second,
			},
			Backend: BackendConfig{ConnectionsPerNode: 8, DialTimeout: 250 * time.Millisecond, ReadTimeout: 2 * time.Second, RetryTimeout: 9 * time.Second,
				MaxDedicatedPerNode: 32, DedicatedWait: 1500 * time.Millisecond},
			Clients: ClientsConfig{Password: "client-secret", MaxClients: 50, MaxOutputBytes: 2 << 20, IdleTimeout: 5 * time.Minute,
				Users: []UserConfig{{Name: "app", Password: "app-pw"}, {Name: "reports", PasswordSHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", ReadOnly: true}}},
			Commands: CommandsConfig{ConfigSet: "all-nodes", ScriptCacheBytes: 1024, Deny: []string{"shutdown", "config|rewrite"}, DenyFlush: true, DenyKeys: true},
			Slowlog:  SlowlogConfig{Threshold: 0, MaxLen: 1000, BackendFields: true},
			Metrics:  MetricsConfig{Listen: ""},
			Log:      LogConfig{Level: "debug", Format: "json"},
			Runtime:  RuntimeConfig{GOMAXPROCS: 4},

			ShutdownGrace: 2500 * time.Millisecond,

			TLS: TLSConfig{CertFile: "/etc/slotproxy/proxy.crt", KeyFile: "/etc/slotproxy/proxy.key", ClientCAFile: "/etc/slotproxy/clients-ca.crt",
				MinVersion: "1.3", HandshakeTimeout: 3 * time.Second},
			BackendTLS: BackendTLSConfig{Enabled: true, CAFile: "/etc/slotproxy/redis-ca.crt", CertFile: "/etc/slotproxy/redis-client.crt",
				KeyFile: "/etc/slotproxy/redis-client.key", ServerName: "redis.internal"},
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("loadConfig =\n%+v\nwant\n%+v", cfg, want)
		}
		if err := cfg.check(); err != nil {
			t.Errorf("check: %v", err)
		}
	})
	for _, tt := range []struct {
		name, yaml, key string
	}{
		{"unknown top-level key", "listen: \":5000\"\nlisten_port: 5000\n", "listen_port"},
		{"unknown nested key", "cluster:\n  seed: [\"a:1\"]\n", "seed"},
		{"misspelt backend key", "backend:\n  read_timeout_ms: 300\n", "read_timeout_ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(cfgFile(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("loadConfig: %v; want an error naming %q", err, tt.key)
			}
		})
	}
	t.Run("bad duration", func(t *testing.T) {
		if _, err := loadConfig(cfgFile(t, "backend:\n  dial_timeout: soon\n")); err == nil {
			t.Error("no error")
		}
	})
	t.Run("not YAML", func(t *testing.T) {
		if _, err := loadConfig(cfgFile(t, "listen: [\n")); err == nil {
			t.Error("no error")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := loadConfig(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
			t.Error("no error")
		}
	})
}

// TestConfigCheck breaks one rule at a time: the error names the key.
func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name   string
		key    string // "" when the config is valid
		mutate func(c *Config)
	}{
		{"defaults", "", func(c *Config) {}},
		{"listen not host:port", "listen", func(c *Config) { c.Listen = "5000" }},
		{"listen empty", "listen", func(c *Config) { c.Listen = "" }},
		{"no seeds", "cluster.seeds", func(c *Config) { c.Cluster.Seeds = nil }},
		{"seed not host:port", "cluster.seeds", func(c *Config) { c.Cluster.Seeds = []string{"a:1", "b"} }},
		{"username without password", "cluster.username", func(c *Config) { c.Cluster.Username = "app" }},
		{"username with password", "", func(c *Config) { c.Cluster.Username, c.Cluster.Password = "app", "pw" }},
		{"zero refresh interval", "cluster.refresh_interval", func(c *Config) { c.Cluster.RefreshInterval = 0 }},
		{"negative dial timeout", "backend.dial_timeout", func(c *Config) { c.Backend.DialTimeout = -time.Second }},
		{"zero read timeout", "backend.read_timeout", func(c *Config) { c.Backend.ReadTimeout = 0 }},
		{"zero retry timeout", "backend.retry_timeout", func(c *Config) { c.Backend.RetryTimeout = 0 }},
		{"no connections", "backend.connections_per_node", func(c *Config) { c.Backend.ConnectionsPerNode = 0 }},
		{"65 connections", "backend.connections_per_node", func(c *Config) { c.Backend.ConnectionsPerNode = 65 }},
		{"64 connections", "", func(c *Config) { c.Backend.ConnectionsPerNode = 64 }},
		{"no dedicated connections", "backend.max_dedicated_per_node", func(c *Config) { c.Backend.MaxDedicatedPerNode = 0 }},
		{"zero dedicated wait", "backend.dedicated_wait", func(c *Config) { c.Backend.DedicatedWait = 0 }},
		{"no clients", "clients.max_clients", func(c *Config) { c.Clients.MaxClients = 0 }},
		{"negative gomaxprocs", "runtime.gomaxprocs", func(c *Config) { c.Runtime.GOMAXPROCS = -1 }},
		{"Go's own gomaxprocs", "", func(c *Config) { c.Runtime.GOMAXPROCS = 0 }},
		{"output limit under 1 MiB", "clients.max_output_bytes", func(c *Config) { c.Clients.MaxOutputBytes = 1<<20 - 1 }},
		{"negative idle timeout", "clients.idle_timeout", func(c *Config) { c.Clients.IdleTimeout = -time.Second }},
		{"idle timeout", "", func(c *Config) { c.Clients.IdleTimeout = 300 * time.Second }},
		{"metrics listen not host:port", "metrics.listen", func(c *Config) { c.Metrics.Listen = "9121" }},
		{"metrics disabled", "", func(c *Config) { c.Metrics.Listen = "" }},
		{"unknown log level", "log.level", func(c *Config) { c.Log.Level = "verbose" }},
		{"log level in capitals", "", func(c *Config) { c.Log.Level = "WARN" }},
		{"unknown log format", "log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"config_set misspelt", "commands.config_set", func(c *Config) { c.Commands.ConfigSet = "all" }},
		{"config_set to every node", "", func(c *Config) { c.Commands.ConfigSet = "all-nodes" }},
		{"negative script cache", "commands.script_cache_bytes", func(c *Config) { c.Commands.ScriptCacheBytes = -1 }},
		{"slow log of no entries", "slowlog.max_len", func(c *Config) { c.Slowlog.MaxLen = 0 }},
		{"slow log of one entry", "", func(c *Config) { c.Slowlog.MaxLen = 1 }},
		{"slow log off", "", func(c *Config) { c.Slowlog.Threshold = -time.Millisecond }},
		{"slow log of every request", "", func(c *Config) { c.Slowlog.Threshold = 0 }},
		{"negative shutdown grace", "shutdown_grace", func(c *Config) { c.ShutdownGrace = -time.Second }},
		{"no shutdown grace", "", func(c *Config) { c.ShutdownGrace = 0 }},
		{"tls certificate and key", "", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = "p.crt", "p.key" }},
		{"tls certificate without key", "tls.key_file", func(c *Config) { c.TLS.CertFile = "p.crt" }},
		{"tls key without certificate", "tls.cert_file", func(c *Config) { c.TLS.KeyFile = "p.key" }},
		{"tls client CA without TLS", "tls.client_ca_file", func(c *Config) { c.TLS.ClientCAFile = "ca.crt" }},
		{"mutual tls", "", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = "p.crt", "p.key", "ca.crt" }},
		{"tls 1.3 only", "", func(c *Config) { c.TLS.MinVersion = "1.3" }},
		{"tls 1.1", "tls.min_version", func(c *Config) { c.TLS.MinVersion = "1.1" }},
		{"tls version without its dot", "tls.min_version", func(c *Config) { c.TLS.MinVersion = "13" }},
		{"no tls handshake timeout", "tls.handshake_timeout", func(c *Config) { c.TLS.HandshakeTimeout = 0 }},
		{"backend tls with the system's roots", "", func(c *Config) { c.BackendTLS.Enabled = true }},
		{"backend tls CA while off", "backend_tls.ca_file", func(c *Config) { c.BackendTLS.CAFile = "ca.crt" }},
		{"backend tls name while off", "backend_tls.server_name", func(c *Config) { c.BackendTLS.ServerName = "redis.internal" }},
		{"backend tls certificate without key", "backend_tls.key_file", func(c *Config) {
			c.BackendTLS.Enabled, c.BackendTLS.CertFile = true, "c.crt"
		}},
		{"backend tls key without certificate", "backend_tls.cert_file", func(c *Config) {
			c.BackendTLS.Enabled, c.BackendTLS.KeyFile = true, "c.key"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			tt.mutate(&cfg)
			err := cfg.check()
			if tt.key == "" {
				if err != nil {
					t.Errorf("check: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.key+":") {
				t.Errorf("check: %v; want an error starting with %q", err, tt.key+":")
			}
		})
	}
	// Through parseArgs, as slotproxy reports it.
	path := cfgFile(t, "backend:\n  connections_per_node: 100\n")
	if _, err := parseArgs([]string{"-config", path}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "backend.connections_per_node") {
		t.Errorf("parseArgs: %v; want an error naming backend.connections_per_node", err)
	}
}

// TestSlowlogThresholdToOptions: the key's 0 (every request) must not
// reach proxy.Options as its zero, which means the default.
func TestSlowlogThresholdToOptions(t *testing.T) {
	for _, tt := range []struct{ yaml, want time.Duration }{
		{0, time.Nanosecond},
		{10 * time.Millisecond, 10 * time.Millisecond},
		{-time.Millisecond, -time.Millisecond},
	} {
		if got := (SlowlogConfig{Threshold: tt.yaml}).proxyThreshold(); got != tt.want {
			t.Errorf("slowlog.threshold %v: proxy.Options gets %v, want %v", tt.yaml, got, tt.want)
		}
	}
	cfg, err := loadConfig(cfgFile(t, "slowlog:\n  threshold: -1ms\n"))
	if err != nil || cfg.Slowlog.Threshold != -time.Millisecond {
		t.Errorf("threshold: -1ms loads as %v, %v", cfg.Slowlog.Threshold, err)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	path := cfgFile(t, "listen: \"127.0.0.1:7777\"\ncluster:\n  seeds: [\"10.0.0.1:7000\"]\nmetrics:\n  listen: \"127.0.0.1:9999\"\nlog:\n  level: warn\n")

	cfg, err := parseArgs([]string{"-config", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7777" || !slices.Equal(cfg.Cluster.Seeds, []string{"10.0.0.1:7000"}) ||
		cfg.Metrics.Listen != "127.0.0.1:9999" || cfg.Log.Level != "warn" {
		t.Errorf("from the file alone: %+v", cfg)
	}

	cfg, err = parseArgs([]string{
		"-config", path,
		"-listen", "127.0.0.1:6001",
		"-seeds", "h1:7000,h2:7001",
		"-metrics-listen", "127.0.0.1:9200",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:6001" {
		t.Errorf("listen = %q", cfg.Listen)
	}
	if !slices.Equal(cfg.Cluster.Seeds, []string{"h1:7000", "h2:7001"}) {
		t.Errorf("seeds = %q", cfg.Cluster.Seeds)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9200" {
		t.Errorf("metrics.listen = %q", cfg.Metrics.Listen)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("a key without a flag lost its file value: log.level = %q", cfg.Log.Level)
	}

	// Without a file, flags apply over the defaults.
	cfg, err = parseArgs([]string{"-seeds", "127.0.0.1:7100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.Cluster.Seeds = []string{"127.0.0.1:7100"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parseArgs(-seeds) = %+v", cfg)
	}

	// A flag value is checked like a file value.
	if _, err := parseArgs([]string{"-seeds", "h1:7000,nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), "cluster.seeds") {
		t.Errorf("bad -seeds: %v", err)
	}
	if _, err := parseArgs([]string{"-listen", "nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("bad -listen: %v", err)
	}
	if _, err := parseArgs([]string{"-nosuchflag"}, io.Discard); err == nil {
		t.Error("unknown flag: no error")
	}
	if _, err := parseArgs([]string{"stray"}, io.Discard); err == nil || !strings.Contains(err.Error(), "stray") {
		t.Errorf("stray argument: %v", err)
	}
}

// FuzzLoadConfig: whatever a configuration file holds, loading it returns
// a configuration or an error, never a panic; a file that is not YAML is
// an error; and a configuration loaded writes back to YAML that loads as
// itself.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"", "# nothing\n", "listen: \":6000\"\n",
		"cluster:\n  seeds: [\"a:1\", \"b:2\"]\n  refresh_interval: 1500ms\n",
		"clients:\n  idle_timeout: 5m\n  max_clients: 3\n",
		"backend:\n  dial_timeout: soon\n", "listen: [\n", "listen_port: 5000\n",
		"shutdown_grace: -1s\n", "---\nlisten: a\n---\nlisten: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		var anyYAML any
		if yerr := yaml.Unmarshal(data, &anyYAML); yerr != nil && err == nil {
			t.Fatalf("%q is not YAML (%v), yet it loads", data, yerr)
		}
		if err != nil {
			return
		}
		cfg.check() // must not panic, whatever it says
		out, err := yaml.Marshal(&cfg)
		if err != nil {
			t.Fatalf("a loaded configuration does not write back: %v\n%+v", err, cfg)
		}
		again, err := parseConfig(out)
		if err != nil {
			t.Fatalf("a configuration written back does not load: %v\n%s", err, out)
		}
		if out2, _ := yaml.Marshal(&again); !bytes.Equal(out, out2) {
			t.Fatalf("a configuration written back loads as another:\n%s\nthen\n%s", out, out2)
		}
	})
}

// TestDenyList: the policy's list is the deny key's, with FLUSHALL,
// FLUSHDB and KEYS added by their switches; the default is the proxy's.
func TestDenyList(t *testing.T) {
	if got := defaultConfig().Commands.denyList(); !slices.Equal(got, proxy.DefaultDeny) {
		t.Errorf("default deny list %v, want %v", got, proxy.DefaultDeny)
	}
	c := CommandsConfig{Deny: []string{"debug"}, DenyFlush: true, DenyKeys: true}
	if got, want := c.denyList(), []string{"debug", "flushall", "flushdb", "keys"}; !slices.Equal(got, want) {
		t.Errorf("deny list %v, want %v", got, want)
	}
	if got := (CommandsConfig{Deny: []string{}}).denyList(); len(got) != 0 {
		t.Errorf("deny: [] gives %v", got)
	}
}
