package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The deployment examples under examples/ hold the proxy's configuration in
// forms no Go code reads: compose environment variables, a Kubernetes
// ConfigMap, client timeouts, a Prometheus target. These tests read them
// with the proxy's own loader, variable names and defaults, so that a
// renamed key, a moved port or a longer default timeout fails here instead
// of in someone's cluster. examples_compose_test.go and
// examples_kubernetes_test.go hold the checks of one example each.

const examplesDir = "../../examples"

// TestExamplesParse: every YAML file under examples/ parses, every
// document of it, and the JSON ones are JSON.
func TestExamplesParse(t *testing.T) {
	var yamlFiles int
	err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".yml", ".yaml":
			yamlFiles++
			if _, err := yamlDocuments(data); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case ".json":
			if !json.Valid(data) {
				t.Errorf("%s: not valid JSON", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// compose (2), kubernetes, spring, monitoring (2).
	if yamlFiles < 6 {
		t.Errorf("found %d YAML files under %s, want at least 6", yamlFiles, examplesDir)
	}
}

// TestExamplesEnvNames: every SLOTPROXY_ variable that the examples and
// the README's Deploying section name is one the proxy reads.
func TestExamplesEnvNames(t *testing.T) {
	known := envNames()
	re := regexp.MustCompile(`SLOTPROXY_[A-Z0-9_]*[A-Z0-9]`)
	check := func(where string, text []byte) int {
		found := re.FindAllString(string(text), -1)
		for _, name := range found {
			if !slices.Contains(known, name) {
				t.Errorf("%s names %s, which is no configuration key's variable", where, name)
			}
		}
		return len(found)
	}
	var n int
	err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			n += check(p, data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, deploying, ok := strings.Cut(string(readme), "\n## Deploying\n")
	if !ok {
		t.Fatal("README.md has no Deploying section")
	}
	if i := strings.Index(deploying, "\n## "); i >= 0 {
		deploying = deploying[:i]
	}
	n += check("README.md, Deploying", []byte(deploying))
	if n == 0 {
		t.Error("no SLOTPROXY_ variable found: the pattern or the examples changed")
	}
}

// TestExamplesClientTimeouts: the Spring and Jedis examples talk to the
// sidecar's port and wait for a reply longer than the proxy may take to
// give one through a failover.
func TestExamplesClientTimeouts(t *testing.T) {
	d := defaultConfig()
	if sum := d.Backend.DialTimeout + d.Backend.ReadTimeout + d.Backend.RetryTimeout; sum != 9*time.Second {
		t.Errorf("backend dial+read+retry timeouts are %v by default: the READMEs and JedisExample.java say 9 s", sum)
	}
	cfg := loadSidecar(t).cfg
	worst := cfg.Backend.DialTimeout + cfg.Backend.ReadTimeout + cfg.Backend.RetryTimeout
	_, listenPort, _ := net.SplitHostPort(cfg.Listen)

	var spring struct {
		Spring struct {
			Data struct {
				Redis struct {
					Host    string `yaml:"host"`
					Port    string `yaml:"port"`
					Timeout string `yaml:"timeout"`
				} `yaml:"redis"`
			} `yaml:"data"`
		} `yaml:"spring"`
	}
	decodeFile(t, examplesDir+"/spring/application.yml", &spring)
	r := spring.Spring.Data.Redis
	if r.Port != listenPort || !isLoopback(r.Host) {
		t.Errorf("spring.data.redis: %s:%s, the sidecar listens on %s", r.Host, r.Port, cfg.Listen)
	}
	if d, err := time.ParseDuration(r.Timeout); err != nil || d <= worst {
		t.Errorf("spring.data.redis.timeout %q: want a duration above %v (backend dial + read + retry timeouts)", r.Timeout, worst)
	}

	java, err := os.ReadFile(examplesDir + "/jedis/JedisExample.java")
	if err != nil {
		t.Fatal(err)
	}
	constant := func(name string) int {
		m := regexp.MustCompile(`\b` + name + ` = ([0-9_]+);`).FindSubmatch(java)
		if m == nil {
			t.Fatalf("JedisExample.java: no int constant %s", name)
		}
		n, _ := strconv.Atoi(strings.ReplaceAll(string(m[1]), "_", ""))
		return n
	}
	if p := constant("PORT"); strconv.Itoa(p) != listenPort {
		t.Errorf("JedisExample.java: PORT %d, the sidecar listens on %s", p, cfg.Listen)
	}
	if ms := constant("SOCKET_TIMEOUT_MILLIS"); time.Duration(ms)*time.Millisecond <= worst {
		t.Errorf("JedisExample.java: SOCKET_TIMEOUT_MILLIS %d, want above %v (backend dial + read + retry timeouts)", ms, worst)
	}
}

// configFromEnv applies env over cfg as the proxy does at start-up, and
// checks the result as the proxy does.
func configFromEnv(t *testing.T, where string, cfg Config, env map[string]string) Config {
	t.Helper()
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	if err := applyEnv(&cfg, lookup); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := cfg.check(); err != nil {
		t.Fatalf("%s: the proxy would refuse to start: %v", where, err)
	}
	return cfg
}

// yamlDocuments parses every document of a YAML stream.
func yamlDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

func decodeFile(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func writeFile(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerEntrypoint is the exec-form ENTRYPOINT of a Dockerfile.
func dockerEntrypoint(t *testing.T, dockerfile string) []string {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var entry []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("%s: ENTRYPOINT is not in the exec form: %v", dockerfile, err)
			}
		}
	}
	if len(entry) == 0 {
		t.Fatalf("%s: no ENTRYPOINT", dockerfile)
	}
	return entry
}

func portOf(t *testing.T, key, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", key, addr, err)
	}
	return port
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
