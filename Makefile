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
KUBECTL     := $(CACHE_BIN)/kubectl-$(KUBE_VER)
ETCD        := $(CACHE_BIN)/etcd-$(ETCD_VER)
KO_VER      := $(shell cd test/tools/images && $(GO) list -m -f '{{.Version}}' github.com/google/ko)
CRANE_VER   := $(shell cd test/tools/images/crane && $(GO) list -m -f '{{.Version}}' github.com/google/go-containerregistry)
KO          := $(CACHE_BIN)/ko-$(KO_VER)
CRANE       := $(CACHE_BIN)/crane-$(CRANE_VER)
IMAGES_DIR  ?= $(CURDIR)/out/images

.PHONY: all build demo test test-faults test-unit bench bench-micro tools images images-resolve generate verify fmt vet clean

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
	cd test/tools/chart && $(GO) test -count=1 ./...

## test-faults: the long form of the fault suite (writers killed >= 20 times, races, outages)
test-faults: tools
	FAULTS=long $(GO) test -count=1 -timeout 60m -v ./test/faults

## test-unit: the tests that need no server
test-unit:
	$(GO) test -count=1 ./lib/identity ./lib/layout ./lib/audit ./lib/sanitize ./lib/render ./lib/rules ./lib/change ./lib/config ./lib/apis/...

## bench: the performance suite against real servers: one table of measures, baselines,
## ratios and targets, written with the raw samples to out/bench/results.json and drawn in
## out/bench/chart.png. BENCH_FLAGS=-quick checks the suite in a minute; -run picks measures.
bench: tools
	$(GO) run ./test/bench -out $(CURDIR)/out/bench $(BENCH_FLAGS)
	cd test/tools/chart && $(GO) run . -in $(CURDIR)/out/bench/results.json -out $(CURDIR)/out/bench/chart.png

## bench-micro: Go benchmarks of single packages, for profiles (-cpuprofile) and benchstat
bench-micro: tools
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 2s -timeout 30m ./lib/gitwrite ./lib/bus ./lib/ingest
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 2x -timeout 30m ./lib/writer

## tools: build the pinned kube-apiserver, kube-controller-manager (the garbage collector, for
## the cascade tests), kubectl (manifest checks) and etcd used by tests (cached by version)
tools: $(APISERVER) $(CONTROLLER_MANAGER) $(KUBECTL) $(ETCD)

$(APISERVER):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/kube && $(GO) build -o $@.tmp k8s.io/kubernetes/cmd/kube-apiserver && mv $@.tmp $@

# After the apiserver: the two share most packages, so the second build reuses the first's
# cache instead of competing with it for the cores.
$(CONTROLLER_MANAGER): | $(APISERVER)
	@mkdir -p $(CACHE_BIN)
	cd test/tools/kube && $(GO) build -o $@.tmp k8s.io/kubernetes/cmd/kube-controller-manager && mv $@.tmp $@

$(KUBECTL): | $(APISERVER)
	@mkdir -p $(CACHE_BIN)
	cd test/tools/kube && $(GO) build -o $@.tmp k8s.io/kubernetes/cmd/kubectl && mv $@.tmp $@

$(ETCD):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/etcd && $(GO) build -o $@.tmp go.etcd.io/etcd/server/v3 && mv $@.tmp $@

## images: an image per function and job, with ko and no Docker daemon, on a base built here
## (non-root 65532, CA bundle, /tmp; nothing pulled), as tarballs in $(IMAGES_DIR)/<name>.tar.
## Reproducible: the same sources, Go and CA bundle give the same digests.
images: $(KO) $(CRANE)
	cd test/tools/images && $(GO) run ./build -ko $(KO) -root $(CURDIR) -out $(IMAGES_DIR)

## images-resolve: push the base and every ko:// image that kn/ and manifests/ name to
## $(KO_DOCKER_REPO) (required), and write those files with digests to out/release.yaml
images-resolve: $(KO)
	@mkdir -p out
	cd test/tools/images && $(GO) run ./build -ko $(KO) -root $(CURDIR) -resolve > $(CURDIR)/out/release.yaml.tmp
	mv out/release.yaml.tmp out/release.yaml

$(KO):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/images && $(GO) build -o $@.tmp github.com/google/ko && mv $@.tmp $@

$(CRANE):
	@mkdir -p $(CACHE_BIN)
	cd test/tools/images/crane && $(GO) build -o $@.tmp github.com/google/go-containerregistry/cmd/crane && mv $@.tmp $@

## generate: deepcopy functions and CRD YAML from lib/apis
generate:
	bash test/tools/codegen.sh

## verify: generated files current, gofmt and go vet clean
verify: vet
	bash test/tools/codegen.sh --verify
	@out=$$(gofmt -l functions jobs lib test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd test/tools/chart && $(GO) vet ./...

fmt:
	gofmt -w functions jobs lib test

clean:
	rm -rf bin .cache out
