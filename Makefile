# GitOps Reverser. `make demo` runs the whole pipeline locally; `make test` proves it.
SHELL := /bin/bash
GO    ?= go
export GIT_CONFIG_GLOBAL := /dev/null
export GIT_CONFIG_NOSYSTEM := 1

CACHE_BIN   := $(CURDIR)/.cache/bin
KUBE_VER    := $(shell cd test/tools/kube && $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
ETCD_VER    := $(shell cd test/tools/etcd && $(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
APISERVER   := $(CACHE_BIN)/kube-apiserver-$(KUBE_VER)
CONTROLLER_MANAGER := $(CACHE_BIN)/kube-controller-manager-$(KUBE_VER)
ETCD        := $(CACHE_BIN)/etcd-$(ETCD_VER)

.PHONY: all build demo test test-faults test-unit bench tools generate verify fmt vet clean

all: build

## build: compile the functions and jobs into bin/
build:
	$(GO) build -o bin/ ./functions/... ./jobs/...

## demo: start Valkey, a kube-apiserver, a Git remote and both functions; apply samples; show the commits
demo: tools
	$(GO) run ./test/demo

## test: every test, unit, end to end and the short fault suite, against real Valkey,
## kube-apiserver and Git servers. One package at a time: the fault suite runs second-scale
## leases and must not compete with an apiserver for the two cores.
test: tools
	$(GO) test -count=1 -p 1 -timeout 30m ./...

## test-faults: the long form of the fault suite (writers killed >= 20 times, races, outages)
test-faults: tools
	FAULTS=long $(GO) test -count=1 -timeout 60m -v ./test/faults

## test-unit: the tests that need no server
test-unit:
	$(GO) test -count=1 ./lib/identity ./lib/layout ./lib/audit ./lib/sanitize ./lib/render ./lib/rules ./lib/change ./lib/config ./lib/apis/...

## bench: benchmarks against real servers (numbers, no thresholds)
bench: tools
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 2s -timeout 30m ./lib/gitwrite ./lib/bus ./lib/ingest
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./test/e2e ./test/reconcile

## tools: build the pinned kube-apiserver, kube-controller-manager (the garbage collector, for
## the cascade tests) and etcd used by tests (cached by version)
tools: $(APISERVER) $(CONTROLLER_MANAGER) $(ETCD)

$(APISERVER):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/kube && $(GO) build -o $@.tmp k8s.io/kubernetes/cmd/kube-apiserver && mv $@.tmp $@

# After the apiserver: the two share most packages, so the second build reuses the first's
# cache instead of competing with it for the cores.
$(CONTROLLER_MANAGER): | $(APISERVER)
	@mkdir -p $(CACHE_BIN)
	cd test/tools/kube && $(GO) build -o $@.tmp k8s.io/kubernetes/cmd/kube-controller-manager && mv $@.tmp $@

$(ETCD):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/etcd && $(GO) build -o $@.tmp go.etcd.io/etcd/server/v3 && mv $@.tmp $@

## generate: deepcopy functions and CRD YAML from lib/apis
generate:
	bash test/tools/codegen.sh

## verify: generated files current, gofmt and go vet clean
verify: vet
	bash test/tools/codegen.sh --verify
	@out=$$(gofmt -l functions jobs lib test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w functions jobs lib test

clean:
	rm -rf bin .cache out
