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
# The Debian release of the qemu provider's nodes: bookworm or trixie
# (default $BCMTEST_IMAGE, else bookworm). The suites read BCMTEST_IMAGE.
IMAGE ?= $(BCMTEST_IMAGE)
FORCE ?=
# What each target runs is a Ginkgo label filter; `make targets` lists them
# and ci/targets_test.go checks that every spec is run by at least one.
# CI (`make e2e`, `make test`) runs the smoke specs and the integration specs
# labelled ci; the rest run in `make nightly`, `make integration-rest` and
# `make faults`.
LABELS ?= smoke
INTEGRATION_LABELS ?= ci
INTEGRATION_REST_LABELS := !ci
FUZZTIME ?= 60s
GINKGO_FLAGS ?= -ginkgo.v -ginkgo.timeout=80m
# BENCH selects benchmarks by name (go test -bench), all by default.
BENCH ?= .

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

# Phase markers for .ci/run's time table; they write only when
# BCMTEST_PHASE_LOG names a file.
PHASE := @ci/phase

.PHONY: check-image deps build unit fuzz integration integration-rest test e2e dry-run nightly faults bench lint targets soak

## deps: install host packages for this distribution (sudo when not root) and Go modules
deps:
	@HOST_PACKAGES='$(HOST_PACKAGES)' bash ci/deps.sh
	$(GO) mod download

## build: the bcmtest command into bin/
build:
	$(GO) build -o bin/bcmtest ./cmd/bcmtest

## unit: fast tests with the race detector, no VMs (-race needs gcc: make deps)
unit: deps
	$(PHASE) begin unit
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(PHASE) end unit

## fuzz: the cloud-init lint fuzz target for FUZZTIME (60s)
fuzz:
	$(PHASE) begin fuzz
	$(GO) test -run '^$$' -fuzz '^FuzzLint$$' -fuzztime $(FUZZTIME) ./cloudinit
	$(PHASE) end fuzz

## integration: the integration specs CI runs (label ci) on real VMs
integration: deps check-image
	mkdir -p $(ARTIFACTS)
	$(PHASE) begin integration
	BCMTEST_INTEGRATION=1 BCMTEST_IMAGE=$(IMAGE) $(GO) test -count=1 -v -timeout 90m ./suites/integration \
	  $(GINKGO_FLAGS) -ginkgo.label-filter='$(INTEGRATION_LABELS)' \
	  -ginkgo.junit-report=$(ARTIFACTS)/integration-$(RUN_ID)-junit.xml
	$(PHASE) end integration

## integration-rest: every integration spec CI leaves out (not labelled ci)
integration-rest:
	$(MAKE) integration INTEGRATION_LABELS='$(INTEGRATION_REST_LABELS)'

## test: unit tests, the lint fuzz target, then the CI integration specs on real VMs
test: unit fuzz integration

## e2e: the smoke specs (LABELS) against one cluster of 1+MEMBERS nodes on IMAGE (main job)
e2e: deps check-image
	$(PHASE) begin e2e
	@if [ -n "$(CLOUD_INIT)" ] && [ ! -f "$(CLOUD_INIT)" ]; then echo "CLOUD_INIT=$(CLOUD_INIT): no such file" >&2; exit 2; fi
	mkdir -p $(ARTIFACTS)/$(RUN_ID)
	BCMTEST_E2E=1 BCMTEST_IMAGE=$(IMAGE) BCMTEST_FORCE=$(FORCE) BCMTEST_MEMBERS=$(MEMBERS) BCMTEST_PROVIDER=$(PROVIDER) BCMTEST_CLOUD_INIT=$(if $(CLOUD_INIT),$(abspath $(CLOUD_INIT))) \
	  BCMTEST_ARTIFACTS=$(abspath $(ARTIFACTS)) BCMTEST_RUN_ID=$(RUN_ID) \
	  $(GO) test -count=1 -v -timeout 90m ./suites/e2e $(GINKGO_FLAGS) \
	  $(if $(LABELS),-ginkgo.label-filter='$(LABELS)') \
	  -ginkgo.junit-report=$(ARTIFACTS)/$(RUN_ID)/junit.xml -ginkgo.json-report=$(ARTIFACTS)/$(RUN_ID)/report.json
	$(PHASE) end e2e

## soak: RUNS fresh `make e2e` cycles back to back (each its own cluster) on IMAGE, then
## one table of each spec's passes, failures and flakes, with the flake rate
RUNS ?= 5
soak:
	@case "$(RUNS)" in ''|*[!0-9]*|0) echo "RUNS=$(RUNS): must be a whole number of cycles, 1 or more" >&2; exit 2;; esac; \
	dir=$(abspath $(ARTIFACTS))/soak-$(RUN_ID); mkdir -p "$$dir"; rc=0; \
	for i in $$(seq 1 $(RUNS)); do \
	  echo "soak: cycle $$i of $(RUNS), artifacts $$dir/run-$$i"; \
	  $(MAKE) --no-print-directory e2e ARTIFACTS="$$dir" RUN_ID=run-$$i || rc=1; \
	done; \
	$(GO) run ./cmd/bcmtest matrix --from-runs "$$dir" --sizes $(MEMBERS) --provider $(PROVIDER) --image '$(IMAGE)' \
	  $(if $(LABELS),--label-filter '$(LABELS)') || rc=1; \
	exit $$rc

## dry-run: list the e2e specs with their labels, without VMs
dry-run:
	BCMTEST_E2E=1 $(GO) test -count=1 -v ./suites/e2e -ginkgo.dry-run -ginkgo.v $(if $(LABELS),-ginkgo.label-filter='$(LABELS)')

## nightly: every e2e spec with 3 members (four nodes)
nightly:
	$(MAKE) e2e MEMBERS=3 LABELS=

## faults: the fault-injection suite on a cluster with 2 members (three nodes)
faults: deps check-image
	mkdir -p $(ARTIFACTS)
	BCMTEST_FAULTS=1 BCMTEST_IMAGE=$(IMAGE) BCMTEST_MEMBERS=$(or $(FAULT_MEMBERS),2) BCMTEST_ARTIFACTS=$(ARTIFACTS) \
	  $(GO) test -count=1 -v -timeout 150m ./suites/faults $(GINKGO_FLAGS) \
	  -ginkgo.junit-report=$(ARTIFACTS)/faults-$(RUN_ID)-junit.xml

## bench: provider and cluster benchmarks on real VMs
bench: deps check-image
	BCMTEST_INTEGRATION=1 BCMTEST_IMAGE=$(IMAGE) $(GO) test -count=1 -run '^$$' -bench '$(BENCH)' -benchtime 1x -timeout 90m ./suites/bench

# check-image: IMAGE names a release with a recipe (the CLI's own check and
# message), before a suite compiles or a VM starts.
check-image:
	@$(GO) run ./cmd/bcmtest image key --image '$(IMAGE)' >/dev/null

## lint: go vet, and actionlint plus structure checks on ci/workflows (shellcheck when installed)
lint:
	$(GO) vet ./...
	BCMTEST_SHELLCHECK=$$(command -v shellcheck >/dev/null && echo 1) $(GO) test -count=1 ./ci/...

## targets: each target that runs specs, its suite and its label filter (tab-separated)
targets:
	@printf '%s\t%s\t%s\n' e2e e2e '$(LABELS)' nightly e2e '' test integration '$(INTEGRATION_LABELS)' \
	  integration-rest integration '$(INTEGRATION_REST_LABELS)' faults faults ''
