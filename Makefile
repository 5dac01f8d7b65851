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
	$(GO) test ./runtime/llm/ -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME)

run:
	$(GO) run ./cmd/vireo

ci:
	bash .ci/run

# ---- CUDA (needs nvcc and cmake: bash scripts/install-cuda-toolkit.sh) ----------------
# cuda-lib: build/libvireo_kernels.so (ptxas resource report in build/ptxas.log).
# cuda: the library, then every command with -tags cuda into build/, beside the library
# (the binaries find it through rpath $ORIGIN).
# cuda-check: vet and compile every cuda-tagged package and test binary (runs no test).
# gpu-bundle: build/gpu/, what a lent GPU machine runs (bash scripts/gpu-check.sh).
.PHONY: cuda-lib cuda cuda-check gpu-bundle
CMAKE ?= cmake
VIREO_SHARED ?= ../shared

cuda-lib:
	mkdir -p build
	$(CMAKE) -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release >build/cmake.log 2>&1 || { cat build/cmake.log; exit 1; }
	$(CMAKE) --build build/cmake -j $$(nproc) >build/ptxas.log 2>&1 || { tail -60 build/ptxas.log; exit 1; }
	@grep -E 'bytes spill' build/ptxas.log | grep -v ' 0 bytes spill stores, 0 bytes spill loads' || echo "ptxas: no spills (build/ptxas.log)"

cuda: cuda-lib
	$(GO) build -tags cuda ./...
	$(GO) build -tags cuda -o build/ ./cmd/...

cuda-check: cuda-lib
	$(GO) vet -tags cuda ./...
	$(GO) build -tags cuda ./...
	$(GO) test -tags cuda -count=1 -run '^$$' ./...
	$(GO) test -tags cuda -count=1 -run 'TestMatMulKernel|TestMatMulCasesReachEveryPath' ./runtime/backend/cuda

gpu-bundle: cuda-lib
	rm -rf build/gpu
	mkdir -p build/gpu/bin build/gpu/src build/gpu/models/stories260K
	$(GO) build -tags cuda -trimpath -ldflags='-s -w' -o build/gpu/bin/ ./cmd/vireo-check ./cmd/serve ./cmd/vireo
	$(GO) test -tags cuda -c -trimpath -o build/gpu/bin/backend-cuda.test ./runtime/backend/cuda
	cp build/libvireo_kernels.so build/gpu/bin/
	cp -r CMakeLists.txt cuda build/gpu/src/
	cp scripts/gpu-check.sh scripts/gpu-bench.py build/gpu/
	cp $(VIREO_SHARED)/models/stories260K/stories260K.bin $(VIREO_SHARED)/models/stories260K/tok512.bin build/gpu/models/stories260K/
	@du -sh build/gpu
