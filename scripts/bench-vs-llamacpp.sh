#!/usr/bin/env bash
# Side-by-side Vireo and llama.cpp on the same GGUF file, the two alternating in one
# run so the ratios hold however loaded the shared cores are. llama.cpp is not a
# dependency and never runs in CI: build llama-bench from its public source yourself,
# outside the repository (CPU only), then
#
#   bash scripts/bench-vs-llamacpp.sh /tmp/llama.cpp/build/bin [model.gguf] [rounds]
#
# Without a model it writes the synthetic TinyLlama-1.1B shape as a Q8_0 GGUF with
# Vireo itself (vireo quantize synthetic:tinyllama-1.1b: random weights, byte-level
# vocabulary) into a temporary folder. Both engines use THREADS threads (default 2). Each round runs, in
# turn (the engine that goes first alternates every round):
#
#   prefill N  a prompt of N tokens (N = 128, 512) in one pass: Vireo's CLI (one
#              prefill chunk) against llama-bench -p N -n 0;
#   decode     DECODE tokens (default 64) after a 5-token prompt: Vireo's CLI (its
#              decode passes) against llama-bench -p 0 -n DECODE;
#   rss        the peak resident set of that decode run (GNU time's %M), so the model's
#              mapping, the KV cache and the buffers of a real run are all counted.
#
# Prints one line per figure, Vireo / llama.cpp as the median of the per-round ratios
# (speed: tokens/s, higher is better; rss: memory, lower is better, printed as "rss"
# so it is not read as a speed), with both medians, then the load average before and
# after.
set -euo pipefail
bin=${1:?usage: bench-vs-llamacpp.sh <llama.cpp bin folder with llama-bench> [model.gguf] [rounds]}
gguf=${2:-}
rounds=${3:-5}
threads=${THREADS:-2}
decode=${DECODE:-64}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin/llama-bench" ] || { echo "no $bin/llama-bench: build llama.cpp's llama-bench first (see the header)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time for the peak RSS" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && go build -o "$tmp/vireo" ./cmd/vireo)
if [ -z "$gguf" ]; then
	gguf=$tmp/tinyllama-1.1b-q8_0.gguf
	"$tmp/vireo" quantize synthetic:tinyllama-1.1b "$gguf" --type q8_0 -quiet
fi

# A prompt of n tokens for the synthetic byte-level vocabulary: BOS and n-1 letters,
# one token each. (For another vocabulary pass PROMPT_CHAR with a one-token string.)
prompt() { head -c $(($1 - 1)) </dev/zero | tr '\0' "${PROMPT_CHAR:-a}"; }

# vireo_prefill N: tokens/s of an N-token prompt.
vireo_prefill() {
	"$tmp/vireo" -model "$gguf" -threads "$threads" -ctx-size $(($1 + 16)) -prompt "$(prompt "$1")" -max-tokens 1 -temperature 0 -quiet 2>&1 >/dev/null |
		sed -n 's/^prefill: \([0-9]*\) tokens in [^(]*(\([0-9.]*\) tokens\/s).*/\1 \2/p' |
		awk -v n="$1" '$1 != n {print "vireo encoded the prompt as " $1 " tokens, not " n > "/dev/stderr"; exit 1} {print $2}'
}
# vireo_decode: "tokens/s rssKiB" of a decode run.
vireo_decode() {
	/usr/bin/time -f 'rss %M' -o "$tmp/time" "$tmp/vireo" -model "$gguf" -threads "$threads" -ctx-size $((decode + 16)) \
		-max-tokens $((decode + 1)) -ignore-eos -temperature 0 -quiet 2>"$tmp/err" >/dev/null || { cat "$tmp/err" >&2; exit 1; }
	echo "$(sed -n 's/.*| decode: [0-9]* tokens in [^(]*(\([0-9.]*\) tokens\/s).*/\1/p' "$tmp/err") $(sed -n 's/^rss //p' "$tmp/time")"
}
# llama_bench ARGS: the tokens/s llama-bench reports (one repetition after its warm-up).
llama_bench() {
	"$bin/llama-bench" -m "$gguf" -t "$threads" -r 1 -o csv "$@" 2>"$tmp/lerr" >"$tmp/lout" || { cat "$tmp/lerr" >&2; exit 1; }
	python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(r[-1]["avg_ts"])' "$tmp/lout"
}
llama_decode() {
	/usr/bin/time -f 'rss %M' -o "$tmp/time" "$bin/llama-bench" -m "$gguf" -t "$threads" -r 1 -o csv -p 0 -n "$decode" 2>"$tmp/lerr" >"$tmp/lout" ||
		{ cat "$tmp/lerr" >&2; exit 1; }
	echo "$(python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(r[-1]["avg_ts"])' "$tmp/lout") $(sed -n 's/^rss //p' "$tmp/time")"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for f in v128 l128 v512 l512 vdec ldec vrss lrss; do : >"$tmp/$f"; done
for ((r = 0; r < rounds; r++)); do
	for side in $([ $((r % 2)) = 0 ] && echo "v l" || echo "l v"); do
		if [ "$side" = v ]; then
			vireo_prefill 128 >>"$tmp/v128"
			vireo_prefill 512 >>"$tmp/v512"
			read -r ts rss < <(vireo_decode)
			echo "$ts" >>"$tmp/vdec"
			echo "$rss" >>"$tmp/vrss"
		else
			llama_bench -p 128 -n 0 >>"$tmp/l128"
			llama_bench -p 512 -n 0 >>"$tmp/l512"
			read -r ts rss < <(llama_decode)
			echo "$ts" >>"$tmp/ldec"
			echo "$rss" >>"$tmp/lrss"
		fi
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { paste "$tmp/$1" "$tmp/$2" | awk '{print $1/$2}' | median; }
line() { # name vireo-file llama-file unit scale
	printf '%s: %.2fx (vireo %.1f %s, llama.cpp %.1f %s)\n' "$1" "$(ratio "$2" "$3")" \
		"$(awk -v s="$5" '{print $1*s}' "$tmp/$2" | median)" "$4" "$(awk -v s="$5" '{print $1*s}' "$tmp/$3" | median)" "$4"
}
echo "$(basename "$gguf"), $threads threads each, $rounds rounds alternating; $(nproc) cores, load average $load0 before, $load1 after"
line "prefill 128" v128 l128 tok/s 1
line "prefill 512" v512 l512 tok/s 1
line "decode" vdec ldec tok/s 1
line "rss" vrss lrss MiB 0.0009765625
