// norm_rope.cu: the row-wise and elementwise ops: dtype conversion, embedding gather,
// RMSNorm (plain, fused residual add, fused int8 quantization), per-row activation
// quantization, RoPE (both conventions), SiLU(gate)*up and row gather.
//
// Reference semantics: runtime/backend/cpu/ops.go. All arithmetic is fp32; inputs and
// outputs in the activation dtype.
//
// Napkin math (H200, ≈ 4.3 TB/s copy, 132 SMs), Llama-3-8B rows of 4096, f16: every op
// here is memory bound (a few flops per byte), one block per row.
// - RMSNorm, 2,048 prefill rows: reads 16.8 MB, writes 16.8 MB: 7.8 µs floor, expect
//   9–12 µs (2,048 blocks over 132 SMs, a block reduction per row). One decode row:
//   16 KB, launch bound (≈ 3 µs).
// - RMSNormQuant (vireo_rmsnorm_quant, backend.RMSNormQuanter), 2,048 rows: reads 16.8
//   MB, writes 8.4 MB of int8 and 8 KB of scales: 5.9 µs floor, expect 8–11 µs (the row,
//   8 KB, is read three times — squares, row maximum, quantize — from L1/L2, once from
//   DRAM; two block reductions). It replaces RMSNorm then vireo_quantize_rows (16.8 MB
//   written, read back, 8.4 MB written: 58.7 MB, 13.7 µs floor) for a W8A8 product.
// - vireo_quantize_rows alone: reads 16.8 MB, writes 8.4 MB: 5.9 µs floor.
// The thread → element mapping is one block per row, threads striding the row: every
// element is read and written by exactly one thread of its row's block (no Go model
// beyond the backendtest cases: nothing is tiled).
#include "common.cuh"

using namespace vireo;

namespace {

template <typename D, typename S>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = from_f32<D>(to_f32(src[i]));
}

template <typename T, typename W>
__global__ void embed_kernel(T* __restrict__ out, const W* __restrict__ table, const float* __restrict__ scales,
                             const int32_t* __restrict__ ids, int dim, int vocab) {
  int i = blockIdx.x;
  int id = ids[i];
  T* o = out + (size_t)i * dim;
  if (id < 0 || id >= vocab) {
    for (int k = threadIdx.x; k < dim; k += blockDim.x) o[k] = from_f32<T>(0.f);
    return;
  }
  const W* row = table + (size_t)id * dim;
  float s = scales ? scales[id] : 1.f;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) {
    float v = to_f32(row[k]);
    o[k] = from_f32<T>(scales ? v * s : v);
  }
}

// One block per row. Pass 1: h = x (+ residual), sum of squares. Pass 2: normalize,
// write out (and for QUANT, the row maximum, then pass 3 writes int8). out may alias x
// (the ABI allows it), so neither is __restrict__.
template <typename T, typename W, bool QUANT>
__global__ void rmsnorm_kernel(T* out, int8_t* __restrict__ q, float* __restrict__ qscale,
                               const T* x, T* residual, const W* __restrict__ w, int dim, float eps) {
  __shared__ float sh[33];
  size_t base = (size_t)blockIdx.x * dim;
  const T* xr = x + base;
  float ss = 0.f;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) {
    float h;
    if (residual) {
      T hs = from_f32<T>(to_f32(xr[k]) + to_f32(residual[base + k]));
      residual[base + k] = hs;
      h = to_f32(hs);
    } else {
      h = to_f32(xr[k]);
    }
    ss += h * h;
  }
  ss = block_sum(ss, sh);
  float inv = (float)(1.0 / sqrt((double)(ss / (float)dim + eps)));
  const T* hr = residual ? residual + base : xr;
  if (!QUANT) {
    for (int k = threadIdx.x; k < dim; k += blockDim.x)
      out[base + k] = from_f32<T>(to_f32(w[k]) * (inv * to_f32(hr[k])));
    return;
  }
  // Quantize the normalized row as the activation dtype would store it, so that
  // rmsnorm_quant equals rmsnorm followed by quantize_rows.
  float amax = 0.f;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) {
    float y = to_f32(from_f32<T>(to_f32(w[k]) * (inv * to_f32(hr[k]))));
    amax = fmaxf(amax, fabsf(y));
  }
  amax = block_max(amax, sh);
  float scale = amax > 0.f ? amax / 127.f : 1.f;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) {
    float y = to_f32(from_f32<T>(to_f32(w[k]) * (inv * to_f32(hr[k]))));
    int v = __float2int_rn(y / scale);
    q[base + k] = (int8_t)max(-127, min(127, v));
  }
  if (threadIdx.x == 0) qscale[blockIdx.x] = scale;
}

template <typename T>
__global__ void quantize_rows_kernel(int8_t* __restrict__ q, float* __restrict__ qscale, const T* __restrict__ x,
                                     int ld_x, int dim) {
  __shared__ float sh[33];
  const T* xr = x + (size_t)blockIdx.x * ld_x;
  float amax = 0.f;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) amax = fmaxf(amax, fabsf(to_f32(xr[k])));
  amax = block_max(amax, sh);
  float scale = amax > 0.f ? amax / 127.f : 1.f;
  int8_t* qr = q + (size_t)blockIdx.x * dim;
  for (int k = threadIdx.x; k < dim; k += blockDim.x) {
    int v = __float2int_rn(to_f32(xr[k]) / scale);
    qr[k] = (int8_t)max(-127, min(127, v));
  }
  if (threadIdx.x == 0) qscale[blockIdx.x] = scale;
}

// Thread (pair k, row i): one sin/cos, applied to every head of the row.
template <typename T>
__global__ void rope_kernel(T* x, int ld_x, int n_heads, int head_dim, const int32_t* __restrict__ pos,
                            const float* __restrict__ inv_freq, int style) {
  int half = head_dim / 2;
  int k = blockIdx.y * blockDim.x + threadIdx.x;
  int i = blockIdx.x;
  const int p = pos[i];
  if (k >= half || p < 0) return; // pos < 0: an idle or ended row of a device decode step
  double s, c;
  sincos((double)p * (double)inv_freq[k], &s, &c);
  float cf = (float)c, sf = (float)s;
  int a = 2 * k, b = 2 * k + 1;
  if (style == VIREO_ROPE_ROTATE_HALF) a = k, b = k + half;
  T* row = x + (size_t)i * ld_x;
  for (int h = 0; h < n_heads; h++) {
    T* head = row + h * head_dim;
    float v0 = to_f32(head[a]), v1 = to_f32(head[b]);
    head[a] = from_f32<T>(__fsub_rn(__fmul_rn(v0, cf), __fmul_rn(v1, sf)));
    head[b] = from_f32<T>(__fadd_rn(__fmul_rn(v0, sf), __fmul_rn(v1, cf)));
  }
}

template <typename T>
__global__ void silu_mul_kernel(T* __restrict__ out, const T* __restrict__ gate, const T* __restrict__ up, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float g = to_f32(gate[i]);
    out[i] = from_f32<T>(g / (1.f + expf(-g)) * to_f32(up[i]));
  }
}

template <typename V>
__global__ void gather_kernel(V* __restrict__ out, const V* __restrict__ x, const int32_t* __restrict__ rows,
                              int words, int x_rows) {
  int i = blockIdx.x;
  int r = rows[i];
  V* o = out + (size_t)i * words;
  if (r < 0 || r >= x_rows) {
    for (int k = threadIdx.x; k < words; k += blockDim.x) o[k] = V{};
    return;
  }
  const V* s = x + (size_t)r * words;
  for (int k = threadIdx.x; k < words; k += blockDim.x) o[k] = s[k];
}

unsigned grid_for(size_t n, int threads) {
  size_t g = (n + threads - 1) / threads;
  return (unsigned)(g > 65535 * 8 ? 65535 * 8 : (g == 0 ? 1 : g));
}

int row_threads(int dim) {
  int t = 32;
  while (t < dim && t < 1024) t *= 2;
  return t < 128 ? 128 : t > 512 ? 512 : t;
}

} // namespace

extern "C" {

int vireo_convert(vireo_stream_t stream, int dst_dtype, void* dst, int src_dtype, const void* src, size_t n) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(dst && src, "vireo_convert: NULL pointer (n=%zu)", n);
  VIREO_DISPATCH_FLOAT("vireo_convert", dst_dtype, D, {
    VIREO_DISPATCH_FLOAT("vireo_convert", src_dtype, S, {
      convert_kernel<D, S><<<grid_for(n, 256), 256, 0, as_stream(stream)>>>((D*)dst, (const S*)src, n);
    });
  });
  return launch_status("vireo_convert", "%s -> %s, n=%zu", dtype_name(src_dtype), dtype_name(dst_dtype), n);
}

int vireo_embed(vireo_stream_t stream, int dtype, void* out, int table_dtype, const void* table, const float* scales,
                const int32_t* ids, int n, int dim, int vocab) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && table && ids && n > 0 && dim > 0 && vocab > 0,
                  "vireo_embed: bad arguments n=%d dim=%d vocab=%d", n, dim, vocab);
  VIREO_CHECK_ARG(table_dtype != VIREO_I8 || scales, "vireo_embed: int8 table without scales");
  int th = row_threads(dim);
  VIREO_DISPATCH_ACT("vireo_embed", dtype, T, {
    if (table_dtype == VIREO_I8) {
      embed_kernel<T, int8_t><<<n, th, 0, as_stream(stream)>>>((T*)out, (const int8_t*)table, scales, ids, dim, vocab);
    } else {
      VIREO_DISPATCH_FLOAT("vireo_embed", table_dtype, W, {
        embed_kernel<T, W><<<n, th, 0, as_stream(stream)>>>((T*)out, (const W*)table, nullptr, ids, dim, vocab);
      });
    }
  });
  return launch_status("vireo_embed", "n=%d dim=%d vocab=%d table %s", n, dim, vocab, dtype_name(table_dtype));
}

int vireo_rmsnorm(vireo_stream_t stream, int dtype, void* out, const void* x, void* residual, int w_dtype,
                  const void* w, int n, int dim, float eps) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && x && w && n > 0 && dim > 0, "vireo_rmsnorm: bad arguments n=%d dim=%d", n, dim);
  int th = row_threads(dim);
  VIREO_DISPATCH_ACT("vireo_rmsnorm", dtype, T, {
    VIREO_DISPATCH_FLOAT("vireo_rmsnorm", w_dtype, W, {
      rmsnorm_kernel<T, W, false><<<n, th, 0, as_stream(stream)>>>((T*)out, nullptr, nullptr, (const T*)x,
                                                                   (T*)residual, (const W*)w, dim, eps);
    });
  });
  return launch_status("vireo_rmsnorm", "n=%d dim=%d residual=%d", n, dim, residual != nullptr);
}

int vireo_rmsnorm_quant(vireo_stream_t stream, int dtype, int8_t* q, float* scale, const void* x, void* residual,
                        int w_dtype, const void* w, int n, int dim, float eps) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(q && scale && x && w && n > 0 && dim > 0, "vireo_rmsnorm_quant: bad arguments n=%d dim=%d", n, dim);
  int th = row_threads(dim);
  VIREO_DISPATCH_ACT("vireo_rmsnorm_quant", dtype, T, {
    VIREO_DISPATCH_FLOAT("vireo_rmsnorm_quant", w_dtype, W, {
      rmsnorm_kernel<T, W, true><<<n, th, 0, as_stream(stream)>>>(nullptr, q, scale, (const T*)x, (T*)residual,
                                                                  (const W*)w, dim, eps);
    });
  });
  return launch_status("vireo_rmsnorm_quant", "n=%d dim=%d residual=%d", n, dim, residual != nullptr);
}

int vireo_quantize_rows(vireo_stream_t stream, int dtype, int8_t* q, float* scale, const void* x, int ld_x, int n,
                        int dim) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(q && scale && x && n > 0 && dim > 0 && ld_x >= dim,
                  "vireo_quantize_rows: bad arguments n=%d dim=%d ld_x=%d", n, dim, ld_x);
  int th = row_threads(dim);
  VIREO_DISPATCH_ACT("vireo_quantize_rows", dtype, T, {
    quantize_rows_kernel<T><<<n, th, 0, as_stream(stream)>>>(q, scale, (const T*)x, ld_x, dim);
  });
  return launch_status("vireo_quantize_rows", "n=%d dim=%d", n, dim);
}

int vireo_rope(vireo_stream_t stream, int dtype, void* x, int ld_x, int n, int n_heads, int head_dim,
               const int32_t* pos, const float* inv_freq, int style) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(x && pos && inv_freq && n > 0 && n_heads > 0 && head_dim > 0 && head_dim % 2 == 0 &&
                      ld_x >= n_heads * head_dim,
                  "vireo_rope: bad arguments n=%d heads=%d head_dim=%d ld_x=%d", n, n_heads, head_dim, ld_x);
  VIREO_CHECK_ARG(style == VIREO_ROPE_PAIRS || style == VIREO_ROPE_ROTATE_HALF, "vireo_rope: style %d", style);
  int half = head_dim / 2;
  VIREO_CHECK_ARG(ceil_div(half, 64) <= 65535, "vireo_rope: head_dim %d", head_dim);
  dim3 grid(n, ceil_div(half, 64)); // rows in x: a prefill may pass more than 65535
  VIREO_DISPATCH_ACT("vireo_rope", dtype, T, {
    rope_kernel<T><<<grid, 64, 0, as_stream(stream)>>>((T*)x, ld_x, n_heads, head_dim, pos, inv_freq, style);
  });
  return launch_status("vireo_rope", "n=%d heads=%d head_dim=%d style=%d", n, n_heads, head_dim, style);
}

int vireo_silu_mul(vireo_stream_t stream, int dtype, void* out, const void* gate, const void* up, int n, int hidden) {
  size_t total = (size_t)n * hidden;
  if (total == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && gate && up && n > 0 && hidden > 0, "vireo_silu_mul: bad arguments n=%d hidden=%d", n, hidden);
  VIREO_DISPATCH_ACT("vireo_silu_mul", dtype, T, {
    silu_mul_kernel<T><<<grid_for(total, 256), 256, 0, as_stream(stream)>>>((T*)out, (const T*)gate, (const T*)up,
                                                                           total);
  });
  return launch_status("vireo_silu_mul", "n=%d hidden=%d", n, hidden);
}

int vireo_gather_rows(vireo_stream_t stream, void* out, const void* x, const int32_t* rows, int n, int cols,
                      int x_rows, int elem_bytes) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && x && rows && n > 0 && cols > 0 && x_rows >= 0 && elem_bytes > 0,
                  "vireo_gather_rows: bad arguments n=%d cols=%d x_rows=%d elem=%d", n, cols, x_rows, elem_bytes);
  size_t bytes = (size_t)cols * elem_bytes;
  uintptr_t align = (uintptr_t)out | (uintptr_t)x;
  cudaStream_t s = as_stream(stream);
  if (bytes % 16 == 0 && align % 16 == 0) {
    gather_kernel<uint4><<<n, 128, 0, s>>>((uint4*)out, (const uint4*)x, rows, (int)(bytes / 16), x_rows);
  } else if (bytes % 4 == 0 && align % 4 == 0) {
    gather_kernel<uint32_t><<<n, 128, 0, s>>>((uint32_t*)out, (const uint32_t*)x, rows, (int)(bytes / 4), x_rows);
  } else {
    gather_kernel<uint8_t><<<n, 128, 0, s>>>((uint8_t*)out, (const uint8_t*)x, rows, (int)bytes, x_rows);
  }
  return launch_status("vireo_gather_rows", "n=%d cols=%d x_rows=%d elem=%d", n, cols, x_rows, elem_bytes);
}

} // extern "C"
