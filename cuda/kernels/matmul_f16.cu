// matmul_f16.cu: 16-bit weights (fp16 or bf16, the activation type): the unquantized
// baseline every int8 number is compared against. Same two kernels as W8A16 without the
// dequantization: SIMT for few rows, mma.sync m16n8k16 for many.
#include "matmul_common.cuh"

using namespace vireo;

constexpr int kF16MmaRows = 9;

extern "C" int vireo_matmul_f16(vireo_stream_t stream, int dtype, void* out, int ld_out, const void* x, int ld_x,
                                const void* w, int n, int n_out, int k, int epilogue, int variant) {
  if (n == 0) return VIREO_OK;
  if (int st = check_matmul_args("vireo_matmul_f16", out, ld_out, x, ld_x, w, n, n_out, k, epilogue, variant)) return st;
  VIREO_DISPATCH_ACT("vireo_matmul_f16", dtype, T, {
    return matmul_dispatch<T, W16<T>, false>("vireo_matmul_f16", as_stream(stream), out, ld_out, x, ld_x, w, nullptr,
                                             n, n_out, k, epilogue, variant, kF16MmaRows);
  });
  return VIREO_OK;
}
