#!/usr/bin/env bash
# Makes sure the client libraries that proxy/clients_test.go runs are
# installed: redis-py for Debian's /usr/bin/python3 (package python3-redis)
# and the pinned ioredis in proxy/testdata/clients/ioredis (npm ci), and
# promtool for the metrics test. As root with apt-get it installs what is
# missing; otherwise it says what to run.
set -euo pipefail

cd "$(dirname "$0")/.."
ioredis_dir=proxy/testdata/clients/ioredis

# python3-redis puts the module where only Debian's python3 looks, not a
# pyenv or venv python3 that may come first on PATH.
if ! /usr/bin/python3 -c 'import redis' 2>/dev/null; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		echo "ensure-clients: installing python3-redis with apt-get" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y python3-redis
	else
		echo "ensure-clients: redis-py is missing for /usr/bin/python3." >&2
		echo "ensure-clients: on Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y python3-redis" >&2
		exit 1
	fi
fi

# promtool (Debian's prometheus package) checks what /metrics serves
# (metrics/promtool_test.go).
if ! command -v promtool >/dev/null; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		echo "ensure-clients: installing prometheus (for promtool) with apt-get" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
	else
		echo "ensure-clients: promtool is missing; on Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y prometheus" >&2
		exit 1
	fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "ensure-clients: node and npm are needed on PATH (Node.js 18 or later; on Debian: apt-get install -y nodejs npm)." >&2
	exit 1
fi

# npm ci installs exactly what package-lock.json pins; it runs again when
# the lock file is newer than the last install.
if [ ! -f "$ioredis_dir/node_modules/.package-lock.json" ] ||
	[ "$ioredis_dir/package-lock.json" -nt "$ioredis_dir/node_modules/.package-lock.json" ]; then
	echo "ensure-clients: npm ci in $ioredis_dir" >&2
	(cd "$ioredis_dir" && npm ci --no-audit --no-fund)
fi
