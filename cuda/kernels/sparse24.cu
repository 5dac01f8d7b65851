// sparse24.cu: matrix products with 2:4 semi-structured sparse weights.
//
// Napkin math (H200: ~4.8 TB/s HBM3e; f16/bf16 tensor cores ~990 dense TFLOP/s, twice
// that with mma.sp; int8 ~1979 dense TOP/s, twice that sparse), for the Llama-3-8B FFN
// down projection W [4096][14336]:
//   decode, 1 token: the weights are the traffic. Dense f16: 117.4 MB → 24.5 µs. 2:4
//     f16: 58.7 MB of kept values + 7.3 MB of metadata (1/16 byte per weight) = 66.1 MB
//     → 13.8 µs (1.78x). int8: dense 58.7 MB → 12.2 µs; 2:4 29.4 + 7.3 = 36.7 MB →
//     7.6 µs (1.6x: the metadata is a fifth of it). 117 MFLOP: under 2 µs of SIMT fp32
//     even at 60 TFLOP/s, so bandwidth binds and the GEMV below aims at it.
//   prefill, 2,048 tokens: 240 GFLOP dense → 243 µs at 990 TFLOP/s; mma.sp halves the
//     tensor-core time to ~122 µs (f16) and ~61 µs (int8, ×2 again); the weights (66 MB)
//     are re-read once per 32-token column of tiles from L2 (50 MB on an H200, so mostly
//     from HBM: 64 column tiles × 66 MB would be 4.2 GB, ~0.9 ms — this first version
//     loads fragments straight from global memory without shared-memory staging or
//     cp.async pipelining, so expect it to be bandwidth-bound far from the tensor-core
//     limit; GPU run C sweeps and tunes it).
//
// Layout (runtime/backend/kinds.go): row j of W [n_out][k] keeps two values of every
// group of 4 inputs, v [n_out][k/2], and a 4-bit code per group (bits 0-1 the first
// kept column within the group, bits 2-3 the second, first < second), group g in the
// low nibble of byte g/2 when g is even, the high one when odd; a row's metadata is
// (k/4+1)/2 bytes. The 16-bit little-endian word at byte 2c of a row holds the codes of
// the 16 inputs 16c..16c+15: exactly the per-row metadata mma.sp reads (2-bit indices,
// low bits first), so no host-side reordering is needed.
//
// Fragments (PTX ISA, "Matrix fragments for mma.sp"; g = lane/4, t = lane%4). W is the
// sparse A operand (rows = output features), x the dense B operand ("col": x [n][k] row
// by row), D is out transposed:
//   f16/bf16 m16n8k32 (k step 32, 16 kept values per row): a0 = (row g, kept 2t..2t+1),
//     a1 = (row g+8, same), a2 = (row g, kept 2t+8..), a3 = (row g+8, kept 2t+8..);
//     b_i = (token g, k 2t+8i..2t+8i+1); metadata from lanes t = 0, 1 (selector 0):
//     low 16 bits row g, high 16 bits row g+8, inputs 16t..16t+15 of the step.
//   s8 m16n8k64 (k step 64, 32 kept values per row): a0 = (row g, kept 4t..4t+3),
//     a1 = (row g+8), a2 = (row g, kept 4t+16..), a3 = (row g+8, kept 4t+16..);
//     b_i = (token g, k 4t+16i..4t+16i+3); metadata from every lane: low 16 bits row g,
//     high 16 bits row g+8, inputs 16t..16t+15 of the step.
//   d0, d1 = (row g, tokens 2t, 2t+1), d2, d3 = (row g+8, same).
// These kernels have not run on a GPU: the CUDA backend keeps them off (it expands 2:4
// weights to dense at load) unless Options.Sparse24 is set, until GPU run C checks them
// against the dense kernels on the masked weights (backendtest's "2:4" matmul cases).
#include "matmul_common.cuh"

using namespace vireo;

namespace {

constexpr int kSpWarps = 4;   // SIMT: output rows per block, one per warp
constexpr int kSpRows = 8;    // SIMT: x rows per block
constexpr int kSpTileM = 64;  // MMA: output features per block (4 warps × 16)
constexpr int kSpTileN = 32;  // MMA: tokens per block (4 fragments of 8)

__device__ __forceinline__ uint32_t meta_word16(const uint8_t* m) { return (uint32_t)m[0] | (uint32_t)m[1] << 8; }

// Kept values as fp32: T (16-bit) or int8 (the row scale applied later).
template <typename V> __device__ __forceinline__ float val_f32(const V* v, int i) { return to_f32(v[i]); }

// ---- SIMT: decode and any shape -----------------------------------------------------
//
// One warp per output row j, kSpRows x rows per block. VEC (k % 32 == 0, aligned rows):
// each lane takes steps of 32 inputs (8 groups): one 32-bit metadata word and 16 kept
// values (a 16-byte load of int8, two of 16-bit), and per x row 8 loads of 4 activations
// (one group each), picking the two the codes name. Otherwise a lane takes single groups.
template <typename T, typename V, bool VEC>
__global__ void __launch_bounds__(kSpWarps * 32)
    sp24_simt_kernel(T* __restrict__ out, int ld_out, const T* __restrict__ x, int ld_x, const V* __restrict__ w,
                     const float* __restrict__ w_scale, const uint8_t* __restrict__ meta, int n, int n_out, int k,
                     int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int j = blockIdx.x * kSpWarps + warp;
  if (j >= n_out) return;
  const int i0 = blockIdx.y * kSpRows;
  const int nr = min(kSpRows, n - i0);
  const int ms = (k / 4 + 1) / 2;
  const V* wr = w + (size_t)j * (k / 2);
  const uint8_t* mr = meta + (size_t)j * ms;
  float acc[kSpRows];
#pragma unroll
  for (int r = 0; r < kSpRows; r++) acc[r] = 0.f;
  if (VEC) {
    for (int s = lane; s < k / 32; s += 32) {
      uint32_t m = *reinterpret_cast<const uint32_t*>(mr + 4 * s);
      float vf[16];
#pragma unroll
      for (int l = 0; l < 16; l++) vf[l] = val_f32(wr + 16 * s, l);
#pragma unroll
      for (int r = 0; r < kSpRows; r++) {
        if (r >= nr) break;
        const T* xr = x + (size_t)(i0 + r) * ld_x + 32 * s;
        float a = acc[r];
#pragma unroll
        for (int gi = 0; gi < 8; gi++) {
          uint32_t c = m >> (4 * gi);
          a += vf[2 * gi] * to_f32(xr[4 * gi + (c & 3)]);
          a += vf[2 * gi + 1] * to_f32(xr[4 * gi + ((c >> 2) & 3)]);
        }
        acc[r] = a;
      }
    }
  } else {
    for (int gi = lane; gi < k / 4; gi += 32) {
      uint32_t c = mr[gi / 2] >> (4 * (gi & 1));
      float v0 = val_f32(wr, 2 * gi), v1 = val_f32(wr, 2 * gi + 1);
#pragma unroll
      for (int r = 0; r < kSpRows; r++) {
        if (r >= nr) break;
        const T* xr = x + (size_t)(i0 + r) * ld_x + 4 * gi;
        acc[r] += v0 * to_f32(xr[c & 3]) + v1 * to_f32(xr[(c >> 2) & 3]);
      }
    }
  }
  const float sc = w_scale ? w_scale[j] : 1.f;
#pragma unroll
  for (int r = 0; r < kSpRows; r++) {
    float v = warp_sum(acc[r]);
    if (lane == r && r < nr) epilogue_store(out, ld_out, i0 + r, j, v * sc, epi);
  }
}

// ---- tensor cores: mma.sp -----------------------------------------------------------

template <typename T>
__device__ __forceinline__ void mma_sp16832(float d[4], const uint32_t a[4], const uint32_t b[4], uint32_t e);
template <>
__device__ __forceinline__ void mma_sp16832<__half>(float d[4], const uint32_t a[4], const uint32_t b[4], uint32_t e) {
  asm volatile("mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
}
template <>
__device__ __forceinline__ void mma_sp16832<__nv_bfloat16>(float d[4], const uint32_t a[4], const uint32_t b[4],
                                                           uint32_t e) {
  asm volatile("mma.sp.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
}

__device__ __forceinline__ void mma_sp16864_s8(int d[4], const uint32_t a[4], const uint32_t b[4], uint32_t e) {
  asm volatile("mma.sp.sync.aligned.m16n8k64.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
}

// The metadata word of a lane for rows ra, rb (valid flags) at the step's inputs
// 16t..16t+15, byte offset mo in each row: rows past n_out get code 0x4 (columns 0, 1)
// in every group, which mma.sp accepts (their values are zero).
__device__ __forceinline__ uint32_t meta_pair(const uint8_t* meta, int ms, int ra, bool oka, int rb, bool okb, int mo) {
  uint32_t lo = oka ? meta_word16(meta + (size_t)ra * ms + mo) : 0x4444u;
  uint32_t hi = okb ? meta_word16(meta + (size_t)rb * ms + mo) : 0x4444u;
  return lo | hi << 16;
}

// f16/bf16 kept values and activations. Block: 4 warps; warp w computes output features
// m0 + 16w .. +15 for tokens n0 .. n0+31. k % 32 == 0, rows 4-byte aligned.
template <typename T>
__global__ void __launch_bounds__(128)
    sp24_mma16_kernel(T* __restrict__ out, int ld_out, const T* __restrict__ x, int ld_x, const T* __restrict__ w,
                      const uint8_t* __restrict__ meta, int n, int n_out, int k, int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = blockIdx.x * kSpTileM + warp * 16, n0 = blockIdx.y * kSpTileN;
  const int ra = m0 + g, rb = ra + 8;
  const bool oka = ra < n_out, okb = rb < n_out;
  const int ms = (k / 4 + 1) / 2, half = k / 2;
  float acc[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[nt][e] = 0.f;
  for (int k0 = 0; k0 < k; k0 += 32) {
    const int kv = k0 / 2 + 2 * t; // kept-value column of a0
    uint32_t a[4];
    a[0] = oka ? *reinterpret_cast<const uint32_t*>(w + (size_t)ra * half + kv) : 0u;
    a[1] = okb ? *reinterpret_cast<const uint32_t*>(w + (size_t)rb * half + kv) : 0u;
    a[2] = oka ? *reinterpret_cast<const uint32_t*>(w + (size_t)ra * half + kv + 8) : 0u;
    a[3] = okb ? *reinterpret_cast<const uint32_t*>(w + (size_t)rb * half + kv + 8) : 0u;
    uint32_t e = t < 2 ? meta_pair(meta, ms, ra, oka, rb, okb, k0 / 8 + 2 * t) : 0u;
#pragma unroll
    for (int nt = 0; nt < 4; nt++) {
      const int tok = n0 + nt * 8 + g;
      uint32_t b[4];
#pragma unroll
      for (int i = 0; i < 4; i++)
        b[i] = tok < n ? *reinterpret_cast<const uint32_t*>(x + (size_t)tok * ld_x + k0 + 2 * t + 8 * i) : 0u;
      mma_sp16832<T>(acc[nt], a, b, e);
    }
  }
#pragma unroll
  for (int nt = 0; nt < 4; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int row = e < 2 ? ra : rb; // output feature
      const int tok = n0 + nt * 8 + 2 * t + (e & 1);
      if (row < n_out && tok < n) epilogue_store(out, ld_out, tok, row, acc[nt][e], epi);
    }
}

// int8 kept values times int8 activations quantized per token (W8A8): k % 64 == 0.
template <typename T>
__global__ void __launch_bounds__(128)
    sp24_mma8_kernel(T* __restrict__ out, int ld_out, const int8_t* __restrict__ xq, const float* __restrict__ x_scale,
                     const int8_t* __restrict__ w, const float* __restrict__ w_scale, const uint8_t* __restrict__ meta,
                     int n, int n_out, int k, int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = blockIdx.x * kSpTileM + warp * 16, n0 = blockIdx.y * kSpTileN;
  const int ra = m0 + g, rb = ra + 8;
  const bool oka = ra < n_out, okb = rb < n_out;
  const int ms = (k / 4 + 1) / 2, half = k / 2;
  int acc[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[nt][e] = 0;
  for (int k0 = 0; k0 < k; k0 += 64) {
    const int kv = k0 / 2 + 4 * t;
    uint32_t a[4];
    a[0] = oka ? *reinterpret_cast<const uint32_t*>(w + (size_t)ra * half + kv) : 0u;
    a[1] = okb ? *reinterpret_cast<const uint32_t*>(w + (size_t)rb * half + kv) : 0u;
    a[2] = oka ? *reinterpret_cast<const uint32_t*>(w + (size_t)ra * half + kv + 16) : 0u;
    a[3] = okb ? *reinterpret_cast<const uint32_t*>(w + (size_t)rb * half + kv + 16) : 0u;
    uint32_t e = meta_pair(meta, ms, ra, oka, rb, okb, k0 / 8 + 2 * t);
#pragma unroll
    for (int nt = 0; nt < 4; nt++) {
      const int tok = n0 + nt * 8 + g;
      uint32_t b[4];
#pragma unroll
      for (int i = 0; i < 4; i++)
        b[i] = tok < n ? *reinterpret_cast<const uint32_t*>(xq + (size_t)tok * k + k0 + 4 * t + 16 * i) : 0u;
      mma_sp16864_s8(acc[nt], a, b, e);
    }
  }
#pragma unroll
  for (int nt = 0; nt < 4; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int row = e < 2 ? ra : rb;
      const int tok = n0 + nt * 8 + 2 * t + (e & 1);
      if (row < n_out && tok < n)
        epilogue_store(out, ld_out, tok, row, (float)acc[nt][e] * x_scale[tok] * w_scale[row], epi);
    }
}

bool aligned4(const void* p) { return ((uintptr_t)p & 3) == 0; }

} // namespace

extern "C" int vireo_matmul_sp24(vireo_stream_t stream, int dtype, void* out, int ld_out, const void* x, int ld_x,
                                 const float* x_scale, int w_dtype, const void* w, const float* w_scale,
                                 const uint8_t* meta, int n, int n_out, int k, int epilogue, int variant) {
  const char* op = "vireo_matmul_sp24";
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && x && w && meta, "%s: null operand", op);
  VIREO_CHECK_ARG(n > 0 && n_out > 0 && k > 0 && k % 4 == 0, "%s: shape n=%d n_out=%d k=%d (k a multiple of 4)", op, n,
                  n_out, k);
  VIREO_CHECK_ARG(ld_out >= n_out && (x_scale || ld_x >= k), "%s: ld_out=%d ld_x=%d for n_out=%d k=%d", op, ld_out,
                  ld_x, n_out, k);
  VIREO_CHECK_ARG(epilogue == VIREO_EPI_NONE || epilogue == VIREO_EPI_ACCUMULATE,
                  "%s: epilogue %d (2:4 takes none or accumulate)", op, epilogue);
  VIREO_CHECK_ARG(w_dtype == dtype || w_dtype == VIREO_I8, "%s: kept values of %s with %s activations", op,
                  dtype_name(w_dtype), dtype_name(dtype));
  VIREO_CHECK_ARG(w_dtype != VIREO_I8 || w_scale, "%s: int8 kept values need their row scales", op);
  VIREO_CHECK_ARG(!x_scale || w_dtype == VIREO_I8, "%s: int8 activations need int8 kept values", op);
  VIREO_CHECK_ARG(variant == VIREO_MM_AUTO || variant == VIREO_MM_SIMT || variant == VIREO_MM_MMA, "%s: variant %d", op,
                  variant);
  cudaStream_t s = as_stream(stream);
  if (x_scale) { // W8A8: tensor cores only
    bool ok = k % 64 == 0 && aligned4(x) && aligned4(w) && variant != VIREO_MM_SIMT;
    VIREO_CHECK_ARG(ok, "%s: int8 activations run on mma.sp only: k %% 64 == 0, 4-byte aligned (k=%d, variant %d)", op,
                    k, variant);
    dim3 grid(ceil_div(n_out, kSpTileM), ceil_div(n, kSpTileN));
    VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
    VIREO_DISPATCH_ACT(op, dtype, T, {
      sp24_mma8_kernel<T><<<grid, 128, 0, s>>>((T*)out, ld_out, (const int8_t*)x, x_scale, (const int8_t*)w, w_scale,
                                               meta, n, n_out, k, epilogue);
    });
    return launch_status(op, "mma s8 n=%d n_out=%d k=%d", n, n_out, k);
  }
  bool mma_ok = w_dtype != VIREO_I8 && k % 32 == 0 && ld_x % 2 == 0 && aligned4(x) && aligned4(w);
  bool use_mma = variant == VIREO_MM_MMA || (variant == VIREO_MM_AUTO && mma_ok && n > kSpRows);
  if (use_mma) {
    VIREO_CHECK_ARG(mma_ok, "%s: mma.sp needs 16-bit kept values, k %% 32 == 0 and aligned rows (k=%d)", op, k);
    dim3 grid(ceil_div(n_out, kSpTileM), ceil_div(n, kSpTileN));
    VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
    VIREO_DISPATCH_ACT(op, dtype, T, {
      sp24_mma16_kernel<T><<<grid, 128, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x, (const T*)w, meta, n, n_out, k,
                                                epilogue);
    });
    return launch_status(op, "mma n=%d n_out=%d k=%d", n, n_out, k);
  }
  dim3 grid(ceil_div(n_out, kSpWarps), ceil_div(n, kSpRows));
  VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
  bool vec = k % 32 == 0 && aligned4(meta);
  VIREO_DISPATCH_ACT(op, dtype, T, {
    if (w_dtype == VIREO_I8) {
      if (vec)
        sp24_simt_kernel<T, int8_t, true><<<grid, kSpWarps * 32, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x,
                                                                       (const int8_t*)w, w_scale, meta, n, n_out, k,
                                                                       epilogue);
      else
        sp24_simt_kernel<T, int8_t, false><<<grid, kSpWarps * 32, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x,
                                                                        (const int8_t*)w, w_scale, meta, n, n_out, k,
                                                                        epilogue);
    } else {
      if (vec)
        sp24_simt_kernel<T, T, true><<<grid, kSpWarps * 32, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x, (const T*)w,
                                                                  nullptr, meta, n, n_out, k, epilogue);
      else
        sp24_simt_kernel<T, T, false><<<grid, kSpWarps * 32, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x, (const T*)w,
                                                                   nullptr, meta, n, n_out, k, epilogue);
    }
  });
  return launch_status(op, "simt n=%d n_out=%d k=%d", n, n_out, k);
}
