#!/usr/bin/env bash
# Runs every fuzz target of the module, one at a time, each for FUZZTIME
# (default 1m; any -fuzztime value, such as 30s or 10000x), and prints one
# line per target. Stops at the first target that fails: its output is
# shown, and the failing input is left under the package's
# testdata/fuzz/<target>/ for `go test -run <target>/<file>` to replay.
#
#   scripts/fuzz.sh                 every target, a minute each
#   FUZZTIME=2s scripts/fuzz.sh     a quick pass
set -euo pipefail

cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-1m}"

# go test -list prints a package's matching names, then its "ok" line. A
# package whose tests do not build fails the run here.
listing=$(go test -list 'Fuzz.*' ./...)
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for name in ${names[@]+"${names[@]}"}; do
			targets+=("$pkg $name")
		done
		names=()
		;;
	esac
done <<<"$listing"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	start=$SECONDS
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
		printf 'ok    %-28s %s (%ds)\n' "$name" "$pkg" $((SECONDS - start))
	else
		printf 'FAIL  %-28s %s (%ds)\n' "$name" "$pkg" $((SECONDS - start))
		cat "$log"
		exit 1
	fi
done
