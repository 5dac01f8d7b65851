# Vireo: the everyday commands. The default build needs only Go.
GO ?= go
BENCH ?= .
BENCHTIME ?= 3x

.PHONY: all build test race vet fmt bench run ci

all: build

build:
	$(GO) build ./...

# The README's test command.
test:
	$(GO) test ./...

race:
	$(GO) test -race ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# CPU tokens/s for prefill and decode (stories260K and the TinyLlama-1.1B shape).
bench:
	$(GO) test ./runtime/model/ -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME)

run:
	$(GO) run ./cmd/vireo

ci:
	bash .ci/run
