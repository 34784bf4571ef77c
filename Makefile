# slotproxy developer entry points. CI runs .ci/run, which calls lint and test.

GO ?= go

.PHONY: build test demo bench bench-go chaos fuzz lint clean ensure-redis ensure-clients ensure-prometheus

# Static, without cgo, as the Dockerfile builds it: a cgo build also maps
# libc and the dynamic loader, 1.3 MiB more resident memory.
build:
	CGO_ENABLED=0 $(GO) build -o bin/slotproxy ./cmd/slotproxy

# Tests start real redis-server processes (internal/clustertest), run
# real client libraries against the proxy (proxy/clients_test.go) and a
# real Prometheus against the slotproxy binary (examples/monitoring); then
# every fuzz target runs for a few seconds.
test: ensure-redis ensure-clients ensure-prometheus
	$(GO) test -race -count=1 -timeout 15m ./...
	FUZZTIME=3s scripts/fuzz.sh

# Every fuzz target for FUZZTIME each (default 1m), one after the other.
fuzz:
	FUZZTIME=$(or $(FUZZTIME),1m) scripts/fuzz.sh

# A 3-master, 1-replica cluster on 127.0.0.1:7000-7005 and slotproxy in front
# of it, until Ctrl-C.
demo: ensure-redis build
	$(GO) build -o bin/demo ./internal/clustertest/demo
	bin/demo -- bin/slotproxy -config proxy.yaml -listen 127.0.0.1:5000 -metrics-listen 127.0.0.1:9121

# redis-benchmark against a local cluster, directly and through slotproxy,
# and against a standalone redis-server as the reference, side by side
# (BENCHFLAGS: -rounds, -seconds, -out FILE, ...).
bench:
	scripts/ensure-redis.sh
	CGO_ENABLED=0 $(GO) build -o bin/slotproxy ./cmd/slotproxy
	$(GO) run ./internal/bench -proxy bin/slotproxy $(BENCHFLAGS)

# Every scenario of internal/chaos (failovers, kill -9, SIGSTOP, reshards,
# node additions and removals, a rolling restart, 20 node cycles) on fresh
# 3-master, 3-replica clusters, without the race detector so that the
# figures are the proxy's own; prints the table the README shows. make test
# runs a subset.
chaos: ensure-redis
	SLOTPROXY_CHAOS=all $(GO) test -count=1 -timeout 30m -v -run 'TestChaos' ./internal/chaos/

# The Go micro-benchmarks of the hot path (parser, scanner, slots, a whole
# GET/SET/MGET through a session over in-memory pipes).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then \
		echo "lint: these files are not gofmt-formatted (run gofmt -w):"; \
		echo "$$files"; \
		exit 1; \
	fi
	$(GO) vet ./...

clean:
	rm -rf bin

# redis-server and redis-cli on PATH, installed with apt-get when root.
ensure-redis:
	scripts/ensure-redis.sh

# redis-py for /usr/bin/python3 and the pinned ioredis, which
# proxy/clients_test.go runs; installed when root with apt-get and npm.
ensure-clients:
	scripts/ensure-clients.sh

# prometheus and promtool on PATH, installed with apt-get when root.
ensure-prometheus:
	scripts/ensure-prometheus.sh
