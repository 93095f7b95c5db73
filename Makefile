# bcmtest: end-to-end tests for Bitcoin Cache Machine's LXD clusters.
# `make e2e` is the main job; `make test` runs unit and integration tests.
SHELL := /bin/bash
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARTIFACTS ?= $(CURDIR)/artifacts
RUN_ID ?= $(shell date -u +%Y%m%d-%H%M%S)
MEMBERS ?= 1
PROVIDER ?= auto
CLOUD_INIT ?=
FORCE ?=
LABELS ?=
INTEGRATION_LABELS ?= vm || cluster || multipass || snapshot || security || lxc
FUZZTIME ?= 60s
GINKGO_FLAGS ?= -ginkgo.v -ginkgo.timeout=80m

# Host packages every supported distribution installs (Debian and Ubuntu
# names; one or a few per line, add to the end). ci/deps.sh adds each
# distribution's own (lxd-client and chromium on Debian 12, chromium on
# Debian 13; on Ubuntu both are optional snaps) from /etc/os-release.
# vde2: vde_switch, the cluster's private switch. fonts-liberation: the
# matrix report's screenshot. gcc, libc6-dev: go test -race. shellcheck:
# the ci tests' check of action.yml's and the workflows' scripts.
HOST_PACKAGES := qemu-system-x86 qemu-utils mmdebstrap debian-archive-keyring genisoimage \
	apt-cacher-ng socat e2fsprogs ca-certificates openssh-client iproute2 \
	fonts-liberation gcc libc6-dev shellcheck \
	vde2

.PHONY: deps build unit fuzz integration test e2e dry-run nightly faults bench lint

## deps: install host packages for this distribution (sudo when not root) and Go modules
deps:
	@HOST_PACKAGES='$(HOST_PACKAGES)' bash ci/deps.sh
	$(GO) mod download

## build: the bcmtest command into bin/
build:
	$(GO) build -o bin/bcmtest ./cmd/bcmtest

## unit: fast tests with the race detector, no VMs (-race needs gcc: make deps)
unit: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## fuzz: the cloud-init lint fuzz target for FUZZTIME (60s)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLint$$' -fuzztime $(FUZZTIME) ./cloudinit

## integration: specs that boot real VMs (labels vm, cluster)
integration: deps
	mkdir -p $(ARTIFACTS)
	BCMTEST_INTEGRATION=1 $(GO) test -count=1 -v -timeout 90m ./suites/integration \
	  $(GINKGO_FLAGS) -ginkgo.label-filter='$(INTEGRATION_LABELS)' \
	  -ginkgo.junit-report=$(ARTIFACTS)/integration-$(RUN_ID)-junit.xml

## test: unit tests, the lint fuzz target, then the integration specs on real VMs
test: unit fuzz integration

## e2e: the suites against one cluster of 1+MEMBERS nodes (main job)
e2e: deps
	@if [ -n "$(CLOUD_INIT)" ] && [ ! -f "$(CLOUD_INIT)" ]; then echo "CLOUD_INIT=$(CLOUD_INIT): no such file" >&2; exit 2; fi
	mkdir -p $(ARTIFACTS)/$(RUN_ID)
	BCMTEST_E2E=1 BCMTEST_FORCE=$(FORCE) BCMTEST_MEMBERS=$(MEMBERS) BCMTEST_PROVIDER=$(PROVIDER) BCMTEST_CLOUD_INIT=$(if $(CLOUD_INIT),$(abspath $(CLOUD_INIT))) \
	  BCMTEST_ARTIFACTS=$(abspath $(ARTIFACTS)) BCMTEST_RUN_ID=$(RUN_ID) \
	  $(GO) test -count=1 -v -timeout 90m ./suites/e2e $(GINKGO_FLAGS) \
	  $(if $(LABELS),-ginkgo.label-filter='$(LABELS)') \
	  -ginkgo.junit-report=$(ARTIFACTS)/$(RUN_ID)/junit.xml -ginkgo.json-report=$(ARTIFACTS)/$(RUN_ID)/report.json

## dry-run: list the e2e specs with their labels, without VMs
dry-run:
	BCMTEST_E2E=1 $(GO) test -count=1 -v ./suites/e2e -ginkgo.dry-run -ginkgo.v $(if $(LABELS),-ginkgo.label-filter='$(LABELS)')

## nightly: the same suites with 3 members (four nodes)
nightly:
	$(MAKE) e2e MEMBERS=3

## faults: the fault-injection suite on a cluster with 2 members (three nodes)
faults: deps
	mkdir -p $(ARTIFACTS)
	BCMTEST_FAULTS=1 BCMTEST_MEMBERS=$(or $(FAULT_MEMBERS),2) BCMTEST_ARTIFACTS=$(ARTIFACTS) \
	  $(GO) test -count=1 -v -timeout 90m ./suites/faults $(GINKGO_FLAGS) \
	  -ginkgo.junit-report=$(ARTIFACTS)/faults-$(RUN_ID)-junit.xml

## bench: provider and cluster benchmarks on real VMs
bench: deps
	BCMTEST_INTEGRATION=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 90m ./suites/bench

## lint: go vet, and actionlint plus structure checks on ci/workflows (shellcheck when installed)
lint:
	$(GO) vet ./...
	BCMTEST_SHELLCHECK=$$(command -v shellcheck >/dev/null && echo 1) $(GO) test -count=1 ./ci/...
