package main

import (
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const sidecarFile = examplesDir + "/kubernetes/sidecar.yaml"

// TestExamplesKubernetes checks sidecar.yaml: the ConfigMap's proxy.yaml
// loads with the real loader where the image reads it, the environment
// completes it into a valid configuration, and the probes, the scrape
// annotation and the application's address use its ports.
func TestExamplesKubernetes(t *testing.T) {
	sc := loadSidecar(t)
	cfg := sc.cfg
	metricsPort := portOf(t, "metrics.listen", cfg.Metrics.Listen)
	ports := map[string]string{}
	for _, p := range sc.proxy.Ports {
		ports[p.Name] = strconv.Itoa(p.ContainerPort)
	}
	probes := []struct {
		name, want string
		p          *k8sProbe
	}{
		{"readinessProbe", "/readyz", sc.proxy.ReadinessProbe},
		{"livenessProbe", "/healthz", sc.proxy.LivenessProbe},
		{"startupProbe", "", sc.proxy.StartupProbe},
	}
	for _, pr := range probes {
		if pr.p == nil {
			if pr.want != "" {
				t.Errorf("slotproxy container: no %s", pr.name)
			}
			continue
		}
		if pr.p.HTTPGet == nil {
			t.Errorf("%s: not an httpGet probe", pr.name)
			continue
		}
		if pr.want != "" && pr.p.HTTPGet.Path != pr.want {
			t.Errorf("%s: path %q, want %q", pr.name, pr.p.HTTPGet.Path, pr.want)
		}
		if pr.p.HTTPGet.Path != "/healthz" && pr.p.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: path %q is neither /healthz nor /readyz", pr.name, pr.p.HTTPGet.Path)
		}
		port := pr.p.HTTPGet.Port
		if named, ok := ports[port]; ok {
			port = named
		}
		if port != metricsPort {
			t.Errorf("%s: port %q, the ConfigMap's metrics.listen is port %s", pr.name, pr.p.HTTPGet.Port, metricsPort)
		}
	}
	if p, ok := sc.podAnnotations["prometheus.io/port"]; ok && p != metricsPort {
		t.Errorf("prometheus.io/port %q, the metrics port is %s", p, metricsPort)
	}

	listenHost, listenPort, _ := net.SplitHostPort(cfg.Listen)
	var apps int
	for _, c := range sc.others {
		for _, e := range c.Env {
			switch {
			case strings.HasSuffix(e.Name, "REDIS_PORT"):
				apps++
				if e.Value != listenPort {
					t.Errorf("container %s: %s=%q, the proxy listens on port %s", c.Name, e.Name, e.Value, listenPort)
				}
			case strings.HasSuffix(e.Name, "REDIS_HOST"):
				if isLoopback(listenHost) && !isLoopback(e.Value) {
					t.Errorf("container %s: %s=%q, the proxy listens on %s only", c.Name, e.Name, e.Value, listenHost)
				}
			case strings.HasSuffix(e.Name, "REDIS_PASSWORD"):
				if v := sc.envValue(t, e); v != cfg.Clients.Password {
					t.Errorf("container %s: %s is not the proxy's clients.password", c.Name, e.Name)
				}
			}
		}
	}
	if apps == 0 {
		t.Error("no application container with a ..._REDIS_PORT variable beside the proxy")
	}
}

// k8sObject is what the tests read of a Kubernetes object.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				InitContainers []k8sContainer `yaml:"initContainers"`
				Containers     []k8sContainer `yaml:"containers"`
				Volumes        []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env          []k8sEnv `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
}

// sidecar is sidecar.yaml read: the proxy's container and configuration,
// and the containers beside it.
type sidecar struct {
	proxy          k8sContainer
	others         []k8sContainer
	podAnnotations map[string]string
	secrets        map[string]map[string]string
	cfg            Config
}

// envValue is a variable's value, from the Secret it refers to if any.
func (sc *sidecar) envValue(t *testing.T, e k8sEnv) string {
	t.Helper()
	if e.ValueFrom == nil {
		return e.Value
	}
	ref := e.ValueFrom.SecretKeyRef
	if ref == nil {
		t.Fatalf("%s: valueFrom other than secretKeyRef", e.Name)
	}
	v, ok := sc.secrets[ref.Name][ref.Key]
	if !ok {
		t.Fatalf("%s: Secret %s has no key %s in this file", e.Name, ref.Name, ref.Key)
	}
	return v
}

func loadSidecar(t *testing.T) *sidecar {
	t.Helper()
	data, err := os.ReadFile(sidecarFile)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := yamlDocuments(data)
	if err != nil {
		t.Fatalf("%s: %v", sidecarFile, err)
	}
	sc := &sidecar{secrets: map[string]map[string]string{}}
	configMaps := map[string]map[string]string{}
	var deployment *k8sObject
	for _, doc := range docs {
		var o k8sObject
		if err := doc.Decode(&o); err != nil {
			t.Fatalf("%s: %v", sidecarFile, err)
		}
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Secret":
			sc.secrets[o.Metadata.Name] = o.StringData
		case "Deployment":
			deployment = &o
		}
	}
	if deployment == nil {
		t.Fatalf("%s: no Deployment", sidecarFile)
	}
	pod := deployment.Spec.Template.Spec
	sc.podAnnotations = deployment.Spec.Template.Metadata.Annotations
	found := false
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if strings.Contains(c.Image, "slotproxy") {
			sc.proxy, found = c, true
		} else {
			sc.others = append(sc.others, c)
		}
	}
	if !found {
		t.Fatalf("%s: no container runs a slotproxy image", sidecarFile)
	}

	// The file the image's entrypoint reads, unless the container's
	// arguments name another, must come from the mounted ConfigMap.
	entry := dockerEntrypoint(t, "../../Dockerfile")
	configPath := ""
	for _, args := range [][]string{entry, sc.proxy.Args} {
		if i := slices.Index(args, "-config"); i >= 0 && i+1 < len(args) {
			configPath = args[i+1]
		}
	}
	if configPath == "" {
		t.Fatal("neither the image nor the container gives -config")
	}
	var text string
	for _, m := range sc.proxy.VolumeMounts {
		if m.MountPath != path.Dir(configPath) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cm, ok := configMaps[v.ConfigMap.Name]
				if !ok {
					t.Fatalf("volume %s: ConfigMap %s is not in %s", v.Name, v.ConfigMap.Name, sidecarFile)
				}
				text, found = cm[path.Base(configPath)]
				if !found {
					t.Fatalf("ConfigMap %s has no key %s, which the proxy reads as %s", v.ConfigMap.Name, path.Base(configPath), configPath)
				}
			}
		}
	}
	if text == "" {
		t.Fatalf("no ConfigMap is mounted where the proxy reads %s", configPath)
	}
	cfg, err := parseConfig([]byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's %s: %v", path.Base(configPath), err)
	}
	env := map[string]string{}
	for _, e := range sc.proxy.Env {
		env[e.Name] = sc.envValue(t, e)
	}
	sc.cfg = configFromEnv(t, "the ConfigMap's proxy.yaml and the container's environment", cfg, env)
	return sc
}
