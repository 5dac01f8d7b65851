#!/usr/bin/env bash
# Serving side by side: Vireo's server (cmd/serve) and llama.cpp's llama-server on the
# same GGUF file, measured by the same client (bench load: TTFT at the first streamed
# chunk with visible text, as vLLM's benchmark), at each concurrency in turn. Only one
# server runs at a time (an idle llama-server keeps polling threads that would tax the
# other), each is started fresh for its run (no prompt cache carried over), and the
# order alternates between concurrencies. llama.cpp never runs in CI: build
# llama-server from its public source yourself, outside the repository (CPU only), then
#
#   bash scripts/bench-serving-vs-llamaserver.sh /tmp/llama.cpp/build/bin OUT_DIR [model.gguf]
#
# Defaults: stories260K.gguf from the shared folder, concurrency 1,4,16 (CONC), 128-token
# random prompts and outputs (ignore_eos), 256 requests per run (PROMPTS) after 8
# warm-ups, 2 threads each (THREADS), f32 weights on both sides (WEIGHTS for Vireo),
# llama-server with one slot per concurrent request and continuous batching (LLAMA_ARGS
# adds flags, e.g. "--poll 0" so its threads sleep rather than spin between batches).
# Writes OUT_DIR/{vireo,llama-server}-c<N>.json (every request) and prints one line per
# run plus the load average before and after.
set -euo pipefail
bin=${1:?usage: bench-serving-vs-llamaserver.sh <llama.cpp bin folder> <out dir> [model.gguf]}
out=${2:?usage: bench-serving-vs-llamaserver.sh <llama.cpp bin folder> <out dir> [model.gguf]}
repo=$(cd "$(dirname "$0")/.." && pwd)
gguf=${3:-${VIREO_SHARED:-$repo/../shared}/models/stories260K/stories260K.gguf}
conc=${CONC:-1,4,16}
prompts=${PROMPTS:-256}
threads=${THREADS:-2}
weights=${WEIGHTS:-f32}
[ -x "$bin/llama-server" ] || { echo "no $bin/llama-server: build llama.cpp's llama-server first" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
(cd "$repo" && go build -o "$tmp/serve" ./cmd/serve && go build -o "$tmp/bench" ./cmd/bench)
port=$((20000 + RANDOM % 20000))

wait_ready() {
	for _ in $(seq 200); do
		curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "the server on port $port did not come up" >&2
	return 1
}
start() { # side concurrency
	if [ "$1" = vireo ]; then
		"$tmp/serve" --model "$gguf" --weights "$weights" --threads "$threads" --port "$port" --served-model-name m >"$tmp/server.log" 2>&1 &
	else
		# shellcheck disable=SC2086
		"$bin/llama-server" -m "$gguf" --port "$port" -t "$threads" -np "$2" -c $((512 * $2)) --no-webui -a m ${LLAMA_ARGS:-} >"$tmp/server.log" 2>&1 &
	fi
	pid=$!
	wait_ready
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "model $(basename "$gguf"), $threads threads each, $(nproc) cores, Vireo --weights $weights, llama-server ${LLAMA_ARGS:-(defaults)}; load average $(cut -d' ' -f1-3 /proc/loadavg) before"
i=0
for c in ${conc//,/ }; do
	order="vireo llama-server"
	[ $((i % 2)) = 1 ] && order="llama-server vireo"
	for side in $order; do
		start "$side" "$c"
		"$tmp/bench" load --url "http://127.0.0.1:$port" --model m --concurrency "$c" --num-prompts "$prompts" \
			--input-len 128 --output-len 128 --warmup 8 --seed 1 --out "$out/$side-c$c.json" 2>/dev/null | sed "s/^/$side /"
		stop
	done
	i=$((i + 1))
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after"
