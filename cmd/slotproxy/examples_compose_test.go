package main

import (
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	composeDir = examplesDir + "/compose"
	// What the prometheus image reads without a --config.file flag.
	promDefaultConfig = "/etc/prometheus/prometheus.yml"
)

// TestExamplesCompose checks docker-compose.yml as a whole: the proxy's
// environment makes a valid configuration, and the ports, the
// healthcheck, Prometheus and the six nodes agree with it.
func TestExamplesCompose(t *testing.T) {
	c := loadCompose(t)
	proxySvc, ok := c.Services["slotproxy"]
	if !ok {
		t.Fatal("docker-compose.yml has no slotproxy service")
	}
	cfg := configFromEnv(t, "compose service slotproxy", defaultConfig(), proxySvc.Environment)
	for _, name := range []string{"SLOTPROXY_LISTEN", "SLOTPROXY_CLUSTER_SEEDS", "SLOTPROXY_CLUSTER_PASSWORD", "SLOTPROXY_METRICS_LISTEN"} {
		if _, ok := proxySvc.Environment[name]; !ok {
			t.Errorf("slotproxy service: %s not set; the example is configured by the environment alone", name)
		}
	}
	for _, v := range proxySvc.Volumes {
		if _, target := splitVolume(v); strings.HasPrefix(target, "/etc/slotproxy") {
			t.Errorf("slotproxy service mounts %s: the example is configured by the environment alone", v)
		}
	}

	// The image: built from the repository, whose Dockerfile says where
	// the binary is and which configuration file it reads; the healthcheck
	// must run that binary with that file.
	if proxySvc.Build == nil {
		t.Fatal("slotproxy service: no build section")
	}
	dockerfile := filepath.Join(composeDir, proxySvc.Build.Context, proxySvc.Build.Dockerfile)
	entry := dockerEntrypoint(t, dockerfile)
	if want := append([]string{"CMD", entry[0], "healthcheck"}, entry[1:]...); !slices.Equal(proxySvc.Healthcheck.Test, want) {
		t.Errorf("slotproxy healthcheck %q, want %q", proxySvc.Healthcheck.Test, want)
	}

	listenPort := portOf(t, "SLOTPROXY_LISTEN", cfg.Listen)
	if !slices.ContainsFunc(proxySvc.Ports, func(p string) bool { return containerPort(p) == listenPort }) {
		t.Errorf("slotproxy service publishes %q, not the listen port %s", proxySvc.Ports, listenPort)
	}
	metricsPort := portOf(t, "SLOTPROXY_METRICS_LISTEN", cfg.Metrics.Listen)
	checkComposePrometheus(t, c, metricsPort)

	nodes := checkComposeNodes(t, c, cfg.Cluster.Password)
	for _, s := range cfg.Cluster.Seeds {
		if !slices.Contains(nodes, s) {
			t.Errorf("seed %s is none of the nodes %v", s, nodes)
		}
	}
	checkComposeInit(t, c, nodes)
	if _, ok := proxySvc.DependsOn["cluster-init"]; !ok {
		t.Error("slotproxy service does not wait for cluster-init")
	}
}

// checkComposeNodes checks the redis-server services and returns their
// addresses as the proxy dials them.
func checkComposeNodes(t *testing.T, c *composeFile, password string) []string {
	t.Helper()
	var addrs []string
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		svc := c.Services[name]
		if len(svc.Command) == 0 || svc.Command[0] != "redis-server" {
			continue
		}
		conf := redisNodeConfig(t, name, svc)
		for _, kv := range [][2]string{{"cluster-enabled", "yes"}, {"cluster-node-timeout", "5000"}} {
			if conf[kv[0]] != kv[1] {
				t.Errorf("%s: %s %q, want %q", name, kv[0], conf[kv[0]], kv[1])
			}
		}
		for _, key := range []string{"requirepass", "masterauth"} {
			if conf[key] != password {
				t.Errorf("%s: %s %q is not the proxy's SLOTPROXY_CLUSTER_PASSWORD %q", name, key, conf[key], password)
			}
		}
		if auth, ok := svc.Environment["REDISCLI_AUTH"]; ok && auth != password {
			t.Errorf("%s: REDISCLI_AUTH %q is not the nodes' password", name, auth)
		}
		ip := conf["cluster-announce-ip"]
		if len(svc.Networks) != 1 {
			t.Errorf("%s: on networks %v, want one", name, svc.Networks)
		}
		for netName := range svc.Networks {
			if addr := svc.Networks.get(netName, "ipv4_address"); addr != ip {
				t.Errorf("%s: announces %q but has address %q on %s", name, ip, addr, netName)
			}
			if !inSubnet(c.Networks[netName].IPAM.Config, ip) {
				t.Errorf("%s: %q is outside the subnets of network %s", name, ip, netName)
			}
		}
		port := conf["port"]
		if port == "" {
			port = "6379"
		}
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	if len(addrs) != 6 {
		t.Errorf("%d redis-server services, want 6 (3 masters, 3 replicas)", len(addrs))
	}
	slices.Sort(addrs)
	return addrs
}

// redisNodeConfig is a node's settings: the .conf file on its command
// line, as mounted, with the command's --options over it.
func redisNodeConfig(t *testing.T, name string, svc composeService) map[string]string {
	t.Helper()
	conf := map[string]string{}
	args := svc.Command[1:]
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") {
		host := hostPathOf(t, svc, args[0])
		data, err := os.ReadFile(host)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			conf[strings.ToLower(f[0])] = strings.Trim(strings.Join(f[1:], " "), `"'`)
		}
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		key, ok := strings.CutPrefix(args[i], "--")
		if !ok || i+1 == len(args) {
			t.Fatalf("%s: command argument %q is not --option value", name, args[i])
		}
		conf[strings.ToLower(key)] = args[i+1]
		i++
	}
	return conf
}

// checkComposeInit: the one-shot service creates the cluster from exactly
// the six nodes, with a replica each, after all of them are healthy.
func checkComposeInit(t *testing.T, c *composeFile, nodes []string) {
	t.Helper()
	svc, ok := c.Services["cluster-init"]
	if !ok {
		t.Fatal("docker-compose.yml has no cluster-init service")
	}
	words := strings.Fields(strings.Join(svc.Command, " "))
	i := slices.Index(words, "create")
	if i < 1 || words[i-1] != "--cluster" {
		t.Fatalf("cluster-init: no --cluster create in %q", svc.Command)
	}
	var created []string
	for _, w := range words[i+1:] {
		if strings.HasPrefix(w, "--") {
			break
		}
		created = append(created, w)
	}
	slices.Sort(created)
	if !slices.Equal(created, nodes) {
		t.Errorf("cluster-init creates the cluster from %v, the nodes are %v", created, nodes)
	}
	if j := slices.Index(words, "--cluster-replicas"); j < 0 || j+1 == len(words) || words[j+1] != "1" {
		t.Error("cluster-init: want --cluster-replicas 1")
	}
	if !slices.Contains(words, "--cluster-yes") {
		t.Error("cluster-init: without --cluster-yes, redis-cli waits for an answer that never comes")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[name]
		if len(s.Command) > 0 && s.Command[0] == "redis-server" && svc.DependsOn.get(name, "condition") != "service_healthy" {
			t.Errorf("cluster-init does not wait for %s to be healthy", name)
		}
	}
}

// checkComposePrometheus: the Prometheus service's files are mounted where
// its configuration finds them, pass promtool, and the job the alerts
// select scrapes the proxy's metrics port.
func checkComposePrometheus(t *testing.T, c *composeFile, metricsPort string) {
	t.Helper()
	var svc composeService
	for _, s := range c.Services {
		if strings.HasPrefix(s.Image, "prom/prometheus") {
			svc = s
		}
	}
	if svc.Image == "" {
		t.Fatal("docker-compose.yml has no prom/prometheus service")
	}
	configPath := promDefaultConfig
	for _, a := range svc.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configPath = v
		}
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeFile(t, hostPathOf(t, svc, configPath), &cfg)

	// The container's view, for promtool, and the jobs the alerts select.
	root := t.TempDir()
	for _, v := range svc.Volumes {
		src, dst := splitVolume(v)
		data, err := os.ReadFile(filepath.Join(composeDir, src))
		if err != nil {
			t.Fatalf("prometheus volume %s: %v", v, err)
		}
		writeFile(t, filepath.Join(root, dst), data)
	}
	jobs := map[string]bool{}
	jobRe := regexp.MustCompile(`job="([^"]+)"`)
	for _, rf := range cfg.RuleFiles {
		if !path.IsAbs(rf) {
			rf = path.Join(path.Dir(configPath), rf)
		}
		data, err := os.ReadFile(filepath.Join(root, rf))
		if err != nil {
			t.Errorf("rule file %s is not mounted: %v", rf, err)
			continue
		}
		for _, m := range jobRe.FindAllStringSubmatch(string(data), -1) {
			jobs[m[1]] = true
		}
	}
	if len(jobs) == 0 {
		t.Error("the rule files select no job: the alerts would watch nothing")
	}
	for job := range jobs {
		var targets []string
		for _, sc := range cfg.ScrapeConfigs {
			if sc.JobName == job {
				for _, st := range sc.StaticConfigs {
					targets = append(targets, st.Targets...)
				}
			}
		}
		if len(targets) == 0 {
			t.Errorf("the alerts select job %q, which scrapes nothing", job)
		}
		for _, target := range targets {
			host, port, err := net.SplitHostPort(target)
			if err != nil || host != "slotproxy" || port != metricsPort {
				t.Errorf("job %s scrapes %q, want slotproxy:%s (the service and its SLOTPROXY_METRICS_LISTEN port)", job, target, metricsPort)
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("%v: run scripts/ensure-prometheus.sh", err)
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(root, configPath)).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check config, files as mounted in the prometheus service: %v\n%s", err, out)
	}
}

// composeFile is what the tests read of docker-compose.yml.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string   `yaml:"command"`
	Environment composeEnv `yaml:"environment"`
	Ports       []string   `yaml:"ports"`
	Volumes     []string   `yaml:"volumes"`
	Networks    nameMap    `yaml:"networks"`
	DependsOn   nameMap    `yaml:"depends_on"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// composeEnv is a service's environment, written as a map or as a list of
// NAME=value.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.MappingNode {
		return n.Decode((*map[string]string)(e))
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		(*e)[k] = v
	}
	return nil
}

// nameMap is compose's list-or-map form of networks and depends_on: the
// names alone, or each name with its settings.
type nameMap map[string]map[string]any

func (m *nameMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return n.Decode((*map[string]map[string]any)(m))
	}
	var names []string
	if err := n.Decode(&names); err != nil {
		return err
	}
	*m = nameMap{}
	for _, name := range names {
		(*m)[name] = nil
	}
	return nil
}

// get is the setting key of name, "" when it has none.
func (m nameMap) get(name, key string) string {
	s, _ := m[name][key].(string)
	return s
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	var c composeFile
	decodeFile(t, composeDir+"/docker-compose.yml", &c)
	return &c
}

// hostPathOf is the file on the host that a service sees at target.
func hostPathOf(t *testing.T, svc composeService, target string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		if src, dst := splitVolume(v); dst == target {
			return filepath.Join(composeDir, src)
		}
	}
	t.Fatalf("no volume of the service is mounted at %s", target)
	return ""
}

// splitVolume splits compose's short syntax, source:target[:mode].
func splitVolume(v string) (src, dst string) {
	src, rest, _ := strings.Cut(v, ":")
	dst, _, _ = strings.Cut(rest, ":")
	return src, dst
}

// containerPort is the container's side of compose's port short syntax,
// [[ip:]host:]container[/protocol].
func containerPort(p string) string {
	p, _, _ = strings.Cut(p, "/")
	return p[strings.LastIndex(p, ":")+1:]
}

func inSubnet(configs []struct {
	Subnet string `yaml:"subnet"`
}, ip string) bool {
	addr := net.ParseIP(ip)
	for _, c := range configs {
		if _, n, err := net.ParseCIDR(c.Subnet); err == nil && addr != nil && n.Contains(addr) {
			return true
		}
	}
	return false
}
