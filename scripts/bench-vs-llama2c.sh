#!/usr/bin/env bash
# Side-by-side decode speed of Vireo and llama2.c's run.c on stories260K (f32 weights,
# greedy, the same number of generated tokens), the two alternating in one run, so the
# ratios hold however loaded the shared cores are. llama2.c is not a dependency and never
# runs in CI: build it yourself from its public source, outside the repository:
#
#   gcc -Ofast -march=native -o /tmp/llama2.c/run /tmp/llama2.c/run.c -lm   # single-threaded
#   bash scripts/bench-vs-llama2c.sh /tmp/llama2.c [rounds] [steps]
#
# Each round runs run.c, then `vireo -threads 1`, then `vireo -threads 2` (the order
# rotates every round). Both sides time decode only: run.c its passes from the second
# token on (after BOS), Vireo its decode passes after the prompt ("Once upon a time",
# 5 tokens).
# Prints the median tokens/s of each, the median of the per-round ratios, and the load
# average before and after.
set -euo pipefail
dir=${1:?usage: bench-vs-llama2c.sh <llama2.c dir with run built> [rounds] [steps]}
rounds=${2:-21}
steps=${3:-256}
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${VIREO_SHARED:-$repo/../shared}
model=$shared/models/stories260K/stories260K.bin
tok=$shared/models/stories260K/tok512.bin
[ -x "$dir/run" ] || { echo "no $dir/run: build llama2.c's run.c first (see the header)" >&2; exit 1; }
[ -f "$model" ] || { echo "no $model (set VIREO_SHARED)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && go build -o "$tmp/vireo" ./cmd/vireo)

# run.c generates steps-1 tokens after BOS; Vireo -max-tokens steps-1 after BOS.
llama2c() { (cd "$dir" && ./run "$model" -z "$tok" -t 0 -n "$steps" 2>&1 >/dev/null | sed -n 's/^achieved tok\/s: //p'); }
vireo() {
	"$tmp/vireo" -model "$model" -weights f32 -threads "$1" -temperature 0 \
		-max-tokens $((steps - 1)) -ignore-eos -quiet 2>&1 >/dev/null |
		sed -n 's/.*| decode: [0-9]* tokens in [^(]*(\([0-9.]*\) tokens\/s).*/\1/p'
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/l" >"$tmp/v1" >"$tmp/v2"
for ((r = 0; r < rounds; r++)); do
	for k in 0 1 2; do
		case $(((r + k) % 3)) in
		0) llama2c >>"$tmp/l" ;;
		1) vireo 1 >>"$tmp/v1" ;;
		2) vireo 2 >>"$tmp/v2" ;;
		esac
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { paste "$1" "$tmp/l" | awk '{print $1/$2}' | median; }
printf 'stories260K decode, %d tokens, %d rounds alternating (load average %s before, %s after; %s)\n' \
	$((steps - 1)) "$rounds" "$load0" "$load1" "$(nproc) cores"
printf 'llama2.c run.c (1 thread): %.0f tokens/s\n' "$(median <"$tmp/l")"
printf 'vireo -threads 1: %.2fx (vireo %.0f tokens/s, llama2.c %.0f)\n' "$(ratio "$tmp/v1")" "$(median <"$tmp/v1")" "$(median <"$tmp/l")"
printf 'vireo -threads 2: %.2fx (vireo %.0f tokens/s, llama2.c %.0f)\n' "$(ratio "$tmp/v2")" "$(median <"$tmp/v2")" "$(median <"$tmp/l")"
