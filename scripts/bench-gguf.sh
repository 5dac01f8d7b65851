#!/usr/bin/env bash
# CPU speed of each GGUF type on the TinyLlama-1.1B shape: decode tokens/s at batch 1,
# prefill tokens/s, and the fraction of the machine's read bandwidth decode reaches, the
# types and a read-bandwidth probe taking turns in one run (the order rotates every
# round), so ratios hold however loaded the shared cores are. Nothing here runs in CI.
#
# Make the files once (Q4_K_M takes a few minutes: ggml's K-quant scale search):
#
#   for t in q8_0 q4_k_m q6_k q5_k_m q4_0 q4_1 q5_0 q5_1 q3_k_m q2_k; do
#     go run ./cmd/vireo quantize synthetic:tinyllama-1.1b /tmp/tl/tl-$t.gguf --type $t
#   done
#   bash scripts/bench-gguf.sh /tmp/tl [rounds] [decode-tokens] [prompt-tokens] [types]
#
# Each run is `vireo run FILE PROMPT -max-tokens N -ignore-eos` with the default weights
# (auto: the file's own types; what each became is printed), 2 threads. Decode tokens/s
# is the CLI's decode figure (the generated tokens after the first); prefill the
# prompt's. The read bandwidth is the kern package's BenchmarkReadBandwidth (every core
# streaming 1 GiB with vector loads). Prints per type the medians over rounds, the
# bytes of weights read per token, decode × bytes / bandwidth, the median of the
# per-round ratios of each type's decode speed to q8_0's, and the load average before
# and after.
set -euo pipefail
dir=${1:?usage: bench-gguf.sh <dir with tl-<type>.gguf> [rounds] [decode-tokens] [prompt-tokens] [types]}
rounds=${2:-7}
steps=${3:-64}
plen=${4:-128}
types=${5:-q8_0 q4_k_m q6_k q5_k_m q4_0 q4_1 q5_0 q5_1 q3_k_m q2_k}
repo=$(cd "$(dirname "$0")/.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && go build -o "$tmp/vireo" ./cmd/vireo && go test -c -o "$tmp/kern.test" ./runtime/backend/cpu/kern)

# A prompt of plen tokens: the synthetic vocabulary is byte-level (BOS + one per byte).
prompt=$(head -c $((plen - 1)) /dev/zero | tr '\0' 'a')
read -ra typs <<<"$types"
for t in "${typs[@]}"; do
	[ -f "$dir/tl-$t.gguf" ] || { echo "no $dir/tl-$t.gguf (see the header)" >&2; exit 1; }
	# What the weights became and how many bytes a token reads.
	"$tmp/vireo" run "$dir/tl-$t.gguf" "a" -max-tokens 1 2>"$tmp/info-$t" >/dev/null
	sed -n 's/.*"weight_types": "\([^"]*\)".*"weight_MiB": \([0-9.]*\).*/\1|\2/p' "$tmp/info-$t" >"$tmp/w-$t"
	: >"$tmp/d-$t" >"$tmp/p-$t"
done
: >"$tmp/bw"

one() {
	"$tmp/vireo" run "$dir/tl-$1.gguf" "$prompt" -max-tokens "$steps" -ignore-eos -temperature 0 -quiet 2>&1 >/dev/null |
		sed -n 's/.*prefill: [0-9]* tokens in [^(]*(\([0-9.]*\) tokens\/s) | decode: [0-9]* tokens in [^(]*(\([0-9.]*\) tokens\/s).*/\1 \2/p' >"$tmp/one"
	read -r p d <"$tmp/one" || { echo "no speed line from vireo run tl-$1.gguf" >&2; exit 1; }
	echo "$p" >>"$tmp/p-$1"
	echo "$d" >>"$tmp/d-$1"
}
bw() {
	"$tmp/kern.test" -test.run XXX -test.bench ReadBandwidth -test.benchtime 3x |
		sed -n 's/.* \([0-9.]*\) GB\/s.*/\1/p' >>"$tmp/bw"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
n=${#typs[@]}
for ((r = 0; r < rounds; r++)); do
	for ((k = 0; k <= n; k++)); do
		i=$(((r + k) % (n + 1)))
		if ((i == n)); then bw; else one "${typs[i]}"; fi
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
bwm=$(median <"$tmp/bw")
printf 'TinyLlama-1.1B shape, %d rounds alternating: prompt %d tokens, %d generated (load average %s before, %s after; %s cores, GOMAXPROCS default)\n' \
	"$rounds" "$plen" "$steps" "$load0" "$load1" "$(nproc)"
printf 'read bandwidth (kern BenchmarkReadBandwidth, median): %.1f GB/s\n' "$bwm"
printf '%-8s %-28s %9s %12s %12s %10s %12s\n' type weights "MiB/token" "decode tok/s" "prefill tok/s" "of read bw" "vs q8_0"
for t in "${typs[@]}"; do
	IFS='|' read -r wt mib <"$tmp/w-$t"
	d=$(median <"$tmp/d-$t")
	p=$(median <"$tmp/p-$t")
	frac=$(awk -v d="$d" -v m="$mib" -v b="$bwm" 'BEGIN {printf "%.0f%%", 100 * d * m * 1048576 / (b * 1e9)}')
	rel=-
	if [ -f "$tmp/d-q8_0" ] && [ "$t" != q8_0 ]; then
		rel=$(paste "$tmp/d-$t" "$tmp/d-q8_0" | awk '{print $1/$2}' | median)
		rel=$(printf '%.2fx' "$rel")
	fi
	printf '%-8s %-28s %9.1f %12.2f %12.2f %10s %12s\n' "$t" "$wt" "$mib" "$d" "$p" "$frac" "$rel"
done
