#!/usr/bin/env bash
# Makes sure redis-server and redis-cli are on PATH: the tests and the demo
# start real servers. Installs Debian's packages when run as root with
# apt-get; otherwise says what to run.
set -euo pipefail

if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "ensure-redis: installing redis-server and redis-tools with apt-get" >&2
	apt-get update
	# On some systems the package also starts a service on 6379; nothing here
	# uses it.
	DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
	exit 0
fi

echo "ensure-redis: redis-server and redis-cli are needed on PATH (tests and demo start real servers)." >&2
echo "ensure-redis: on Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y redis-server redis-tools" >&2
echo "ensure-redis: elsewhere install Redis 7 (e.g. brew install redis) and put redis-server and redis-cli on PATH." >&2
exit 1
