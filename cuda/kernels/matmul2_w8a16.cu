// matmul2_w8a16.cu: kernels v2, W8A16 — int8 weights (one fp32 scale per row) times
// f16/bf16 activations on the tensor cores (mma.sync m16n8k16, weights dequantized in
// registers, fp32 accumulation), through the cp.async pipeline of matmul2.cuh. Decode
// (1–16 rows: one m16 fragment, the rows past n are zeros) and batched decode (17–256
// rows: 32-, 64- and 128-row tiles), with split-K for narrow weights and the fused
// epilogues (residual add; SiLU(gate)·up over one [gate; up] weight).
//
// Napkin math, H200 (132 SMs, 60 MB L2, ≈4.3 TB/s measured copy bandwidth, SM clock
// ≈1.98 GHz), Llama-3-8B with fused weights, batch 1:
//   weight        bytes      time at 4.3 TB/s
//   qkv [6144][4096]   25.2 MB    5.9 µs
//   o   [4096][4096]   16.8 MB    3.9 µs
//   gate/up [28672][4096] 117.4 MB  27.3 µs   (the issue's 4096×14336 half: 58.7 MB, 13.7 µs)
//   down [4096][14336] 58.7 MB   13.7 µs
//   classifier [128256][4096] 525 MB  122 µs
//   per token: 32 × 218 MB + 525 MB = 7.5 GB → 1.74 ms, 573 tok/s (matmuls only).
// Activations: n·k·2 bytes (8 KB per row at k = 4096), read from L2 by every block.
// FLOPs at batch 1: 2 per weight byte, 15 GFLOP per token — nothing for the tensor cores.
// What binds: DRAM bandwidth. Per SM that is 16.4 weight bytes per cycle; the dequant
// costs 5 instructions per 4 weights in f16 (lop3, 2 prmt, 2 hsub2: 0.64 of 4 warp-issue
// slots per cycle, 16%) and about 11 in bf16 (through fp32: 35%), one mma per 128
// weights, one ldmatrix.x4 per 512. Bytes in flight: 3 of 4 stages of a 128-row ×
// 128-k B tile (18 KB each) per block, one or two blocks per SM: ≥ 55 KB per SM against
// the ≈ 26 KB that 4.3 TB/s × ≈ 800 ns latency / 132 SMs needs.
// Grid: a block per 128 weight rows and k slice. gate/up has 224 column tiles
// (= 1.7 per SM); qkv 48, o and down 32, so split-K cuts k into 4–8 slices to give every
// SM work (workspace: fp32 partials, 16×128×4 B per tile and slice, L2-resident).
// Expected: within 10% of the DRAM time above, 1–16 rows alike (one m16 fragment carries
// 16 rows at the instruction cost of one).
// Batched: 32 rows (config 3) doubles the mmas per weight, 64 rows (config 4: two warp
// rows, each dequantizing its own B) quadruples them: 2·64·117.4M = 15 GFLOP for
// gate/up, ≈ 25–30 µs at 500–600 TFLOP/s of mma.sync, about the DRAM time — so a step
// at 64 rows should cost ≈ 1.2–1.4× batch 1. 128 rows (config 5): ≈ 2–2.5×; 256 rows
// two 128-row tiles: ≈ 4–5×. Compute (mma issue) binds from about 64 rows.
#include "matmul2.cuh"

namespace vireo {
namespace mm2 {

int launch_w8a16(int cfg, int dt, const Params& p, dim3 grid, cudaStream_t s) {
  switch (cfg) {
#define VIREO_MM2_CASE(I, WM, WN, MT, NT, BK, ST)                                  \
  case I:                                                                        \
    if (dt == VIREO_F16) return launch<kW8A16, __half, Shape<kW8A16, WM, WN, MT, NT, BK, ST>>(p, grid, s); \
    return launch<kW8A16, __nv_bfloat16, Shape<kW8A16, WM, WN, MT, NT, BK, ST>>(p, grid, s);
    VIREO_MM2_W8A16_CONFIGS(VIREO_MM2_CASE)
#undef VIREO_MM2_CASE
  }
  return set_error(VIREO_ERR_ARG, "vireo_matmul2: configuration %d is not a W8A16 one", cfg);
}

} // namespace mm2
} // namespace vireo
