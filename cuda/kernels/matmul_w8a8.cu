// matmul_w8a8.cu: int8 activations (quantized per token by vireo_rmsnorm_quant or
// vireo_quantize_rows) times int8 weights: the prefill regime. Tensor cores
// (mma.sync m16n8k32, int32 accumulation); the epilogue applies
// x_scale[row] * w_scale[col] and fuses the residual add or SiLU(gate)*up. A SIMT kernel
// (any k) is the reference path.
#include "matmul_common.cuh"

using namespace vireo;

namespace {

__device__ __forceinline__ float w8a8_value(int acc, float sa, float sw) { return (float)acc * sa * sw; }

// Same tiling as matmul_mma_kernel: 64×64 block tile, 4 warps of 32×32.
template <typename T>
__global__ void __launch_bounds__(128)
    w8a8_mma_kernel(T* __restrict__ out, int ld_out, const int8_t* __restrict__ xq, const float* __restrict__ x_scale,
                    const int8_t* __restrict__ w, const float* __restrict__ w_scale, int n, int n_out, int k, int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const bool glu = epi == VIREO_EPI_SILU_GLU;
  const int row0 = blockIdx.y * kMmaRows + (warp >> 1) * 32;
  const int col0 = mma_col0(glu, warp);
  size_t wrow[4];
  bool wok[4];
  mma_weight_rows(glu, col0, g, n_out, wrow, wok);
  int acc[2][4][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0;

  for (int k0 = 0; k0 < k; k0 += 32) {
    const int kk = k0 + 8 * t; // this lane's 8 k: a0/b0 bytes 0..3, a2/b1 bytes 4..7
    uint2 alo[2], ahi[2];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      int ra = row0 + mt * 16 + g, rb = ra + 8;
      alo[mt] = ra < n ? *reinterpret_cast<const uint2*>(xq + (size_t)ra * k + kk) : make_uint2(0, 0);
      ahi[mt] = rb < n ? *reinterpret_cast<const uint2*>(xq + (size_t)rb * k + kk) : make_uint2(0, 0);
    }
    uint2 b[4];
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
      b[nt] = wok[nt] ? *reinterpret_cast<const uint2*>(w + wrow[nt] * k + kk) : make_uint2(0, 0);
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      uint32_t a[4] = {alo[mt].x, ahi[mt].x, alo[mt].y, ahi[mt].y};
#pragma unroll
      for (int nt = 0; nt < 4; nt++) mma16832_s8(acc[mt][nt], a, b[nt].x, b[nt].y);
    }
  }

#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
#pragma unroll
    for (int nt = 0; nt < (glu ? 2 : 4); nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int row = row0 + mt * 16 + g + (e >= 2 ? 8 : 0);
        int col = col0 + nt * 8 + 2 * t + (e & 1);
        if (row >= n || col >= n_out) continue;
        float sa = x_scale[row];
        float v = w8a8_value(acc[mt][nt][e], sa, w_scale[col]);
        if (glu) {
          float u = w8a8_value(acc[mt][nt + 2][e], sa, w_scale[n_out + col]);
          epilogue_store(out, ld_out, row, col, silu(v) * u, VIREO_EPI_NONE);
        } else {
          epilogue_store(out, ld_out, row, col, v, epi);
        }
      }
    }
  }
}

// Reference: one warp per output column, kSimtRows rows, exact int32 dot products.
template <typename T>
__global__ void __launch_bounds__(kSimtWarps * 32)
    w8a8_simt_kernel(T* __restrict__ out, int ld_out, const int8_t* __restrict__ xq, const float* __restrict__ x_scale,
                     const int8_t* __restrict__ w, const float* __restrict__ w_scale, int n, int n_out, int k, int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int j = blockIdx.x * kSimtWarps + warp;
  if (j >= n_out) return;
  const int i0 = blockIdx.y * kSimtRows;
  const int nr = min(kSimtRows, n - i0);
  const bool glu = epi == VIREO_EPI_SILU_GLU;
  const int8_t* wg = w + (size_t)j * k;
  const int8_t* wu = w + (size_t)(n_out + j) * k;
  int acc[kSimtRows], accu[kSimtRows];
#pragma unroll
  for (int r = 0; r < kSimtRows; r++) acc[r] = accu[r] = 0;
  for (int kk = lane; kk < k; kk += 32) {
    int g = wg[kk], u = glu ? wu[kk] : 0;
#pragma unroll
    for (int r = 0; r < kSimtRows; r++) {
      if (r < nr) {
        int xv = xq[(size_t)(i0 + r) * k + kk];
        acc[r] += xv * g;
        accu[r] += xv * u;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kSimtRows; r++) {
    int v = acc[r], u = accu[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      v += __shfl_xor_sync(0xffffffffu, v, o);
      u += __shfl_xor_sync(0xffffffffu, u, o);
    }
    if (lane == r && r < nr) {
      float sa = x_scale[i0 + r];
      float fv = w8a8_value(v, sa, w_scale[j]);
      if (glu) {
        float fu = w8a8_value(u, sa, w_scale[n_out + j]);
        epilogue_store(out, ld_out, i0 + r, j, silu(fv) * fu, VIREO_EPI_NONE);
      } else {
        epilogue_store(out, ld_out, i0 + r, j, fv, epi);
      }
    }
  }
}

} // namespace

extern "C" int vireo_matmul_w8a8(vireo_stream_t stream, int dtype, void* out, int ld_out, const int8_t* xq,
                                 const float* x_scale, const int8_t* w, const float* w_scale, int n, int n_out, int k,
                                 int epilogue, int variant) {
  const char* op = "vireo_matmul_w8a8";
  if (n == 0) return VIREO_OK;
  if (int st = check_matmul_args(op, out, ld_out, xq, k, w, n, n_out, k, epilogue, variant)) return st;
  VIREO_CHECK_ARG(x_scale && w_scale, "%s: missing scales", op);
  bool mma_ok = k % 32 == 0 && aligned16(xq) && aligned16(w);
  bool use_mma = variant == VIREO_MM_MMA || (variant == VIREO_MM_AUTO && mma_ok);
  cudaStream_t s = as_stream(stream);
  if (use_mma) {
    VIREO_CHECK_ARG(mma_ok, "%s: the MMA kernel needs k %% 32 == 0 and 16-byte aligned operands (n=%d n_out=%d k=%d)",
                    op, n, n_out, k);
    int cols = epilogue == VIREO_EPI_SILU_GLU ? 32 : kMmaCols;
    dim3 grid(ceil_div(n_out, cols), ceil_div(n, kMmaRows));
    VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
    VIREO_DISPATCH_ACT(op, dtype, T, {
      w8a8_mma_kernel<T><<<grid, 128, 0, s>>>((T*)out, ld_out, xq, x_scale, w, w_scale, n, n_out, k, epilogue);
    });
    return launch_status(op, "mma n=%d n_out=%d k=%d epilogue=%d", n, n_out, k, epilogue);
  }
  dim3 grid(ceil_div(n_out, kSimtWarps), ceil_div(n, kSimtRows));
  VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
  VIREO_DISPATCH_ACT(op, dtype, T, {
    w8a8_simt_kernel<T><<<grid, kSimtWarps * 32, 0, s>>>((T*)out, ld_out, xq, x_scale, w, w_scale, n, n_out, k,
                                                         epilogue);
  });
  return launch_status(op, "simt n=%d n_out=%d k=%d epilogue=%d", n, n_out, k, epilogue);
}
