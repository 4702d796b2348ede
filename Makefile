# ferry's build. The Go flags live here, once: every target and CI use them,
# so the build cache is shared (changing tags or cgo rebuilds everything).
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

.PHONY: all build test unit e2e demo bench lint fmt clean

all: build

build:
	$(BUILD_ENV) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

test: build
	FERRY_BIN=$(FERRY) $(TEST_ENV) $(GO) test $(TEST_FLAGS) -timeout 20m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(BUILD_ENV) $(GO) vet ./...
	$(BUILD_ENV) staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist
