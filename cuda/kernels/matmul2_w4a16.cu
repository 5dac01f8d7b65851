// matmul2_w4a16.cu: kernels v2, W4A16 — 4-bit weights with per-group scales (Vireo's
// W4A16 format, runtime/quant/w4: converted at load from GGUF Q4_0 and Q4_K without
// changing a dequantized value) times f16/bf16 activations on the tensor cores, through
// the cp.async pipeline of matmul2.cuh. The levels are dequantized in registers to exact
// small integers (one AND/OR and one hsub2 per pair: the format's nibble interleave), the
// mma sums each 32-k group into fresh fp32 accumulators, and the group's scale (and, for
// Q4_K, its offset times the group's activation sum, one more mma per m16 fragment
// against ones) is applied in fp32. Decode (1–16 rows, one m16 fragment) and batched
// decode (32- and 64-row tiles; more rows run 64-row tiles), split-K from the weight's
// shape alone (batch invariance), the residual add, SiLU(gate)·up and split outputs.
//
// Napkin math, H200 (132 SMs, 60 MB L2, ≈4.3 TB/s measured copy bandwidth, SM clock
// ≈1.98 GHz), Llama-3-8B, batch 1, Q4_0-derived (4.5 bits per weight; Q4_K-derived
// 4.625):
//   weight            params   bytes (4.5 b)   time at 4.3 TB/s
//   qkv [6144][4096]   25.2 M    14.2 MB         3.3 µs
//   o   [4096][4096]   16.8 M     9.4 MB         2.2 µs
//   gate/up [28672][4096] 117.4 M 66.1 MB       15.4 µs
//   down [4096][14336]  58.7 M    33.0 MB         7.7 µs
//   classifier [128256][4096] 525 M 295 MB       68.7 µs
//   per token: 32 × 122.6 MB + 295 MB = 4.22 GB (4.34 GB at 4.625 bits) → 0.98–1.01 ms:
//   ≈ 990–1,020 tok/s for the matmuls at the copy bandwidth; the issue's round figure,
//   4.5 GB per token, gives ≈ 950 tok/s.
// Scales: 2 bytes per 32 weights (Q4_0) or 2.125 (Q4_K): inside the bytes above. They
// are read with __ldg per group and output column by each lane (8 lanes share one: L1
// broadcasts), not through the cp.async pipeline: ≈ 1 load instruction per 64 weights.
// FLOPs at batch 1: 15 GFLOP per token, nothing for the tensor cores. Per 32 weights
// (one group of one row, 16 bytes) a lane pair does: 8 dequant pairs (2 instructions
// each: lop3, hsub2), 2 mma per 8 columns, 2·4 fp32 fmas of the group scale per fragment
// (Affine: 4 more, and 2 mma against ones per m16 fragment). Per SM at 4.3 TB/s that is
// 16.4 weight bytes per cycle = one 16-byte group per cycle: ≈ 0.5 warp-instructions of
// dequant and ≈ 0.25 of scaling per cycle against 4 issue slots: issue is not the
// limit at 1–16 rows; DRAM is, expected within 15% (the extra scale loads).
// Batched: 32 rows (config 12) doubles the mmas and the scaling per weight byte, 64 rows
// (config 13: two warp rows, each dequantizing its own B) quadruples them: at 64 rows
// the 64 mma + 128 fma + 32 dequant per 128 weights per warp reach ≈ 60% of issue, so a
// 64-row step should cost ≈ 1.3–1.6× batch 1; past 64 rows the 64-row tiles repeat the
// weight reads from L2 and compute binds (≈ 2.5× at 128 rows).
// Bytes in flight: 3 of 4 stages of a 128-row × 128-k B tile (80 B rows: 10 KB) plus the
// A tile per block, two blocks per SM: ≈ 60 KB per SM against the ≈ 26 KB that 4.3 TB/s
// × 800 ns / 132 SMs needs.
#include "matmul2.cuh"

namespace vireo {
namespace mm2 {

template <int KIND, typename T> int launch_w4_cfg(int cfg, const Params& p, dim3 grid, cudaStream_t s) {
  switch (cfg) {
#define VIREO_MM2_CASE(I, WM, WN, MT, NT, BK, ST) \
  case I:                                       \
    return launch<KIND, T, Shape<KIND, WM, WN, MT, NT, BK, ST>>(p, grid, s);
    VIREO_MM2_W4A16_CONFIGS(VIREO_MM2_CASE)
#undef VIREO_MM2_CASE
  }
  return set_error(VIREO_ERR_ARG, "vireo_matmul2: configuration %d is not a W4A16 one", cfg);
}

int launch_w4a16(int cfg, int dt, bool affine, const Params& p, dim3 grid, cudaStream_t s) {
  if (dt == VIREO_F16)
    return affine ? launch_w4_cfg<kW4Affine, __half>(cfg, p, grid, s) : launch_w4_cfg<kW4Sym, __half>(cfg, p, grid, s);
  return affine ? launch_w4_cfg<kW4Affine, __nv_bfloat16>(cfg, p, grid, s)
                : launch_w4_cfg<kW4Sym, __nv_bfloat16>(cfg, p, grid, s);
}

} // namespace mm2
} // namespace vireo
