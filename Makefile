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
# cuda-lib: build/libvireo_kernels.so (ptxas resource report in build/ptxas.log; its sm_90
# registers, shared memory and spills are printed, and any spill fails the target).
# cuda: the library, then every command with -tags cuda into build/, beside the library
# (the binaries find it through rpath $ORIGIN).
# cuda-check: vet and compile every cuda-tagged package and test binary (runs no test).
# gpu-bundle: build/gpu/, what a lent GPU machine runs (bash scripts/gpu-check.sh).
.PHONY: cuda-lib cuda cuda-check gpu-bundle
CMAKE ?= cmake
VIREO_SHARED ?= ../shared

# The build's output goes to build/cmake-build.log; only a build that compiled something
# (ptxas lines) replaces build/ptxas.log, so a no-op rebuild keeps the real report.
cuda-lib:
	mkdir -p build
	$(CMAKE) -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release >build/cmake.log 2>&1 || { cat build/cmake.log; exit 1; }
	$(CMAKE) --build build/cmake -j $$(nproc) >build/cmake-build.log 2>&1 || { tail -60 build/cmake-build.log; exit 1; }
	@if grep -q 'ptxas info' build/cmake-build.log; then cp build/cmake-build.log build/ptxas.log; \
	else echo "kernels up to date: build/ptxas.log is the last compile's report"; fi
	@bash scripts/ptxas-summary.sh build/ptxas.log sm_90

cuda: cuda-lib
	$(GO) build -tags cuda ./...
	$(GO) build -tags cuda -o build/ ./cmd/...

cuda-check: cuda-lib
	$(GO) vet -tags cuda ./...
	$(GO) build -tags cuda ./...
	$(GO) test -tags cuda -count=1 -run '^$$' ./...
	$(GO) test -tags cuda -count=1 -run 'TestMatMulKernel|TestMatMulCasesReachEveryPath|TestParseKernels|TestAttention2CasesReachEveryPath|TestMM2Table|TestMM2Cases|TestW8A8ByRole|TestFaultsApply' ./runtime/backend/cuda

# The bundle holds only what scripts/gpu-check.sh runs (GPU run B adds serve and bench:
# make gpu-bundle BUNDLE_EXTRA="serve bench"); it must stay under 60 MiB (the device tool carries 64).
BUNDLE_EXTRA ?=
gpu-bundle: cuda-lib
	rm -rf build/gpu
	mkdir -p build/gpu/bin build/gpu/src build/gpu/models/stories260K
	$(GO) build -tags cuda -trimpath -ldflags='-s -w' -o build/gpu/bin/ ./cmd/vireo-check ./cmd/vireo-devinfo $(addprefix ./cmd/,$(BUNDLE_EXTRA))
	$(GO) test -tags cuda -c -trimpath -ldflags='-s -w' -o build/gpu/bin/backend-cuda.test ./runtime/backend/cuda
	# The kernel library (fatbins: SASS for sm_80/sm_90 and compute_90 PTX, ~70 MiB) travels
	# xz-compressed (~6 MiB); gpu-check.sh unpacks it beside the binaries before any phase.
	xz -T0 -6 -c build/libvireo_kernels.so >build/gpu/bin/libvireo_kernels.so.xz
	cp build/ptxas.log build/gpu/
	cp -r CMakeLists.txt cuda build/gpu/src/
	cp scripts/gpu-check.sh scripts/gpu-bench.py build/gpu/
	cp $(VIREO_SHARED)/models/stories260K/stories260K.bin $(VIREO_SHARED)/models/stories260K/tok512.bin build/gpu/models/stories260K/
	@size=$$(du -sm build/gpu | cut -f1); echo "build/gpu: $$size MiB"; \
	if [ $$size -ge 60 ]; then echo "gpu-bundle: $$size MiB, over the 60 MiB limit"; exit 1; fi
