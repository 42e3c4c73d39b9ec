# orderflow — common tasks. `make help` lists them.
SHELL := /bin/bash
GO ?= go
NODES ?= 1
GOTESTFLAGS ?= -race -count=1 -timeout 30m
BENCHFLAGS ?=
# The build's stamp (orderflow version): git's description of the checkout,
# its commit, and the time of the build.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BIN ?= bin/orderflow
CAPACITYFLAGS ?=
FAILOVERFLAGS ?=

.PHONY: help build demo test test-short test-alloc vet kafka-jars kafka-up kafka-down kafka-meta bench capacity bench-latency bench-failover clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/orderflow, stamped with VERSION, COMMIT and DATE (default: from git and the clock)
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)" -o $(BIN) ./cmd/orderflow

demo: build ## the main job: the whole system on an embedded broker
	./bin/orderflow demo

test: ## go vet + go test -race against a real Kafka broker (started if KAFKA_BROKERS is unset) + the allocation guards
	deploy/kafka/with-broker.sh bash -c '$(GO) vet ./... && $(GO) test $(GOTESTFLAGS) ./...'
	$(MAKE) test-alloc

test-short: ## unit tests only, no broker (tests needing one skip)
	$(GO) vet ./... && $(GO) test -short ./...

vet: ## go vet ./...
	$(GO) vet ./...

# The race detector changes what allocates, so the tests that count
# allocations (named Test...Allocs) skip under -race and run here without it.
test-alloc: ## the allocation guards (Test...Allocs), without -race
	$(GO) test -count=1 -run 'Allocs$$' ./...

bench: build ## benchmark against a real Kafka broker (started if KAFKA_BROKERS is unset); writes bench/results/; BENCHFLAGS=-tiny for a smoke run
	KAFKA_HEAP=$${KAFKA_HEAP:-1g} deploy/kafka/with-broker.sh $(GO) run ./bench/cmd/orderflow-bench -orderflow-bin bin/orderflow $(BENCHFLAGS)

capacity: build ## measure the capacity model's inputs and a 1/2/4-instance scaling run against a real broker; writes docs/capacity.md; CAPACITYFLAGS=-tiny for a smoke run
	KAFKA_HEAP=$${KAFKA_HEAP:-1g} deploy/kafka/with-broker.sh $(GO) run ./bench/cmd/orderflow-capacity -orderflow-bin bin/orderflow $(CAPACITYFLAGS)

bench-latency: build ## the latency curve alone (after one warm-up pass and one ceiling round); BENCHFLAGS=-curve=NAME,... for some settings
	KAFKA_HEAP=$${KAFKA_HEAP:-1g} deploy/kafka/with-broker.sh $(GO) run ./bench/cmd/orderflow-bench -orderflow-bin bin/orderflow -only warmup,ceiling,latency -warmup 1 -rounds 1 -out bench/.work/latency $(BENCHFLAGS)

bench-failover: build ## failover time after a SIGKILL, 2 instances, stores of 100k and 1M orders, --standby-replicas 0 and 1; writes bench/results/<date>-<host>-failover.*; FAILOVERFLAGS=-tiny for a smoke run
	KAFKA_HEAP=$${KAFKA_HEAP:-1g} deploy/kafka/with-broker.sh $(GO) run ./bench/cmd/orderflow-failover -orderflow-bin bin/orderflow $(FAILOVERFLAGS)

kafka-jars: ## fetch the Kafka jars from Maven Central into deploy/kafka/.cache
	deploy/kafka/fetch.sh

kafka-up: ## start a local KRaft Kafka (NODES=1 or 3) on 127.0.0.1:19092...
	deploy/kafka/start.sh $(NODES)

kafka-down: ## stop the local Kafka, leaving no process behind
	deploy/kafka/stop.sh

kafka-meta: ## print the local Kafka's metadata (of the broker in KAFKA_RUN_DIR, as kafka-up)
	$(GO) run ./deploy/kafka/kmeta -brokers "$$(cat "$${KAFKA_RUN_DIR:-deploy/kafka/.run}/bootstrap")"

clean: ## remove build output and broker run dirs (keeps the jar cache)
	rm -rf bin deploy/kafka/.run deploy/kafka/.run-test
