// matmul_common.cuh: the pieces the three matmul files share: int8 dequantization bit
// tricks, mma.sync wrappers, the epilogue, and the two kernel templates over 8- and
// 16-bit weights (SIMT for few rows, tensor cores for many).
//
// out[i][j] (+)= scale[j] * Σ_k x[i][k] * W[j][k]; W row-major [n_w][k] (the weight's
// output rows), so W is the column-major B operand of an m16n8k16 ".row.col" MMA as is.
//
// Fragment loads without shared memory. A dot product does not care in which order k
// is summed, so each lane loads 8 consecutive k of a row with one 16-byte (activations)
// or 8-byte (int8) load and hands them to the MMA as its logical k slots; A and B use
// the same lane→k mapping, so the products pair up exactly:
//   f16  m16n8k16, chunk of 32 k, lane (g = lane/4, t = lane%4) loads k0+8t .. k0+8t+7;
//        step s ∈ {0,1}: a0/b0 ← elements 4s, 4s+1; a2/b1 ← elements 4s+2, 4s+3.
//   s8   m16n8k32, chunk of 32 k: a0/b0 ← bytes 0..3, a2/b1 ← bytes 4..7.
#pragma once

#include "common.cuh"

namespace vireo {

constexpr int kSimtRows = 8;    // rows of x per SIMT block (the decode regime)
constexpr int kSimtWarps = 4;   // output columns per SIMT block (one per warp)
constexpr int kMmaRows = 64;    // block tile: 64 rows × 64 columns, 4 warps of 32×32
constexpr int kMmaCols = 64;

__device__ __forceinline__ float silu(float g) { return g / (1.f + expf(-g)); }

// Stores v at out[row][col] applying the epilogue (ACCUMULATE adds the old value).
template <typename T>
__device__ __forceinline__ void epilogue_store(T* out, int ld_out, int row, int col, float v, int epi) {
  T* p = out + (size_t)row * ld_out + col;
  if (epi == VIREO_EPI_ACCUMULATE) v += to_f32(*p);
  *p = from_f32<T>(v);
}

// Four int8 (packed in w) to two half2, exactly: 0x64XX is the half 1024+XX, so
// (b ^ 0x80) placed under 0x64 is 1152 + b; subtracting 1152 leaves b.
__device__ __forceinline__ void i8x4_to_half2x2(uint32_t w, uint32_t& lo, uint32_t& hi) {
  uint32_t u = w ^ 0x80808080u;
  lo = __byte_perm(u, 0x64646464u, 0x4140); // bytes 0,1
  hi = __byte_perm(u, 0x64646464u, 0x4342); // bytes 2,3
  const uint32_t bias = 0x64806480u;        // half2(1152, 1152)
  __half2 l = __hsub2(*reinterpret_cast<__half2*>(&lo), *reinterpret_cast<const __half2*>(&bias));
  __half2 h = __hsub2(*reinterpret_cast<__half2*>(&hi), *reinterpret_cast<const __half2*>(&bias));
  lo = *reinterpret_cast<uint32_t*>(&l);
  hi = *reinterpret_cast<uint32_t*>(&h);
}

__device__ __forceinline__ void i8x4_to_f32(uint32_t w, float f[4]) {
  uint32_t lo, hi;
  i8x4_to_half2x2(w, lo, hi);
  float2 a = __half22float2(*reinterpret_cast<__half2*>(&lo));
  float2 b = __half22float2(*reinterpret_cast<__half2*>(&hi));
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y;
}

// A pair of dequantized int8 as the activation type's pair (exact: |b| <= 128).
template <typename T> __device__ __forceinline__ uint32_t half2_as(uint32_t h2);
template <> __device__ __forceinline__ uint32_t half2_as<__half>(uint32_t h2) { return h2; }
template <> __device__ __forceinline__ uint32_t half2_as<__nv_bfloat16>(uint32_t h2) {
  float2 f = __half22float2(*reinterpret_cast<__half2*>(&h2));
  __nv_bfloat162 b = __floats2bfloat162_rn(f.x, f.y);
  return *reinterpret_cast<uint32_t*>(&b);
}

template <typename T> __device__ __forceinline__ float2 pair_to_f32(uint32_t p);
template <> __device__ __forceinline__ float2 pair_to_f32<__half>(uint32_t p) {
  return __half22float2(*reinterpret_cast<__half2*>(&p));
}
template <> __device__ __forceinline__ float2 pair_to_f32<__nv_bfloat16>(uint32_t p) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&p));
}

// D = A·B + D, m16n8k16, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// D = A·B + D, m16n8k32 int8, int32 accumulators.
__device__ __forceinline__ void mma16832_s8(int d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- SIMT: one warp per output column, kSimtRows rows per block ---------------------

// Weight access for the SIMT kernel: V elements per 16-byte load, dequantized to fp32.
struct W8 {
  using E = int8_t;
  static constexpr int V = 16;
  __device__ static void load(const int8_t* p, float f[16]) {
    uint4 u = *reinterpret_cast<const uint4*>(p);
    i8x4_to_f32(u.x, f), i8x4_to_f32(u.y, f + 4), i8x4_to_f32(u.z, f + 8), i8x4_to_f32(u.w, f + 12);
  }
  __device__ static float one(const int8_t* p) { return (float)*p; }
};

template <typename T> struct W16 {
  using E = T;
  static constexpr int V = 8;
  __device__ static void load(const T* p, float f[8]) {
    uint4 u = *reinterpret_cast<const uint4*>(p);
    float2 a = pair_to_f32<T>(u.x), b = pair_to_f32<T>(u.y), c = pair_to_f32<T>(u.z), d = pair_to_f32<T>(u.w);
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
  }
  __device__ static float one(const T* p) { return to_f32(*p); }
};

// Loads n (8 or 16) activations at p (16-byte aligned) as fp32.
template <typename T, int N> __device__ __forceinline__ void load_x(const T* p, float f[N]) {
#pragma unroll
  for (int h = 0; h < N / 8; h++) {
    uint4 u = *reinterpret_cast<const uint4*>(p + 8 * h);
    float2 a = pair_to_f32<T>(u.x), b = pair_to_f32<T>(u.y), c = pair_to_f32<T>(u.z), d = pair_to_f32<T>(u.w);
    f[8 * h + 0] = a.x, f[8 * h + 1] = a.y, f[8 * h + 2] = b.x, f[8 * h + 3] = b.y;
    f[8 * h + 4] = c.x, f[8 * h + 5] = c.y, f[8 * h + 6] = d.x, f[8 * h + 7] = d.y;
  }
}

// vec: every row of x and w is 16-byte aligned and k % WL::V == 0.
template <typename T, typename WL>
__global__ void __launch_bounds__(kSimtWarps * 32)
    matmul_simt_kernel(T* __restrict__ out, int ld_out, const T* __restrict__ x, int ld_x,
                       const typename WL::E* __restrict__ w, const float* __restrict__ w_scale, int n, int n_out,
                       int k, int epi, bool vec) {
  constexpr int V = WL::V, R = kSimtRows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int j = blockIdx.x * kSimtWarps + warp;
  if (j >= n_out) return;
  const int i0 = blockIdx.y * R;
  const int nr = min(R, n - i0);
  const bool glu = epi == VIREO_EPI_SILU_GLU;
  const typename WL::E* wg = w + (size_t)j * k;
  const typename WL::E* wu = w + (size_t)(n_out + j) * k; // only read for GLU
  float acc[R], accu[R];
#pragma unroll
  for (int r = 0; r < R; r++) acc[r] = accu[r] = 0.f;
  if (vec) {
    for (int kk = lane * V; kk < k; kk += 32 * V) {
      float fg[V], fu[V];
      WL::load(wg + kk, fg);
      if (glu) WL::load(wu + kk, fu);
#pragma unroll
      for (int r = 0; r < R; r++) {
        if (r < nr) {
          float xf[V];
          load_x<T, V>(x + (size_t)(i0 + r) * ld_x + kk, xf);
#pragma unroll
          for (int e = 0; e < V; e++) acc[r] += xf[e] * fg[e];
          if (glu) {
#pragma unroll
            for (int e = 0; e < V; e++) accu[r] += xf[e] * fu[e];
          }
        }
      }
    }
  } else {
    for (int kk = lane; kk < k; kk += 32) {
      float g = WL::one(wg + kk), u = glu ? WL::one(wu + kk) : 0.f;
#pragma unroll
      for (int r = 0; r < R; r++) {
        if (r < nr) {
          float xv = to_f32(x[(size_t)(i0 + r) * ld_x + kk]);
          acc[r] += xv * g;
          accu[r] += xv * u;
        }
      }
    }
  }
  float sg = w_scale ? w_scale[j] : 1.f;
  float su = (w_scale && glu) ? w_scale[n_out + j] : 1.f;
#pragma unroll
  for (int r = 0; r < R; r++) {
    float v = warp_sum(acc[r]);
    float u = glu ? warp_sum(accu[r]) : 0.f;
    if (lane == r && r < nr) {
      v = w_scale ? v * sg : v;
      if (glu) {
        v = silu(v) * (w_scale ? u * su : u);
        epilogue_store(out, ld_out, i0 + r, j, v, VIREO_EPI_NONE);
      } else {
        epilogue_store(out, ld_out, i0 + r, j, v, epi);
      }
    }
  }
}

// ---- tensor cores: 64×64 block tile, warps 2×2 of 32×32 (2 m-tiles × 4 n-tiles) ----
// With SILU_GLU a warp's n-tiles 0,1 are gate columns c0..c0+15 and 2,3 the matching up
// rows, so a block covers 32 output columns.

// Loads 8 consecutive weights of row wrow at k as four activation-type pairs.
template <typename T, bool INT8>
__device__ __forceinline__ void load_b8(const void* w, size_t wrow, int k_len, int k, bool ok, uint32_t b[4]) {
  if (!ok) {
    b[0] = b[1] = b[2] = b[3] = 0u;
    return;
  }
  if (INT8) {
    uint2 u = *reinterpret_cast<const uint2*>((const int8_t*)w + wrow * k_len + k);
    uint32_t lo, hi;
    i8x4_to_half2x2(u.x, lo, hi);
    b[0] = half2_as<T>(lo), b[1] = half2_as<T>(hi);
    i8x4_to_half2x2(u.y, lo, hi);
    b[2] = half2_as<T>(lo), b[3] = half2_as<T>(hi);
  } else {
    uint4 u = *reinterpret_cast<const uint4*>((const T*)w + wrow * k_len + k);
    b[0] = u.x, b[1] = u.y, b[2] = u.z, b[3] = u.w;
  }
}

// mma_col0 is a warp's first output column: 32 columns per warp, or with the SiLU(gate)·up
// epilogue 16 output columns whose gate and up rows fill the four n-tiles.
__device__ __forceinline__ int mma_col0(bool glu, int warp) {
  return glu ? blockIdx.x * 32 + (warp & 1) * 16 : blockIdx.x * kMmaCols + (warp & 1) * 32;
}

// mma_weight_rows gives the weight row each n-tile's B fragment reads for this lane
// (n = g), and whether it exists: with GLU, tiles 0,1 read gate rows and 2,3 the
// matching up rows at n_out + c.
__device__ __forceinline__ void mma_weight_rows(bool glu, int col0, int g, int n_out, size_t wrow[4], bool wok[4]) {
#pragma unroll
  for (int nt = 0; nt < 4; nt++) {
    int c = glu ? col0 + (nt & 1) * 8 + g : col0 + nt * 8 + g;
    wok[nt] = c < n_out;
    wrow[nt] = glu && nt >= 2 ? (size_t)n_out + c : (size_t)c;
  }
}

template <typename T, bool INT8>
__global__ void __launch_bounds__(128)
    matmul_mma_kernel(T* __restrict__ out, int ld_out, const T* __restrict__ x, int ld_x, const void* __restrict__ w,
                      const float* __restrict__ w_scale, int n, int n_out, int k, int epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const bool glu = epi == VIREO_EPI_SILU_GLU;
  const int row0 = blockIdx.y * kMmaRows + (warp >> 1) * 32;
  const int col0 = mma_col0(glu, warp);
  size_t wrow[4];
  bool wok[4];
  mma_weight_rows(glu, col0, g, n_out, wrow, wok);
  float acc[2][4][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.f;

  for (int k0 = 0; k0 < k; k0 += 32) {
    const int kk = k0 + 8 * t;
    uint4 alo[2], ahi[2];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      int ra = row0 + mt * 16 + g, rb = ra + 8;
      alo[mt] = ra < n ? *reinterpret_cast<const uint4*>(x + (size_t)ra * ld_x + kk) : make_uint4(0, 0, 0, 0);
      ahi[mt] = rb < n ? *reinterpret_cast<const uint4*>(x + (size_t)rb * ld_x + kk) : make_uint4(0, 0, 0, 0);
    }
    uint32_t b[4][4];
#pragma unroll
    for (int nt = 0; nt < 4; nt++) load_b8<T, INT8>(w, wrow[nt], k, kk, wok[nt], b[nt]);
#pragma unroll
    for (int s = 0; s < 2; s++) {
#pragma unroll
      for (int mt = 0; mt < 2; mt++) {
        uint32_t a[4];
        a[0] = s ? alo[mt].z : alo[mt].x; // row g,   elements 4s, 4s+1
        a[1] = s ? ahi[mt].z : ahi[mt].x; // row g+8
        a[2] = s ? alo[mt].w : alo[mt].y; // row g,   elements 4s+2, 4s+3
        a[3] = s ? ahi[mt].w : ahi[mt].y; // row g+8
#pragma unroll
        for (int nt = 0; nt < 4; nt++) mma16816<T>(acc[mt][nt], a, b[nt][2 * s], b[nt][2 * s + 1]);
      }
    }
  }

  // C fragment: c0,c1 at (row g, cols 2t, 2t+1), c2,c3 at row g+8.
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
#pragma unroll
    for (int nt = 0; nt < (glu ? 2 : 4); nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int row = row0 + mt * 16 + g + (e >= 2 ? 8 : 0);
        int col = col0 + nt * 8 + 2 * t + (e & 1);
        if (row >= n || col >= n_out) continue;
        float v = acc[mt][nt][e];
        if (INT8) v *= w_scale[col];
        if (glu) {
          float u = acc[mt][nt + 2][e];
          if (INT8) u *= w_scale[n_out + col];
          epilogue_store(out, ld_out, row, col, silu(v) * u, VIREO_EPI_NONE);
        } else {
          epilogue_store(out, ld_out, row, col, v, epi);
        }
      }
    }
  }
}

inline bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// ---- host side ------------------------------------------------------------------

// matmul_dispatch launches the SIMT or MMA kernel for weights of type WL (W8 or W16<T>).
template <typename T, typename WL, bool INT8>
int matmul_dispatch(const char* op, cudaStream_t s, void* out, int ld_out, const void* x, int ld_x, const void* w,
                    const float* w_scale, int n, int n_out, int k, int epi, int variant, int mma_rows) {
  bool mma_ok = k % 32 == 0 && ld_x % 8 == 0 && aligned16(x) && aligned16(w);
  bool use_mma = variant == VIREO_MM_MMA || (variant == VIREO_MM_AUTO && n >= mma_rows && mma_ok);
  if (use_mma) {
    VIREO_CHECK_ARG(mma_ok, "%s: the MMA kernel needs k %% 32 == 0, ld_x %% 8 == 0 and 16-byte aligned x and w "
                    "(n=%d n_out=%d k=%d ld_x=%d)", op, n, n_out, k, ld_x);
    int cols = epi == VIREO_EPI_SILU_GLU ? 32 : kMmaCols;
    dim3 grid(ceil_div(n_out, cols), ceil_div(n, kMmaRows));
    VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
    matmul_mma_kernel<T, INT8><<<grid, 128, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x, w, w_scale, n, n_out, k, epi);
    return launch_status(op, "mma n=%d n_out=%d k=%d epilogue=%d", n, n_out, k, epi);
  }
  bool vec = k % WL::V == 0 && ld_x % 8 == 0 && aligned16(x) && aligned16(w) &&
             (WL::V == 16 || k % 8 == 0);
  dim3 grid(ceil_div(n_out, kSimtWarps), ceil_div(n, kSimtRows));
  VIREO_CHECK_ARG(grid.y <= 65535, "%s: %d rows", op, n);
  matmul_simt_kernel<T, WL><<<grid, kSimtWarps * 32, 0, s>>>((T*)out, ld_out, (const T*)x, ld_x,
                                                             (const typename WL::E*)w, w_scale, n, n_out, k, epi, vec);
  return launch_status(op, "simt n=%d n_out=%d k=%d epilogue=%d vec=%d", n, n_out, k, epi, vec);
}

inline int check_matmul_args(const char* op, const void* out, int ld_out, const void* x, int ld_x, const void* w, int n,
                      int n_out, int k, int epi, int variant) {
  VIREO_CHECK_ARG(out && x && w && n > 0 && n_out > 0 && k > 0 && ld_x >= k && ld_out >= n_out,
                  "%s: bad arguments n=%d n_out=%d k=%d ld_x=%d ld_out=%d", op, n, n_out, k, ld_x, ld_out);
  VIREO_CHECK_ARG(epi >= VIREO_EPI_NONE && epi <= VIREO_EPI_SILU_GLU, "%s: epilogue %d", op, epi);
  VIREO_CHECK_ARG(variant >= VIREO_MM_AUTO && variant <= VIREO_MM_MMA, "%s: variant %d", op, variant);
  return VIREO_OK;
}

} // namespace vireo
