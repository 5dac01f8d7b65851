#!/usr/bin/env bash
# gpu-check.sh: what a lent GPU machine (H100/H200: nvcc 13, CMake, PyTorch,
# compute-sanitizer; no Go, no network) runs from the bundle `make gpu-bundle` builds
# (build/gpu, carried to the machine). bench/NOTES.md documents every phase, its JSON
# fields and its budget.
#
#   OUT=/path BUDGET=300 PHASES=ops,cuda-tests bash build/gpu/gpu-check.sh
#
# BUDGET (seconds, default 300) is the script's own time: each phase runs under a cap,
# the smaller of its default cap and what is left of the budget; a phase whose expected
# time no longer fits is skipped, saying so. PHASES=a,b runs only the named phases (a
# rerun repeats only what failed); the default is every phase but rebuild and engine
# (REBUILD=1, ENGINE=1, PROFILE=1, SERVE=1 add them; LARGE=1 adds the large op cases). Vireo's performance
# phases (kernels, e2e-*, engine) are skipped when ops ran cases and some failed.
#
# Every phase writes $WORK/<phase>.json (vireo-check also writes <phase>.jsonl line by
# line as results come, so a phase cut off by its cap keeps what it measured) and a
# <phase>.status; after each phase `vireo-check report` merges them into
# $OUT/gpu-check.json, whose top-level "summary" has issue 19's keys, and at the end
# prints the one-screen summary (also $OUT/summary.txt). Logs (nvidia-smi -q, each
# phase's output, sanitizer reports, the compiler's ptxas report) go to
# $OUT/logs.tar.gz. Without a GPU every phase fails fast and says why; the script
# exits 0 once gpu-check.json is written.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/vireo-check" ]; then B=$here; else B=$(cd "$here/../build/gpu" 2>/dev/null && pwd || echo "$here/../build/gpu"); fi
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
CHECK=$B/bin/vireo-check
# make gpu-bundle ships the kernel library xz-compressed (the bundle must stay under the
# device tool's 64 MiB): unpack it once, with Python's lzma (PyTorch's Python is there)
# or xz.
if [ -f "$B/bin/libvireo_kernels.so.xz" ] && [ ! -f "$B/bin/libvireo_kernels.so" ]; then
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2] + ".tmp", "wb"))' \
    "$B/bin/libvireo_kernels.so.xz" "$B/bin/libvireo_kernels.so" 2>/dev/null ||
    xz -dc "$B/bin/libvireo_kernels.so.xz" >"$B/bin/libvireo_kernels.so.tmp" ||
    echo "gpu-check: cannot unpack $B/bin/libvireo_kernels.so.xz (no Python lzma, no xz)"
  [ -s "$B/bin/libvireo_kernels.so.tmp" ] && mv "$B/bin/libvireo_kernels.so.tmp" "$B/bin/libvireo_kernels.so" && chmod +x "$B/bin/libvireo_kernels.so"
fi
BUDGET=${BUDGET:-300}
started=$(date +%s)
ops_failed=0
ran=()

default_phases="device,bandwidth,ops,cuda-tests,sanitizer,kernels,torch,e2e-int8,e2e-f16"
[ "${REBUILD:-0}" = 1 ] && default_phases="device,rebuild,${default_phases#device,}"
[ "${ENGINE:-0}" = 1 ] && default_phases="$default_phases,engine"
# SERVE=1 adds the serving phase (GPU run B, issue 20): needs serve and bench in the bundle
# (make gpu-bundle BUNDLE_EXTRA="serve bench"); GPU run B runs PHASES=engine,serve.
[ "${SERVE:-0}" = 1 ] && default_phases="$default_phases,serve"
# PROFILE=1 adds the op profile (issue 36): outside the default budget.
[ "${PROFILE:-0}" = 1 ] && default_phases="$default_phases,profile"
PHASES=${PHASES:-$default_phases}

# Per phase: expected seconds on an H200, cap in seconds (bench/NOTES.md, "Budget").
declare -A EXPECT=([device]=5 [rebuild]=90 [bandwidth]=3 [ops]=25 [cuda-tests]=12 [sanitizer]=45
  [kernels]=15 [torch]=30 [e2e-int8]=25 [e2e-f16]=15 [engine]=200 [profile]=60 [serve]=120)
declare -A CAP=([device]=15 [rebuild]=150 [bandwidth]=15 [ops]=45 [cuda-tests]=30 [sanitizer]=60
  [kernels]=30 [torch]=50 [e2e-int8]=35 [e2e-f16]=20 [engine]=240 [profile]=120 [serve]=200)
# Vireo's performance phases, skipped once ops has failed cases (the torch anchor runs
# regardless: its numbers stay valid for a rerun after a fix).
perf=" kernels e2e-int8 e2e-f16 engine profile serve "

left() { echo $(( BUDGET - ($(date +%s) - started) )); }
wanted() { [[ ",$PHASES," == *",$1,"* ]]; }

report() {
  local ph
  ph=$(IFS=,; echo "${ran[*]}")
  "$CHECK" report -work "$WORK" -phases "$ph" -budget "$BUDGET" -elapsed $(( $(date +%s) - started )) \
    -bundle "$B" -screen "$OUT/summary.txt" -out "$OUT/gpu-check.json.tmp" 2>"$WORK/report.log" &&
    mv "$OUT/gpu-check.json.tmp" "$OUT/gpu-check.json" && return 0
  # vireo-check itself cannot run (e.g. its library does not load): a plain merge.
  python3 - "$WORK" "$OUT/gpu-check.json" "$ph" <<'PY' 2>>"$WORK/report.log" || echo '{"error": "report failed; see logs.tar.gz"}' >"$OUT/gpu-check.json"
import json, os, sys
work, out, phases = sys.argv[1], sys.argv[2], [p for p in sys.argv[3].split(",") if p]
res = {"report_error": open(os.path.join(work, "report.log")).read()[-2000:], "summary": None, "phases": phases}
for p in phases:
    d = {}
    for ext in ("status", "json"):
        try:
            d[ext] = json.load(open(os.path.join(work, p + "." + ext)))
        except Exception as e:
            d[ext + "_error"] = str(e)
    res[p] = d
json.dump(res, open(out, "w"), indent=1)
PY
}

# status NAME RC SECONDS CAP | status NAME skip REASON
status() {
  if [ "$2" = skip ]; then
    python3 -c 'import json,sys; print(json.dumps({"skipped": sys.argv[1]}))' "$3" >"$WORK/$1.status"
  else
    printf '{"rc": %d, "seconds": %d, "cap_s": %d}\n' "$2" "$3" "$4" >"$WORK/$1.status"
  fi
}

skip() {
  echo "== $1: skipped: $2"
  status "$1" skip "$2"
  ran+=("$1")
  report
}

# phase NAME CMD...: runs CMD under the phase's cap (trimmed to the budget), logs it to
# $WORK/NAME.log, writes NAME.status and merges.
phase() {
  local name=$1
  shift
  wanted "$name" || return 0
  local l=$(( $(left) - 3 )) cap=${CAP[$name]}
  if [ "$ops_failed" = 1 ] && [[ "$perf" == *" $name "* ]]; then
    skip "$name" "ops failed: Vireo's performance phases are not worth the GPU time until the ops pass"
    return 0
  fi
  if [ "$l" -lt "${EXPECT[$name]}" ]; then
    skip "$name" "time is short: ${l}s left of the ${BUDGET}s budget, the phase expects ${EXPECT[$name]}s"
    return 0
  fi
  [ "$cap" -gt "$l" ] && cap=$l
  echo "== $name (cap ${cap}s, ${l}s left)"
  local t0=$(date +%s)
  PHASE_CAP=$cap timeout --kill-after=5 "$cap" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  echo "   rc=$rc, ${dt}s"
  tail -3 "$WORK/$name.log" | cut -c1-200 | sed 's/^/   /'
  status "$name" "$rc" "$dt" "$cap"
  ran+=("$name")
  # ops "failed" for the gate when cases ran and some failed; an ops phase that could
  # not start (no device) leaves the later phases to fail fast on their own.
  if [ "$name" = ops ] && [ "$rc" != 0 ] && grep -q '"status":"FAIL"' "$WORK/ops.jsonl" 2>/dev/null; then
    ops_failed=1
  fi
  report
  return 0
}

have_driver() { [ -e /proc/driver/nvidia/version ] || nvidia-smi -L >/dev/null 2>&1; }

# device: the card's state (nvidia-smi -q: clocks, power, memory, ECC, MIG mode) into
# the logs, vireo-check device (versions, memory, and one tiny kernel: a missing
# kernel image fails here), then vireo-devinfo (driver API via gorgonia.org/cu beside
# the library's ABI; it exits without a driver, so it runs only when one exists).
device() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -q >"$WORK/nvidia-smi-q.txt" 2>&1
    nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,power.limit,memory.used,memory.total,ecc.mode.current,mig.mode.current \
      --format=csv >"$WORK/nvidia-smi.csv" 2>&1
  else
    echo "nvidia-smi not on PATH" >"$WORK/nvidia-smi-q.txt"
  fi
  "$CHECK" device -out "$WORK/device.json"
  local rc=$?
  if have_driver; then
    "$B/bin/vireo-devinfo" -out "$WORK/devinfo.json" || rc=1
  else
    echo "vireo-devinfo: not run: no NVIDIA driver (/proc/driver/nvidia/version absent, nvidia-smi -L failed)" | tee "$WORK/devinfo.txt"
    rc=1
  fi
  return $rc
}

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

# cuda-tests: the CUDA backend's own tests against the CPU and runtime/sampling: ops on
# device index tensors with idle and out-of-range rows, the device decode loop (graph
# capture, device sampling) and the device sampler at vocab 128k on kernels v2 and v1
# (TestDecodeLoop, TestSampler), every matmul path with W8A8 from row 1 and the SIMT
# kernels forced, the 2:4 kernels (issue 35; off by default until this passes) against
# the dense kernel on the masked weights, the low-rank pairs, kernels v2 matmuls (issue 22;
# v2 is the default, v1 beside it until this passes) under each setting of mm2Backends and the broken-variant
# demonstration (TestMM2FaultsCaught: every v2 case a fault changes must fail with each deliberate
# fault), the W4A16 kernels (issue 26; off by default until this passes: TestMatMulPathsW4,
# TestMM2FaultsCaughtW4, TestMatMulSplitW4, matched by the patterns below), and Upload's ordering (100
# uploads of 64 MiB read at once on a non-blocking stream). A skip is not a pass.
cuda_tests() {
  local t=$(( PHASE_CAP - 3 ))
  "$B/bin/backend-cuda.test" -test.v -test.count=1 -test.timeout "${t}s" \
    -test.run 'TestIndexRows|TestDecodeLoop|TestSampler|TestMatMulPaths|TestUploadOrdering|TestMatMulKernel|TestMatMulCasesReachEveryPath|TestSparse24Kernels|TestOpTimer|TestParseKernels|TestAttention2CasesReachEveryPath|TestMM2|TestMatMulSplit|TestLoRAKernel' >"$WORK/cuda-tests.out" 2>&1
  local rc=$?
  python3 - "$WORK/cuda-tests.out" "$rc" >"$WORK/cuda-tests.json" <<'PY'
import json, re, sys
text = open(sys.argv[1], errors="replace").read()
top = lambda k: sorted(set(re.findall(r"^--- %s: (\S+)" % k, text, re.M)))
print(json.dumps({"rc": int(sys.argv[2]), "pass": len(top("PASS")), "fail": len(top("FAIL")), "skip": len(top("SKIP")),
                  "passed": top("PASS"), "failed": top("FAIL"), "skipped": top("SKIP"), "tail": text[-3000:]}))
PY
  tail -5 "$WORK/cuda-tests.out"
  if grep -q -- '^--- SKIP' "$WORK/cuda-tests.out"; then
    echo "cuda-tests: skipped: $(grep -m1 -E '^ +cuda_test.go:[0-9]+: ' "$WORK/cuda-tests.out" | sed 's/^ *//') (a skip is not a pass)"
    rc=1
  fi
  return $rc
}

# sanitizer: compute-sanitizer memcheck and racecheck on the small op checks, and
# memcheck on the device decode loop (TestDecodeLoop: capture, replays, device
# sampling); error counts and the first 20 lines of each report.
sanitizer() {
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
  if [ -z "$cs" ]; then
    echo '{"errors": null, "error": "compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"}' >"$WORK/sanitizer.json"
    echo "compute-sanitizer not found"
    return 1
  fi
  local each=$(( (PHASE_CAP - 4) / 3 ))
  run1() { # name tool cmd...
    local name=$1 tool=$2
    shift 2
    timeout --kill-after=3 "$each" "$cs" --tool "$tool" --print-limit 20 --error-exitcode 3 "$@" >"$WORK/sanitizer-$name.txt" 2>&1
    echo "$?" >"$WORK/sanitizer-$name.rc"
  }
  run1 memcheck-ops memcheck "$CHECK" ops -small -lora -w4a16 -out "$WORK/sanitizer-ops.json"
  run1 racecheck-ops racecheck "$CHECK" ops -small -ops matmul,attention,rmsnorm -out "$WORK/sanitizer-race.json"
  run1 memcheck-decode memcheck "$B/bin/backend-cuda.test" -test.count=1 -test.run 'TestDecodeLoop' -test.timeout "$((each - 2))s"
  python3 - "$WORK" <<'PY'
import json, os, re, sys
w = sys.argv[1]
res, total, complete, line = {}, 0, True, []
for name in ("memcheck-ops", "racecheck-ops", "memcheck-decode"):
    text = open(os.path.join(w, "sanitizer-%s.txt" % name), errors="replace").read()
    rc = int(open(os.path.join(w, "sanitizer-%s.rc" % name)).read().strip() or 1)
    m = re.search(r"ERROR SUMMARY: (\d+) error", text)
    n = int(m.group(1)) if m else None
    if n is None:
        complete = False
    else:
        total += n
    head = text.splitlines()[:20]
    res[name] = {"rc": rc, "errors": n, "timed_out": rc in (124, 137), "head": head}
    why = "%d errors" % n if n is not None else "no ERROR SUMMARY (rc %d%s: %s)" % (
        rc, ", timed out" if rc in (124, 137) else "", (head[-1] if head else "no output").lstrip("= ")[:120])
    line.append("%s: %s" % (name, why))
res["errors"] = total if complete else None
json.dump(res, open(os.path.join(w, "sanitizer.json"), "w"))
print("sanitizer: " + "; ".join(line))
sys.exit(0 if res["errors"] == 0 else 1)
PY
  return $?
}

# serve: GPU run B's serving phase. cmd/serve on SERVE_MODEL (default the synthetic
# Llama-3-8B shape, int8) on a loopback port, driven by cmd/bench load closed-loop at
# concurrency 1, 16 and 64 and open-loop at SERVE_RATE requests/s; serve.json holds each
# run's summary (requests, completed, failed, TTFT/TPOT percentiles, throughput) beside
# the server's config line. SERVE_DEVICE=cpu and a small SERVE_MODEL run it without a
# GPU (how it is tested). The server is stopped with SIGTERM (its graceful shutdown).
serve_phase() {
  local model=${SERVE_MODEL:-synthetic:llama3-8b} dev=${SERVE_DEVICE:-cuda}
  local inlen=${SERVE_INPUT_LEN:-128} outlen=${SERVE_OUTPUT_LEN:-64} rate=${SERVE_RATE:-16}
  local n1=${SERVE_PROMPTS_C1:-8} n16=${SERVE_PROMPTS_C16:-64} n64=${SERVE_PROMPTS_C64:-128} nr=${SERVE_PROMPTS_RATE:-64}
  for b in serve bench; do
    if [ ! -x "$B/bin/$b" ]; then
      echo "serve: $B/bin/$b missing: build the bundle with make gpu-bundle BUNDLE_EXTRA=\"serve bench\""
      echo '{"error": "serve or bench missing from the bundle"}' >"$WORK/serve.json"
      return 1
    fi
  done
  "$B/bin/serve" --model "$model" --device "$dev" --weights int8 --host 127.0.0.1 --port 0 \
    --max-num-seqs 64 --max-waiting 1024 >"$WORK/serve-server.log" 2>&1 &
  local pid=$! port="" i
  for i in $(seq 1 $(( PHASE_CAP - 10 ))); do
    port=$(grep -o '"msg":"listening","addr":"127.0.0.1:[0-9]*"' "$WORK/serve-server.log" | grep -o '[0-9]*"$' | tr -d '"')
    [ -n "$port" ] && python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    port=""
    sleep 1
  done
  if [ -z "$port" ]; then
    echo "serve: the server did not become ready; its log:"
    tail -5 "$WORK/serve-server.log"
    kill "$pid" 2>/dev/null
    echo '{"error": "the server did not become ready (serve-server.log)"}' >"$WORK/serve.json"
    return 1
  fi
  local url="http://127.0.0.1:$port" rc=0
  "$B/bin/bench" load --url "$url" --concurrency 1 --num-prompts "$n1" --input-len "$inlen" --output-len "$outlen" --out "$WORK/serve-c1.json" || rc=1
  "$B/bin/bench" load --url "$url" --concurrency 16 --num-prompts "$n16" --input-len "$inlen" --output-len "$outlen" --out "$WORK/serve-c16.json" || rc=1
  "$B/bin/bench" load --url "$url" --concurrency 64 --num-prompts "$n64" --input-len "$inlen" --output-len "$outlen" --out "$WORK/serve-c64.json" || rc=1
  "$B/bin/bench" load --url "$url" --request-rate "$rate" --num-prompts "$nr" --input-len "$inlen" --output-len "$outlen" --out "$WORK/serve-rate.json" || rc=1
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  local src=$?
  python3 - "$WORK" "$model" "$dev" "$src" <<'PY' || rc=1
import json, os, sys
w, model, dev, src = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
res = {"model": model, "device": dev, "server_exit": src, "runs": {}}
for line in open(os.path.join(w, "serve-server.log"), errors="replace"):
    if '"msg":"config"' in line:
        try:
            res["server_config"] = json.loads(line)
        except ValueError:
            pass
ok = failed = 0
for name in ("c1", "c16", "c64", "rate"):
    try:
        d = json.load(open(os.path.join(w, "serve-%s.json" % name)))
        s = d["runs"][0]["summary"]
    except Exception as e:
        res["runs"][name] = {"error": str(e)}
        failed += 1
        continue
    res["runs"][name] = s
    ok += s.get("completed", 0)
    failed += s.get("requests", 0) - s.get("completed", 0)  # failed, or never finished
res["requests_ok"], res["requests_failed"] = ok, failed
json.dump(res, open(os.path.join(w, "serve.json"), "w"))
print("serve: %d requests ok, %d failed; server exit %d" % (ok, failed, src))
sys.exit(0 if failed == 0 and src == 0 else 1)
PY
  return $rc
}

ops_args=()
[ "${LARGE:-0}" = 1 ] && ops_args+=(-large)

phase device bash -c "$(declare -f device have_driver); B='$B' WORK='$WORK' CHECK='$CHECK' device"
phase rebuild bash -c "$(declare -f rebuild); B='$B' WORK='$WORK' CHECK='$CHECK' rebuild"
phase bandwidth "$CHECK" bandwidth -out "$WORK/bandwidth.json"
phase ops "$CHECK" ops "${ops_args[@]}" -v -out "$WORK/ops.json"
phase cuda-tests bash -c "$(declare -f cuda_tests); B='$B' WORK='$WORK' cuda_tests"
phase sanitizer bash -c "$(declare -f sanitizer); B='$B' WORK='$WORK' CHECK='$CHECK' sanitizer"
phase kernels "$CHECK" kernels -out "$WORK/kernels.json"
phase torch python3 "$B/gpu-bench.py" --out "$WORK/torch.json"
# Separate processes, so a slow 16-bit load cannot cost the int8 numbers.
phase e2e-int8 "$CHECK" e2e -weights int8 -out "$WORK/e2e-int8.json"
phase e2e-f16 "$CHECK" e2e -weights f16 -stories "" -steps 32 -out "$WORK/e2e-f16.json"
phase engine "$CHECK" engine -device cuda -out "$WORK/engine.json"
# Per-op device time at the Llama-3-8B shape; profile.pb.gz, profile.engine-c*.pb.gz
# (go tool pprof) land in the logs.
phase profile "$CHECK" profile -device cuda -out "$WORK/profile.json"
phase serve bash -c "$(declare -f serve_phase); B='$B' WORK='$WORK' serve_phase"

cp "$B/ptxas.log" "$WORK/" 2>/dev/null
report
tar -czf "$OUT/logs.tar.gz" -C "$WORK" . 2>/dev/null
echo "== done in $(( $(date +%s) - started ))s of ${BUDGET}s: $OUT/gpu-check.json"
cat "$OUT/summary.txt" 2>/dev/null || echo "(no summary: see $OUT/gpu-check.json)"
exit 0
