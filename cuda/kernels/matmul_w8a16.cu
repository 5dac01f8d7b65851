// matmul_w8a16.cu: int8 weights (one fp32 scale per output row) times 16-bit
// activations, fp32 accumulation: the decode regime. Few rows: a warp streams each
// weight row with 16-byte loads and dequantizes in registers (matmul_simt_kernel). Past
// kW8A16MmaRows rows the FMA count overtakes the bytes, so the weights are dequantized
// to the activation type in registers and multiplied on the tensor cores
// (matmul_mma_kernel, m16n8k16). Epilogues: none, residual add, SiLU(gate)*up.
#include "matmul_common.cuh"

using namespace vireo;

// Rows from which VIREO_MM_AUTO takes the tensor-core kernel.
constexpr int kW8A16MmaRows = 9;

extern "C" int vireo_matmul_w8a16(vireo_stream_t stream, int dtype, void* out, int ld_out, const void* x, int ld_x,
                                  const int8_t* w, const float* w_scale, int n, int n_out, int k, int epilogue,
                                  int variant) {
  if (n == 0) return VIREO_OK;
  if (int st = check_matmul_args("vireo_matmul_w8a16", out, ld_out, x, ld_x, w, n, n_out, k, epilogue, variant)) return st;
  VIREO_CHECK_ARG(w_scale, "vireo_matmul_w8a16: no scales");
  VIREO_DISPATCH_ACT("vireo_matmul_w8a16", dtype, T, {
    return matmul_dispatch<T, W8, true>("vireo_matmul_w8a16", as_stream(stream), out, ld_out, x, ld_x, w, w_scale, n,
                                        n_out, k, epilogue, variant, kW8A16MmaRows);
  });
  return VIREO_OK;
}
