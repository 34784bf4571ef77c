// Package monitoring holds no code: it is where the tests of the example
// monitoring files live (prometheus.yml, alerts.yml and
// grafana-dashboard.json, next to this file). They run every expression
// those files hold against a real Prometheus scraping the slotproxy binary
// in front of a real cluster, so that a renamed metric or a mistyped query
// fails make test instead of leaving an operator with an empty panel or an
// alert that never fires.
package monitoring
