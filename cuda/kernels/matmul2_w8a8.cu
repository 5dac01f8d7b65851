// matmul2_w8a8.cu: kernels v2, W8A8 — int8 weights times int8 activations quantized per
// token (by the RMSNorm that precedes the matmul, or vireo_quantize_rows), int8 tensor
// cores (mma.sync m16n8k32, exact int32 accumulation), through the cp.async pipeline of
// matmul2.cuh: prefill. out = (acc · x_scale[row]) · w_scale[col], then the residual add
// or SiLU(gate)·up. Integer sums are exact, so any split or tile gives the same bits.
//
// Napkin math, H200 (132 SMs, 60 MB L2, ≈4.3 TB/s copy, SM clock ≈1.98 GHz), a
// 2,048-token prompt of Llama-3-8B (fused weights):
//   ops per layer: qkv 2·2048·6144·4096 = 103 G, o 68.7 G, gate/up 481 G, down 241 G:
//   893 G; 32 layers: 28.6 T int8 ops.
//   Bytes: weights 218 MB per layer (read once: blockIdx.x walks the 16 row tiles of
//   one 128-column weight tile, which stays in L2), activations 2048·4096 = 8 MB int8
//   (L2-resident), outputs 2048·n_out·2 B. Intensity ≈ 2·2048 ops per weight byte: far
//   into the compute regime (the H200 ridge is ≈ 460 int8 ops per byte at ≈ 2 POP/s).
// What binds: mma.sync issue. Hopper's dense int8 peak (≈ 1,979 TOP/s) is reached only
// through wgmma (sm_90a); mma.sync gets roughly half of it, ≈ 1,000 TOP/s, and a
// 128×128×64, 4-stage kernel about 60–75% of that: 600–750 TOP/s → 38–48 ms of matmuls
// for the prompt (gate/up: 0.64–0.80 ms per layer). Per k32 step a warp of config 6
// issues 6 ldmatrix.x4 for 16 mma; per stage the block moves 16 KB from L2 for 2.1 M
// ops (≈ 40 GB/s per SM at that rate: no bandwidth limit).
// Against the anchors: torch._int_mm (cuBLASLt int8, which uses wgmma on sm_90) is
// expected at ≈ 1,200–1,500 TOP/s on these shapes, so this kernel lands near 0.45–0.6 of
// it — under the issue's 0.7. The GPU run measures it; if it falls short there, the
// sm_90a wgmma path (CMake option, REBUILD=1) is the next step, as the issue rules.
// Against the bf16 cuBLAS anchor (≈ 790 TFLOP/s measured), W8A8 at ≥ 600 TOP/s keeps
// prefill matmuls within 1.3× of the anchor's.
// Few prompt rows (config 8: one 16-row fragment, 128 weight rows per block) are
// bandwidth-bound like decode: gate/up 117 MB ≈ 27 µs.
#include "matmul2.cuh"

namespace vireo {
namespace mm2 {

int launch_w8a8(int cfg, int dt, const Params& p, dim3 grid, cudaStream_t s) {
  switch (cfg) {
#define VIREO_MM2_CASE(I, WM, WN, MT, NT, BK, ST)                                  \
  case I:                                                                        \
    if (dt == VIREO_F16) return launch<kW8A8, __half, Shape<kW8A8, WM, WN, MT, NT, BK, ST>>(p, grid, s); \
    return launch<kW8A8, __nv_bfloat16, Shape<kW8A8, WM, WN, MT, NT, BK, ST>>(p, grid, s);
    VIREO_MM2_W8A8_CONFIGS(VIREO_MM2_CASE)
#undef VIREO_MM2_CASE
  }
  return set_error(VIREO_ERR_ARG, "vireo_matmul2: configuration %d is not a W8A8 one", cfg);
}

} // namespace mm2
} // namespace vireo
