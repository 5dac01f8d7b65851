#!/usr/bin/env bash
# Prints the ptxas resource report of the kernel library (build/ptxas.log, written by
# `make cuda-lib`): one line per kernel instantiation for one architecture (default
# sm_90): registers, shared memory, stack frame and spill bytes, then a summary line.
# Exits 1 when any kernel of any architecture spills.
set -euo pipefail
log=${1:-build/ptxas.log}
arch=${2:-sm_90}
[ -f "$log" ] || { echo "ptxas-summary: no $log (run make cuda-lib)"; exit 1; }
demangle=cat
command -v c++filt >/dev/null && demangle="c++filt -p"
awk -v want="$arch" '
  /Compiling entry function/ { split($0, a, "\047"); fn = a[2]; ar = a[4]; next }
  /bytes stack frame/ { stack = $1; spst = $5; spld = $9; next }
  /Used [0-9]+ registers/ {
    regs = $5; smem = 0
    if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", smem) }
    if (spst + spld > 0) spills++
    n[ar]++
    if (ar == want) printf "%s\t%s\t%s\t%s\t%s\t%s\n", fn, regs, smem, stack, spst, spld
  }
  END { for (k in n) printf "#count\t%s\t%d\n", k, n[k] > "/dev/stderr"; printf "#spills\t%d\n", spills > "/dev/stderr" }
' "$log" 2>/tmp/ptxas-summary.$$ | while IFS=$'\t' read -r fn regs smem stack spst spld; do
  name=$(echo "$fn" | $demangle | sed -E 's/\(anonymous namespace\):://g; s/vireo:://g; s/__nv_bfloat16/bf16/g; s/__half/f16/g')
  printf '  %-4s regs %-3s smem %-6s stack %-3s spill %s/%s  %s\n' "$arch" "$regs" "$smem" "$stack" "$spst" "$spld" "$name"
done | sort -k9
counts=$(grep '^#count' /tmp/ptxas-summary.$$ | awk '{printf "%s %s, ", $2, $3}')
spills=$(grep '^#spills' /tmp/ptxas-summary.$$ | awk '{print $2}')
rm -f /tmp/ptxas-summary.$$
echo "ptxas: kernels compiled: ${counts%, }; kernels with spills (any arch): $spills"
[ "$spills" = 0 ]
