#!/usr/bin/env bash
# Makes sure prometheus and promtool are on PATH: go test ./examples/monitoring/
# runs the example Prometheus configuration, alerts and dashboard queries
# against a real Prometheus, and promtool lints what /metrics serves.
# Installs Debian's package when run as root with apt-get; otherwise says
# what to run.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "ensure-prometheus: installing prometheus with apt-get" >&2
	apt-get update
	# Without its recommends (node-exporter and friends). Where systemd runs,
	# the package also starts a server on :9090; the tests start their own
	# on free ports and do not use it.
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
	exit 0
fi

echo "ensure-prometheus: prometheus and promtool are needed on PATH (go test ./examples/monitoring/ and ./metrics/ run them)." >&2
echo "ensure-prometheus: on Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus" >&2
echo "ensure-prometheus: elsewhere install Prometheus 2.x from https://prometheus.io/download/ and put prometheus and promtool on PATH." >&2
exit 1
