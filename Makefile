# ferry's build. The Go flags live here, once: every target and CI use them,
# so the build cache is shared (changing tags or cgo rebuilds everything).
SHELL     := /bin/bash
GO        ?= go
GO_TAGS   := containers_image_openpgp containers_image_storage_stub containers_image_docker_daemon_stub
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The shipped binary is static; tests use cgo only for the race detector.
BUILD_ENV := CGO_ENABLED=0
TEST_ENV  := CGO_ENABLED=1
TEST_FLAGS ?= -race -count=1
PKGS      ?= ./...
FERRY     := $(CURDIR)/bin/ferry

comma   := ,
empty   :=
space   := $(empty) $(empty)
# Exported so that plain `go test ./...` run from make (and from CI) sees the tags.
export GOFLAGS := -buildvcs=false -tags=$(subst $(space),$(comma),$(GO_TAGS))

.PHONY: all build test demo bench lint fmt clean docs release fuzz

all: build

build:
	$(BUILD_ENV) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

test: build kube-bins opm-bin
	FERRY_BIN=$(FERRY) FERRY_KUBE_BIN_DIR=$(KUBE_BIN_DIR) FERRY_OPM=$(OPM) $(TEST_ENV) $(GO) test $(TEST_FLAGS) -timeout 20m $(PKGS)

# The whole journey, narrated, on registries embedded in one process: needs
# nothing but Go (no internet, no registry packages, no cluster).
demo: build
	@set -o pipefail; FERRY_BIN=$(FERRY) FERRY_DEMO=1 $(TEST_ENV) $(GO) test $(TEST_FLAGS) -v -run '^TestJourney$$' ./e2e/ | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS' -e '^ok '

# Speed and memory of ferry pack, apply and mirror on a payload shaped like
# a real release (testbed.RealPayload: 190 components, ~240 manifests, ~860
# blobs, 1.8 GB at BENCH_SCALE=1; 0.05 for a quick look, 5.6 for 10 GB),
# each beside its limit (plain HTTP, as many at once, nothing checked), with
# connections, requests per object, client and registry CPU and peak RSS;
# with BENCH_WAN=1 pack and apply again through TLS and 20-50 ms a request
# (on a quarter of the payload; FERRY_BENCH_WAN_SCALE=1 for all of it);
# peak RSS at two payload sizes; the Sigstore cost, incremental bundles and
# reading a catalog of Red Hat's scale. Prints figures, asserts none. No
# -race: the registries run in the test process. The page cache is warm;
# BENCH_CACHE=cold drops it before every contender (needs root).
# BENCH_BASELINE=path/to/another/ferry packs with that binary too, beside
# this one: a change's effect on the same payload, in one sitting.
# BENCH_ONLY=pack runs only pack and the memory check (for a large
# BENCH_SCALE: 10 GB needs about 30 GB of disk then). About 3 minutes at the
# defaults on the project's 2-core machines.
BENCH_SCALE    ?= 1
BENCH_WAN      ?= 1
BENCH_CACHE    ?= warm
BENCH_BASELINE ?=
BENCH_ONLY     ?=
bench: build
	FERRY_BIN=$(FERRY) FERRY_BENCH=1 FERRY_BENCH_SCALE=$(BENCH_SCALE) FERRY_BENCH_WAN=$(BENCH_WAN) FERRY_BENCH_CACHE=$(BENCH_CACHE) \
		FERRY_BENCH_BASELINE=$(BENCH_BASELINE) FERRY_BENCH_ONLY=$(BENCH_ONLY) \
		$(GO) test -count=1 -timeout 60m -run '^TestBenchmark(Catalog)?$$' -v ./e2e/

# Fuzz every parser of untrusted input for FUZZTIME each (the seed corpora
# also run as plain tests in make test). -parallel 2: more workers than
# cores stall the fuzzer on this 2-core kind of machine.
# A budget in executions ("200000x"), not a duration: Go 1.26's fuzzing
# coordinator can report its own -fuzztime deadline as a failure, "context
# deadline exceeded" with no crashing input (golang/go#75804, fixed in Go
# 1.27); a count has no deadline to race. The fastest targets run 30000
# inputs a second, the slowest (YAML policies, a bundle written per input)
# a few hundred.
FUZZTIME ?= 200000x
# Minimizing a new interesting input runs the target again and again with no
# progress shown; a few tries keep the corpus entries small without
# stalling slow targets (RSA verification, writing a bundle per input).
FUZZMINIMIZETIME ?= 10x
FUZZ_PKGS := ./bundle ./internal/safetext ./manifests ./mirror/catalog ./mirror/graph ./mirror/graphdata ./mirror/internal/httpget ./mirror/inventory ./mirror/prune ./mirror/registry ./mirror/release ./mirror/retry ./mirror/sigstore ./mirror/signature ./mirror/trust
fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) -parallel 2 $$pkg; \
		done; \
	done

# The command reference (markdown and man page) from the CLI definition; a
# test fails when the committed copy is stale.
docs:
	$(GO) test -count=1 -run '^TestReferenceUpToDate$$' ./cmd/ferry/ -update-docs

# Static binaries for the bastion's usual architectures, with checksums.
RELEASE_ARCHES := amd64 arm64
release:
	rm -rf dist && mkdir -p dist
	for arch in $(RELEASE_ARCHES); do \
		$(BUILD_ENV) GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/ferry-linux-$$arch ./cmd/ferry || exit 1; \
	done
	cd dist && sha256sum ferry-linux-* > SHA256SUMS
	@cat dist/SHA256SUMS

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(BUILD_ENV) $(GO) vet ./...
	$(BUILD_ENV) staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist

# ---- kube: a real kube-apiserver and etcd for tests --------------------------
# Built from the separate module e2e/kube (k8s.io/kubernetes never enters the
# CLI's go.mod) into a directory named after that module's go.mod and go.sum,
# so a dependency change builds afresh and an unchanged one is never rebuilt
# (a cold build takes ~7 min on 2 cores). Tests find them via FERRY_KUBE_BIN_DIR.
KUBE_MOD     := e2e/kube
KUBE_HASH    := $(shell cat $(KUBE_MOD)/go.mod $(KUBE_MOD)/go.sum 2>/dev/null | sha256sum | cut -c1-16)
KUBE_BIN_DIR := $(CURDIR)/.cache/kube/$(KUBE_HASH)
KUBE_VERSION := v1.32.13
# The CLI's build tags mean nothing to this module: keep them out.
KUBE_ENV     := CGO_ENABLED=0 GOFLAGS=-buildvcs=false
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=32

.PHONY: kube-bins
kube-bins: $(KUBE_BIN_DIR)/kube-apiserver $(KUBE_BIN_DIR)/etcd

# Each binary is written under a temporary name and renamed, so an interrupted
# build never leaves a file that a later run would take as complete.
$(KUBE_BIN_DIR)/kube-apiserver:
	@mkdir -p $(@D)
	cd $(KUBE_MOD) && $(KUBE_ENV) $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@.partial k8s.io/kubernetes/cmd/kube-apiserver
	mv $@.partial $@

$(KUBE_BIN_DIR)/etcd:
	@mkdir -p $(@D)
	cd $(KUBE_MOD) && $(KUBE_ENV) $(GO) build -trimpath -ldflags '-s -w' -o $@.partial ./etcd
	mv $@.partial $@

# ---- opm: operator-registry's reference tool for catalog tests ---------------
# Built from the separate module e2e/opm (opm's sqlite and container runtime
# dependencies never enter the CLI's go.mod), from the Go module proxy, into
# a directory named after that module's go.mod and go.sum and the build
# flags, cached like the kube binaries. Tests find it via FERRY_OPM.
OPM_MOD     := e2e/opm
OPM_VERSION := $(shell grep -o 'operator-registry v[^ ]*' $(OPM_MOD)/go.mod 2>/dev/null | cut -d' ' -f2)
# opm's own release flags: json1 for sqlite, and containers/image's pure-Go
# OpenPGP instead of gpgme (which would need libgpgme's headers).
OPM_TAGS    := json1,containers_image_openpgp
OPM_LDFLAGS := -s -w -X github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion=$(OPM_VERSION)
OPM_HASH    := $(shell { cat $(OPM_MOD)/go.mod $(OPM_MOD)/go.sum; echo '$(OPM_TAGS) $(OPM_LDFLAGS)'; } 2>/dev/null | sha256sum | cut -c1-16)
OPM         := $(CURDIR)/.cache/opm/$(OPM_HASH)/opm
# cgo for mattn/go-sqlite3 (opm links it even when only serving FBC); the
# CLI's tags mean nothing to this module: keep them out.
OPM_ENV     := CGO_ENABLED=1 GOFLAGS=-buildvcs=false

.PHONY: opm-bin
opm-bin: $(OPM)

# Written under a temporary name and renamed, as the kube binaries are.
$(OPM):
	@mkdir -p $(@D)
	cd $(OPM_MOD) && $(OPM_ENV) $(GO) build -trimpath -tags '$(OPM_TAGS)' -ldflags '$(OPM_LDFLAGS)' -o $@.partial github.com/operator-framework/operator-registry/cmd/opm
	mv $@.partial $@
