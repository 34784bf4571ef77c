package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The checks here need no cluster: the files parse, promtool accepts
// them, and the dashboard imports with its data source asked for.

// TestAlertRulesPassPromtool runs promtool check rules on alerts.yml: the
// syntax, every expression and every annotation template.
func TestAlertRulesPassPromtool(t *testing.T) {
	_, promtool := lookTools(t)
	out, err := exec.Command(promtool, "check", "rules", "alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules alerts.yml: %v\n%s", err, out)
	}
	rules := alertRules(t)
	if !strings.Contains(string(out), "SUCCESS: "+strconv.Itoa(len(rules))+" rules found") {
		t.Errorf("promtool check rules alerts.yml found other than %d rules:\n%s", len(rules), out)
	}
	want := []string{"SlotproxyDown", "SlotsNotCovered", "SlotproxyNotReady", "HighErrorRatio", "HighLatencyP99", "SlotTableRefreshFailing"}
	have := map[string]bool{}
	for _, r := range rules {
		have[r.Alert] = true
		if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s: wants a severity label, a summary and a description", r.Alert)
		}
	}
	for _, name := range want {
		if !have[name] {
			t.Errorf("alerts.yml has no alert %s", name)
		}
	}
}

// TestPrometheusConfigPassesPromtool runs promtool check config on
// prometheus.yml as shipped, which also loads the rule file it names.
func TestPrometheusConfigPassesPromtool(t *testing.T) {
	_, promtool := lookTools(t)
	out, err := exec.Command(promtool, "check", "config", "prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config prometheus.yml: %v\n%s", err, out)
	}
	// promConfig fails the test if the file is not what it rewrites.
	promConfig(t, "127.0.0.1:1")
}

// TestDashboardModel checks what Grafana needs to import the dashboard
// against any Prometheus: the data source is an input that every panel
// and query uses, panel ids are unique, and every panel has a query.
func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want one prometheus data source DS_PROMETHEUS", d.Inputs)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: all wanted", d.UID, d.Title, d.SchemaVersion)
	}
	const ds = "${DS_PROMETHEUS}"
	for _, v := range d.Templating.List {
		if v.Datasource.UID != ds {
			t.Errorf("variable %s uses data source %q, want %q", v.Name, v.Datasource.UID, ds)
		}
	}
	ids := map[int]string{}
	titles := map[string]bool{}
	for _, p := range d.allPanels() {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no size", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		titles[p.Title] = true
		if p.Datasource.UID != ds {
			t.Errorf("panel %q uses data source %q, want %q", p.Title, p.Datasource.UID, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Expr == "" || q.Datasource.UID != ds {
				t.Errorf("panel %q: query %s has expr %q, data source %q", p.Title, q.RefID, q.Expr, q.Datasource.UID)
			}
		}
	}
	for _, title := range []string{
		"Commands per second by command", "Command latency by family (p50, p99)",
		"Errors, redirects and retries per second", "Cluster replies per second",
		"Slots covered", "Masters and replicas", "Slot table refreshes",
		"Clients", "Backend connections by node", "Backend latency p99 by node",
	} {
		if !titles[title] {
			t.Errorf("the dashboard has no panel %q", title)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON model the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string     `json:"name"`
			Datasource datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	GridPos    struct {
		H int `json:"h"`
		W int `json:"w"`
	} `json:"gridPos"`
	Targets []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	return &d
}

// allPanels returns the panels, those of collapsed rows included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// panelQuery is one query of the dashboard, made plain PromQL.
type panelQuery struct {
	panel, expr string
}

// queries returns every query of the dashboard with Grafana's variables
// replaced as Grafana would: the range ones by a minute, the instance
// selector by every instance.
func (d *dashboard) queries() []panelQuery {
	r := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1m", "$instance", ".*")
	var out []panelQuery
	for _, p := range d.allPanels() {
		for _, q := range p.Targets {
			out = append(out, panelQuery{panel: p.Title + " " + q.RefID, expr: r.Replace(q.Expr)})
		}
	}
	return out
}

// rule is an alerting rule of alerts.yml.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	raw, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

func ruleExpr(t *testing.T, alert string) string {
	t.Helper()
	for _, r := range alertRules(t) {
		if r.Alert == alert {
			return r.Expr
		}
	}
	t.Fatalf("alerts.yml has no alert %s", alert)
	return ""
}
