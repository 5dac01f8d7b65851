#!/usr/bin/env bash
# gpu-check.sh: what a lent GPU machine (H100/H200: nvcc 13, CMake, PyTorch; no Go, no
# network) runs from the bundle `make gpu-bundle` builds (build/gpu, carried to the
# machine). Phases, each capped by a timeout, each merged into $OUT/gpu-check.json as it
# finishes (so a cut-off run still returns what it measured); about 5 minutes in all:
#   1. device info and copy bandwidth
#   2. (REBUILD=1 only) rebuild the kernel library with the local nvcc (adds sm_90a); the
#      bundled nvcc 11.8 build stays as the fallback when the rebuild or its smoke test fails
#   3. op checks against the CPU backend (backendtest; LARGE=1 adds the real-shape cases)
#   4. kernel benchmarks, and the same shapes through PyTorch/cuBLAS (gpu-bench.py)
#   5. end to end: stories260K greedy CPU vs GPU; synthetic Llama-3-8B TTFT and decode
# Logs go to $OUT/logs.tar.gz ($OUT returns at most 8 files). Without a GPU every phase
# fails quickly and says why; the script itself exits 0 once gpu-check.json is written.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/vireo-check" ]; then B=$here; else B=$(cd "$here/../build/gpu" 2>/dev/null && pwd || echo "$here/../build/gpu"); fi
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
J=$OUT/gpu-check.json
CHECK=$B/bin/vireo-check
started=$(date +%s)
phases=()

json_escape() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' 2>/dev/null || sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/' | tr -d '\n'; }

# merge: gpu-check.json = {"bundle": ..., "elapsed_s": ..., "<phase>": <its JSON>, ...}
merge() {
  {
    printf '{\n"bundle": "%s",\n"elapsed_s": %d' "$B" $(( $(date +%s) - started ))
    for p in "${phases[@]}"; do
      printf ',\n"%s": ' "$p"
      if [ -s "$WORK/$p.json" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/$p.json" 2>/dev/null; then
        cat "$WORK/$p.json"
      else
        printf '{"error": %s}' "$(tail -c 2000 "$WORK/$p.log" 2>/dev/null | json_escape)"
      fi
    done
    printf '\n}\n'
  } > "$J.tmp" && mv "$J.tmp" "$J"
  tar -czf "$OUT/logs.tar.gz" -C "$WORK" . 2>/dev/null
}

# phase NAME TIMEOUT CMD...: runs CMD (which writes $WORK/NAME.json), logs, merges.
phase() {
  local name=$1 limit=$2
  shift 2
  echo "== $name (timeout ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc, $(( $(date +%s) - t0 ))s"
  tail -3 "$WORK/$name.log" | sed 's/^/   /'
  phases+=("$name")
  merge
  return $rc
}

# Caps add up to about 5 minutes (the machine's start takes 1-2 of the 15 lent, and a
# rerun must fit). The rebuild with the card's nvcc is opt-in (REBUILD=1): the 11.8
# library already carries sm_90 code, and sm_90a only matters once wgmma kernels exist.
phase device 20 "$CHECK" device -out "$WORK/device.json"
phase bandwidth 30 "$CHECK" bandwidth -out "$WORK/bandwidth.json"

rebuild() {
  local src=$B/src
  if ! command -v nvcc >/dev/null || ! command -v cmake >/dev/null; then
    echo '{"rebuilt": false, "reason": "no nvcc or cmake"}' >"$WORK/rebuild.json"
    return 1
  fi
  rm -rf "$WORK/cmake" "$src/build"
  cmake -S "$src" -B "$WORK/cmake" -DCMAKE_BUILD_TYPE=Release >"$WORK/rebuild-cmake.log" 2>&1 &&
    cmake --build "$WORK/cmake" -j "$(nproc)" >"$WORK/ptxas-local.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] || [ ! -f "$src/build/libvireo_kernels.so" ]; then
    printf '{"rebuilt": false, "nvcc": "%s", "reason": "build failed (ptxas-local.log)"}\n' "$(nvcc --version | tail -1)" >"$WORK/rebuild.json"
    return 1
  fi
  [ -f "$B/bin/libvireo_kernels.so.cuda118" ] || cp "$B/bin/libvireo_kernels.so" "$B/bin/libvireo_kernels.so.cuda118"
  cp "$src/build/libvireo_kernels.so" "$B/bin/libvireo_kernels.so"
  if ! "$CHECK" device -out "$WORK/rebuild-smoke.json" >/dev/null 2>&1; then
    cp "$B/bin/libvireo_kernels.so.cuda118" "$B/bin/libvireo_kernels.so"
    printf '{"rebuilt": false, "nvcc": "%s", "reason": "smoke test failed; using the 11.8 build"}\n' "$(nvcc --version | tail -1)" >"$WORK/rebuild.json"
    return 1
  fi
  printf '{"rebuilt": true, "nvcc": "%s", "spill_lines_nonzero": %s}\n' "$(nvcc --version | tail -1)" \
    "$(grep 'bytes spill' "$WORK/ptxas-local.log" | grep -vc ' 0 bytes spill stores, 0 bytes spill loads')" >"$WORK/rebuild.json"
}
if [ "${REBUILD:-0}" = 1 ]; then
  phase rebuild 150 bash -c "$(declare -f rebuild); B='$B' WORK='$WORK' CHECK='$CHECK' rebuild"
fi

ops_args=()
[ "${LARGE:-0}" = 1 ] && ops_args+=(-large)
phase ops 60 "$CHECK" ops "${ops_args[@]}" -v -out "$WORK/ops.json"
# The CUDA backend's own tests of the indexed ops and the device decode loop (graph
# capture, device sampling, the finished mask) against the CPU and runtime/sampling.
cuda_tests() {
  "$B/bin/backend-cuda.test" -test.v -test.count=1 -test.timeout 40s -test.run 'TestIndexedOps|TestDecodeLoop' >"$WORK/cuda-tests.out" 2>&1
  local rc=$?
  printf '{"rc": %d, "pass": %d, "fail": %d, "skip": %d, "tail": %s}\n' "$rc" \
    "$(grep -c -- '--- PASS' "$WORK/cuda-tests.out")" "$(grep -c -- '--- FAIL' "$WORK/cuda-tests.out")" \
    "$(grep -c -- '--- SKIP' "$WORK/cuda-tests.out")" "$(tail -c 3000 "$WORK/cuda-tests.out" | json_escape)" >"$WORK/cuda-tests.json"
  # A skip (no device) is not a pass: the phase fails unless a test passed and none failed.
  grep -q -- '--- PASS' "$WORK/cuda-tests.out" || rc=1
  return $rc
}
phase cuda-tests 45 bash -c "$(declare -f cuda_tests json_escape); B='$B' WORK='$WORK' cuda_tests"
phase kernels 40 "$CHECK" kernels -out "$WORK/kernels.json"
phase torch 40 python3 "$B/gpu-bench.py" --out "$WORK/torch.json"
# Separate processes, so a slow 16-bit load cannot cost the int8 numbers.
phase e2e-int8 60 "$CHECK" e2e -weights int8 -out "$WORK/e2e-int8.json"
phase e2e-f16 60 "$CHECK" e2e -weights f16 -stories "" -out "$WORK/e2e-f16.json"
# The engine end to end (GPU-run item 2: TTFT 128/512/2,048, concurrency 1/16/64, the
# mixed workload, graphs on/off) is a separate, longer run: ENGINE=1.
if [ "${ENGINE:-0}" = 1 ]; then
  phase engine 240 "$CHECK" engine -device cuda -out "$WORK/engine.json"
fi

echo "== done in $(( $(date +%s) - started ))s: $J"
exit 0
