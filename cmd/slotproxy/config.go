package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/proxy"
)

// Config is the whole configuration; proxy.yaml at the repository root
// documents every key.
type Config struct {
	Listen   string         `yaml:"listen"`
	Cluster  ClusterConfig  `yaml:"cluster"`
	Backend  BackendConfig  `yaml:"backend"`
	Clients  ClientsConfig  `yaml:"clients"`
	Commands CommandsConfig `yaml:"commands"`
	Slowlog  SlowlogConfig  `yaml:"slowlog"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	Log      LogConfig      `yaml:"log"`
	Runtime  RuntimeConfig  `yaml:"runtime"`
	// ShutdownGrace is how long SIGTERM lets clients finish the commands
	// they sent before they are disconnected.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`

	TLS        TLSConfig        `yaml:"tls"`
	BackendTLS BackendTLSConfig `yaml:"backend_tls"`

	// File is the configuration file's absolute path, for INFO; "" when
	// none was given. Not a key.
	File string `yaml:"-"`
}

type ClusterConfig struct {
	Seeds           []string      `yaml:"seeds"`
	Username        string        `yaml:"username"`
	Password        string        `yaml:"password"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

type BackendConfig struct {
	ConnectionsPerNode int           `yaml:"connections_per_node"`
	DialTimeout        time.Duration `yaml:"dial_timeout"`
	ReadTimeout        time.Duration `yaml:"read_timeout"`
	RetryTimeout       time.Duration `yaml:"retry_timeout"`
	// MaxDedicatedPerNode bounds the connections to each node that one
	// client holds alone: transactions, blocking commands, subscribers.
	MaxDedicatedPerNode int           `yaml:"max_dedicated_per_node"`
	DedicatedWait       time.Duration `yaml:"dedicated_wait"`
}

type ClientsConfig struct {
	Password string `yaml:"password"`
	// Users are client accounts besides the default user, ACL style.
	Users          []UserConfig `yaml:"users"`
	MaxClients     int          `yaml:"max_clients"`
	MaxOutputBytes int          `yaml:"max_output_bytes"`
	// IdleTimeout closes a client idle for that long (redis-server's
	// timeout); 0 never does.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

type CommandsConfig struct {
	ConfigSet        string `yaml:"config_set"`
	ScriptCacheBytes int    `yaml:"script_cache_bytes"`
	// Deny is the command policy: commands refused with an error that
	// names it. DenyFlush and DenyKeys add FLUSHALL and FLUSHDB, and KEYS.
	Deny      []string `yaml:"deny"`
	DenyFlush bool     `yaml:"deny_flush"`
	DenyKeys  bool     `yaml:"deny_keys"`
}

// denyList is the whole list proxy.Options.Deny takes.
func (c CommandsConfig) denyList() []string {
	deny := append([]string(nil), c.Deny...)
	if c.DenyFlush {
		deny = append(deny, "flushall", "flushdb")
	}
	if c.DenyKeys {
		deny = append(deny, "keys")
	}
	return deny
}

// UserConfig is one of clients.users: AUTH name password.
type UserConfig struct {
	Name           string `yaml:"name"`
	Password       string `yaml:"password"`
	PasswordSHA256 string `yaml:"password_sha256"`
	ReadOnly       bool   `yaml:"read_only"`
}

// proxyUsers is clients.users as proxy.Options takes them.
func (c ClientsConfig) proxyUsers() []proxy.User {
	users := make([]proxy.User, len(c.Users))
	for i, u := range c.Users {
		users[i] = proxy.User{Name: u.Name, Password: u.Password, PasswordSHA256: u.PasswordSHA256, ReadOnly: u.ReadOnly}
	}
	return users
}

// SlowlogConfig is the proxy's own slow log (SLOWLOG GET).
type SlowlogConfig struct {
	// Threshold: a request that takes at least this long through the
	// proxy is kept; 0 keeps every request, a negative one none, as
	// redis-server's slowlog-log-slower-than.
	Threshold     time.Duration `yaml:"threshold"`
	MaxLen        int           `yaml:"max_len"`
	BackendFields bool          `yaml:"backend_fields"`
}

// proxyThreshold is Threshold as proxy.Options takes it, where zero means
// the default: every request takes at least a nanosecond.
func (s SlowlogConfig) proxyThreshold() time.Duration {
	if s.Threshold == 0 {
		return time.Nanosecond
	}
	return s.Threshold
}

type MetricsConfig struct {
	Listen string `yaml:"listen"`
	// Pprof serves Go profiles under /debug/pprof/ on the admin listener.
	Pprof bool `yaml:"pprof"`
}

type RuntimeConfig struct {
	GOMAXPROCS int `yaml:"gomaxprocs"`
}

type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// TLSConfig is TLS on the client listener, which speaks it when cert_file
// is set (and then only it).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, makes clients show a certificate it signs.
	ClientCAFile     string        `yaml:"client_ca_file"`
	MinVersion       string        `yaml:"min_version"` // "1.2" or "1.3"
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// BackendTLSConfig is TLS towards the cluster's nodes, discovery included.
type BackendTLSConfig struct {
	Enabled bool   `yaml:"enabled"`
	CAFile  string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate the nodes may ask for.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// defaultConfig is what an absent key means.
func defaultConfig() Config {
	return Config{
		Listen: ":5000",
		Cluster: ClusterConfig{
			Seeds:           []string{"127.0.0.1:7000"},
			RefreshInterval: 10 * time.Second,
		},
		Backend: BackendConfig{
			ConnectionsPerNode:  1,
			DialTimeout:         time.Second,
			ReadTimeout:         3 * time.Second,
			RetryTimeout:        5 * time.Second,
			MaxDedicatedPerNode: 256,
			DedicatedWait:       5 * time.Second,
		},
		Clients:  ClientsConfig{Users: []UserConfig{}, MaxClients: 10000, MaxOutputBytes: 128 << 20},
		Commands: CommandsConfig{ConfigSet: "refuse", ScriptCacheBytes: 16 << 20, Deny: slices.Clone(proxy.DefaultDeny)},
		Slowlog:  SlowlogConfig{Threshold: 10 * time.Millisecond, MaxLen: 128},
		Metrics:  MetricsConfig{Listen: ":9121"},
		Log:      LogConfig{Level: "info", Format: "text"},
		Runtime:  RuntimeConfig{GOMAXPROCS: 1},

		ShutdownGrace: 10 * time.Second,

		TLS: TLSConfig{MinVersion: "1.2", HandshakeTimeout: 10 * time.Second},
	}
}

// loadConfig reads a YAML file over the defaults.
func loadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return defaultConfig(), err
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig reads YAML over the defaults. Unknown keys are errors, so
// that a misspelt key does not silently keep its default.
func parseConfig(data []byte) (Config, error) {
	cfg := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, yamlError(err)
	}
	return cfg, nil
}

// yamlError rewrites a yaml.v3 error for stderr and the log: yaml.v3
// quotes the value it cannot decode, which may be a password typed on the
// wrong line, so quoted values are left out (the line number stays). An
// unknown key is named when it looks like one (lower case, digits and
// underscores): a key name is what the operator needs to see, and a
// password is rarely shaped like one.
func yamlError(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if pre, rest, ok := strings.Cut(l, "field "); ok {
			if name, post, ok := strings.Cut(rest, " not found in type "); ok {
				if !keyShaped(name) {
					name = "(not shaped like a key)"
				}
				lines[i] = pre + "field " + name + " not found in type " + post
			}
		}
		lines[i] = oplog.Scrub(lines[i])
	}
	return errors.New(strings.Join(lines, "\n"))
}

func keyShaped(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// check reports the first invalid setting, by its key.
func (c *Config) check() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if len(c.Cluster.Seeds) == 0 {
		return errors.New("cluster.seeds: at least one seed is required")
	}
	for _, s := range c.Cluster.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("cluster.seeds: %q is not host:port", s)
		}
	}
	if c.ShutdownGrace < 0 {
		return fmt.Errorf("shutdown_grace: must not be negative, got %v", c.ShutdownGrace)
	}
	if c.Cluster.Username != "" && c.Cluster.Password == "" {
		return errors.New("cluster.username: set without cluster.password")
	}
	seen := map[string]bool{}
	for _, u := range c.Clients.proxyUsers() {
		if err := u.Check(); err != nil {
			return errors.New("clients.users: " + err.Error())
		}
		if seen[u.Name] {
			return fmt.Errorf("clients.users: user %q is listed twice", u.Name)
		}
		seen[u.Name] = true
	}
	for key, d := range map[string]time.Duration{
		"cluster.refresh_interval": c.Cluster.RefreshInterval,
		"backend.dial_timeout":     c.Backend.DialTimeout,
		"backend.read_timeout":     c.Backend.ReadTimeout,
		"backend.retry_timeout":    c.Backend.RetryTimeout,
		"backend.dedicated_wait":   c.Backend.DedicatedWait,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: must be a positive duration, got %v", key, d)
		}
	}
	if c.Backend.ConnectionsPerNode < 1 || c.Backend.ConnectionsPerNode > 64 {
		return fmt.Errorf("backend.connections_per_node: must be 1 to 64, got %d", c.Backend.ConnectionsPerNode)
	}
	if c.Backend.MaxDedicatedPerNode < 1 {
		return fmt.Errorf("backend.max_dedicated_per_node: must be at least 1, got %d", c.Backend.MaxDedicatedPerNode)
	}
	if c.Clients.MaxClients < 1 {
		return fmt.Errorf("clients.max_clients: must be at least 1, got %d", c.Clients.MaxClients)
	}
	if c.Clients.IdleTimeout < 0 {
		return fmt.Errorf("clients.idle_timeout: must be 0 (never) or more, got %v", c.Clients.IdleTimeout)
	}
	if c.Clients.MaxOutputBytes < 1<<20 {
		return fmt.Errorf("clients.max_output_bytes: must be at least 1048576, got %d", c.Clients.MaxOutputBytes)
	}
	if v := c.Commands.ConfigSet; v != "refuse" && v != "all-nodes" {
		return fmt.Errorf("commands.config_set: %q is neither refuse nor all-nodes", v)
	}
	if c.Commands.ScriptCacheBytes < 0 {
		return fmt.Errorf("commands.script_cache_bytes: must be 0 or more, got %d", c.Commands.ScriptCacheBytes)
	}
	if c.Slowlog.MaxLen < 1 {
		return fmt.Errorf("slowlog.max_len: must be at least 1 (a negative slowlog.threshold keeps nothing), got %d", c.Slowlog.MaxLen)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %q is not host:port", c.Metrics.Listen)
		}
	}
	if c.Runtime.GOMAXPROCS < 0 {
		return fmt.Errorf("runtime.gomaxprocs: must be 0 (Go's default) or more, got %d", c.Runtime.GOMAXPROCS)
	}
	if _, err := c.Log.level(); err != nil {
		return err
	}
	if err := c.TLS.check(); err != nil {
		return err
	}
	if err := c.BackendTLS.check(); err != nil {
		return err
	}
	if f := c.Log.Format; f != "text" && f != "json" {
		return fmt.Errorf("log.format: %q is neither text nor json", f)
	}
	return nil
}

func (l LogConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(l.Level))); err != nil {
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level)
	}
	return lv, nil
}

func (t TLSConfig) check() error {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return errors.New("tls.key_file: required with tls.cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		return errors.New("tls.cert_file: required with tls.key_file")
	case t.ClientCAFile != "" && t.CertFile == "":
		return errors.New("tls.client_ca_file: set without tls.cert_file, which turns TLS on")
	case t.MinVersion != "1.2" && t.MinVersion != "1.3":
		return fmt.Errorf("tls.min_version: %q is neither 1.2 nor 1.3", t.MinVersion)
	case t.HandshakeTimeout <= 0:
		return fmt.Errorf("tls.handshake_timeout: must be a positive duration, got %v", t.HandshakeTimeout)
	}
	return nil
}

func (b BackendTLSConfig) check() error {
	if !b.Enabled {
		for _, kv := range [][2]string{{"ca_file", b.CAFile}, {"cert_file", b.CertFile}, {"key_file", b.KeyFile}, {"server_name", b.ServerName}} {
			if kv[1] != "" {
				return fmt.Errorf("backend_tls.%s: set without backend_tls.enabled", kv[0])
			}
		}
		return nil
	}
	switch {
	case b.CertFile != "" && b.KeyFile == "":
		return errors.New("backend_tls.key_file: required with backend_tls.cert_file")
	case b.KeyFile != "" && b.CertFile == "":
		return errors.New("backend_tls.cert_file: required with backend_tls.key_file")
	}
	return nil
}
