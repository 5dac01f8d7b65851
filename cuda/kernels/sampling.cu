// sampling.cu: token sampling on the device, reproducing runtime/sampling.Sampler.Sample
// token for token (the algorithm is specified in runtime/sampling/doc.go; read it first).
//
// Kernels v1 (sampling2.cu is v2, which samples any candidate count). One block per
// row. Parallel: the copy with NaN/-0 canonicalization, penalties (history counts by
// atomics in a zeroed scratch), argmax, the softmax weights (double exp rounded to
// float, as specified) and their integer masses, Z and the mass histogram by weight
// exponent of the top-p pre-filter (integer sums: exact in any order), a radix select
// for top-k, the candidate gather and a bitonic sort of the canonical sort keys.
// Sequential on one thread: the walk of step 5 and the draw of step 6 over the sorted
// candidates (integer running sums). This file is compiled with -fmad=false and spells
// the float operations with __f*_rn intrinsics besides, so nothing is contracted into an
// FMA.
//
// Where bit equality can fail: exp. CUDA's double exp and Go's math.Exp are both within
// 1 ulp of double but not always the same double; the float32 rounding of the two
// differs only if the double lies within an ulp of a float32 rounding boundary
// (probability about 2^-29 per weight).
// Rows returning -1 (more than VIREO_SAMPLE_MAX_CANDIDATES candidates) must be sampled
// on the host.
#include <float.h>

#include "common.cuh"

using namespace vireo;

namespace {

constexpr int kThreads = 512;
constexpr int kCap = VIREO_SAMPLE_MAX_CANDIDATES;

__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      key.x += 0x9E3779B9u;
      key.y += 0xBB67AE85u;
    }
    uint32_t lo0 = 0xD2511F53u * ctr.x, hi0 = __umulhi(0xD2511F53u, ctr.x);
    uint32_t lo1 = 0xCD9E8D57u * ctr.z, hi1 = __umulhi(0xCD9E8D57u, ctr.z);
    ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
  }
  return ctr;
}

// runtime/sampling.Uniform.
__device__ __forceinline__ float uniform(uint64_t seed, uint64_t index, uint32_t stream) {
  uint4 c = make_uint4((uint32_t)index, (uint32_t)(index >> 32), stream, 0u);
  uint4 o = philox4x32_10(c, make_uint2((uint32_t)seed, (uint32_t)(seed >> 32)));
  return __fmul_rn((float)(o.x >> 8), 1.0f / 16777216.0f);
}

// Larger float, larger key (no NaN here; -0 is canonicalized to +0 before).
__device__ __forceinline__ uint32_t order_key(float v) {
  uint32_t b = __float_as_uint(v);
  return (b >> 31) ? ~b : (b | 0x80000000u);
}

// runtime/sampling.sortKey: ascending = logit descending, then id ascending.
__device__ __forceinline__ uint64_t sort_key(float v, int id) {
  return ((uint64_t)(~order_key(v)) << 32) | (uint32_t)id;
}

__device__ __forceinline__ float canon(float v) {
  if (v != v) return -INFINITY;
  return v == 0.f ? 0.f : v;
}

// runtime/sampling.weight.
__device__ __forceinline__ float weight(float v, float xmax, float T) {
  if (xmax > FLT_MAX) return v == xmax ? 1.f : 0.f;
  return (float)exp((double)__fdiv_rn(__fsub_rn(v, xmax), T));
}

// runtime/sampling.Mass: floor(e · 2^40), exact (e in [0, 1]).
__device__ __forceinline__ unsigned long long mass(float e) {
  return (unsigned long long)__dmul_rz((double)e, 1099511627776.0);
}

// runtime/sampling.TopPThreshold: ceil(top_p · z), exactly.
__device__ __forceinline__ unsigned long long top_p_threshold(float top_p, unsigned long long z) {
  uint32_t b = __float_as_uint(top_p);
  uint32_t ex = (b >> 23) & 0xff;
  unsigned long long mant = b & 0x7fffff;
  int shift = 149;
  if (ex != 0) mant |= 1ull << 23, shift = 150 - (int)ex;
  unsigned long long lo = mant * z, hi = __umul64hi(mant, z);
  if (shift >= 128) return (hi | lo) ? 1ull : 0ull;
  unsigned long long q, rem;
  if (shift >= 64) {
    int s = shift - 64;
    q = s == 0 ? hi : hi >> s;
    rem = (s == 0 ? 0ull : (hi & ((1ull << s) - 1))) | lo;
  } else if (shift == 0) {
    q = lo, rem = 0;
  } else {
    q = (hi << (64 - shift)) | (lo >> shift);
    rem = lo & ((1ull << shift) - 1);
  }
  return rem ? q + 1 : q;
}

// runtime/sampling.DrawTarget: floor(r · total / 2^24).
__device__ __forceinline__ unsigned long long draw_target(uint32_t r, unsigned long long total) {
  unsigned long long lo = (unsigned long long)r * total, hi = __umul64hi((unsigned long long)r, total);
  return (hi << 40) | (lo >> 24);
}

// runtime/sampling.UniformBits: the 24-bit integer of the draw.
__device__ __forceinline__ uint32_t uniform_bits(uint64_t seed, uint64_t index, uint32_t stream) {
  uint4 c = make_uint4((uint32_t)index, (uint32_t)(index >> 32), stream, 0u);
  uint4 o = philox4x32_10(c, make_uint2((uint32_t)seed, (uint32_t)(seed >> 32)));
  return o.x >> 8;
}

template <typename L>
__global__ void __launch_bounds__(kThreads)
    sample_kernel(const L* __restrict__ logits, int ld, int V, const vireo_sampling_params* __restrict__ params,
                  const int32_t* __restrict__ history, int32_t* __restrict__ out, float* __restrict__ ws_x,
                  float* __restrict__ ws_e, int32_t* __restrict__ ws_counts, unsigned long long* __restrict__ ws_w) {
  __shared__ uint64_t keys[kCap];
  __shared__ unsigned long long hist[256];
  __shared__ unsigned long long s_z;
  __shared__ float red_v[kThreads / 32];
  __shared__ int red_i[kThreads / 32];
  __shared__ int s_int[4];
  __shared__ float s_float[4];

  const int r = blockIdx.x, tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
  const vireo_sampling_params P = params[r];
  const L* lr = logits + (size_t)r * ld;
  float* x = ws_x + (size_t)r * V;
  float* e = ws_e + (size_t)r * V;
  int32_t* counts = ws_counts + (size_t)r * V;
  unsigned long long* wbuf = ws_w + (size_t)r * kCap;

  // Step 1: copy.
  for (int i = tid; i < V; i += kThreads) x[i] = canon(to_f32(lr[i]));
  __syncthreads();

  // Step 2: penalties, each distinct history id once with its count.
  const float rep = P.repetition_penalty, pres = P.presence_penalty, freq = P.frequency_penalty;
  const bool use_rep = rep > 0.f && rep != 1.f;
  if (history && P.history_len > 0 && (use_rep || pres != 0.f || freq != 0.f)) {
    const int32_t* h = history + P.history_off;
    for (int j = tid; j < P.history_len; j += kThreads) {
      int t = h[j];
      if (t >= 0 && t < V) atomicAdd(&counts[t], 1);
    }
    __syncthreads();
    for (int j = tid; j < P.history_len; j += kThreads) {
      int t = h[j];
      if (t < 0 || t >= V) continue;
      int c = atomicExch(&counts[t], 0);
      if (c == 0) continue;
      float v = x[t];
      if (use_rep) v = v > 0.f ? __fdiv_rn(v, rep) : __fmul_rn(v, rep);
      v = __fsub_rn(v, pres);
      v = __fsub_rn(v, __fmul_rn(freq, (float)c));
      x[t] = canon(v);
    }
    __syncthreads();
  }

  // Step 3: argmax, lowest id on ties; 0 when every logit is -Inf.
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = tid; i < V; i += kThreads) {
    float v = x[i];
    if (v > bv) bv = v, bi = i; // ascending i per thread: keeps the lowest id of a tie
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
  }
  if (lane == 0) red_v[wid] = bv, red_i[wid] = bi;
  __syncthreads();
  if (tid == 0) {
    for (int w = 1; w < kThreads / 32; w++)
      if (red_v[w] > bv || (red_v[w] == bv && red_i[w] < bi)) bv = red_v[w], bi = red_i[w];
    if (bi == 0x7fffffff) bi = 0, bv = x[0];
    s_int[0] = bi;
    s_float[0] = bv;
  }
  __syncthreads();
  const int best = s_int[0];
  const float xmax = s_float[0];
  const float T = P.temperature;
  if (!(T > 0.f) || xmax == -INFINITY) {
    if (tid == 0) out[r] = best;
    return;
  }

  int k = P.top_k;
  if (k <= 0 || k >= V) k = 0;
  const float topP = P.top_p;
  const bool useP = topP > 0.f && topP < 1.f;
  float minP = P.min_p;
  const bool useM = minP > 0.f;
  if (minP > 1.f) minP = 1.f;
  const uint32_t ubits = uniform_bits(P.seed, P.token_index, 0u);

  // Step 4: weights and masses of the whole vocabulary (needed for Z, the pre-filter,
  // or the unfiltered draw), with the mass histogram by weight exponent. Integer sums:
  // any order gives the CPU's values.
  unsigned long long Z = 0;
  if (k == 0 || useP) {
    for (int b = tid; b < 256; b += kThreads) hist[b] = 0ull;
    if (tid == 0) s_z = 0ull;
    __syncthreads();
    unsigned long long z = 0;
    for (int i = tid; i < V; i += kThreads) {
      float wi = weight(x[i], xmax, T);
      e[i] = wi;
      unsigned long long m = mass(wi);
      z += m;
      if (m) atomicAdd(&hist[__float_as_uint(wi) >> 23], m);
    }
    atomicAdd(&s_z, z);
    __syncthreads();
    Z = s_z;
  }

  // No filter: the whole vocabulary in ascending id order (sequential running sum).
  if (k == 0 && !useP && !useM) {
    if (tid == 0) {
      unsigned long long target = draw_target(ubits, Z), cum = 0;
      int pick = 0;
      for (int i = 0; i < V; i++) {
        cum += mass(e[i]);
        if (cum > target) {
          pick = i;
          break;
        }
      }
      out[r] = pick;
    }
    return;
  }
  const unsigned long long thr = useP ? top_p_threshold(topP, Z) : 0ull;

  // Step 5: a canonical prefix containing the kept set, as sort keys in shared memory.
  uint32_t tau = 0; // candidates: order_key(x) >= tau ...
  float xmin = 0.f; // ... or x >= xmin (no top-k)
  if (k > 0) {
    // Radix select of the k-th largest order key, 8 bits at a time.
    __shared__ int bins[256];
    uint32_t prefix = 0, mask = 0;
    int remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = tid; b < 256; b += kThreads) bins[b] = 0;
      __syncthreads();
      for (int i = tid; i < V; i += kThreads) {
        uint32_t ok = order_key(x[i]);
        if ((ok & mask) == prefix) atomicAdd(&bins[(ok >> shift) & 0xff], 1);
      }
      __syncthreads();
      if (tid == 0) {
        int cum = 0, b = 255;
        for (; b > 0; b--) {
          if (cum + bins[b] >= remaining) break;
          cum += bins[b];
        }
        s_int[1] = b;
        s_int[2] = remaining - cum;
      }
      __syncthreads();
      prefix |= (uint32_t)s_int[1] << shift;
      mask |= 0xffu << shift;
      remaining = s_int[2];
      __syncthreads();
    }
    tau = prefix;
  } else {
    // Pre-filter threshold: the largest power of two t such that the weights >= t hold
    // at least thr of the mass (exact), raised to min_p; then every logit >= the
    // smallest logit with weight >= t.
    if (tid == 0) {
      float t = 0.f;
      if (useP) {
        unsigned long long cum = 0;
        for (int b = 127; b >= 1; b--) {
          cum += hist[b];
          if (cum >= thr) {
            t = __uint_as_float((uint32_t)b << 23);
            break;
          }
        }
      }
      if (useM && minP > t) t = minP;
      s_float[2] = t;
    }
    __syncthreads();
    const float t_thr = s_float[2];
    float m = xmax;
    for (int i = tid; i < V; i += kThreads)
      if (e[i] >= t_thr && x[i] < m) m = x[i];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fminf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) red_v[wid] = m;
    __syncthreads();
    if (tid == 0) {
      for (int w = 1; w < kThreads / 32; w++) m = fminf(m, red_v[w]);
      s_float[3] = m;
    }
    __syncthreads();
    xmin = s_float[3];
  }

  if (tid == 0) s_int[3] = 0;
  __syncthreads();
  for (int i = tid; i < V; i += kThreads) {
    float v = x[i];
    bool in = k > 0 ? order_key(v) >= tau : v >= xmin;
    if (in) {
      int slot = atomicAdd(&s_int[3], 1);
      if (slot < kCap) keys[slot] = sort_key(v, i);
    }
  }
  __syncthreads();
  const int n_cand = s_int[3];
  if (n_cand > kCap) {
    if (tid == 0) out[r] = -1;
    return;
  }
  int p2 = 1;
  while (p2 < n_cand) p2 <<= 1;
  for (int i = n_cand + tid; i < p2; i += kThreads) keys[i] = ~0ull;
  __syncthreads();
  for (int size = 2; size <= p2; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < p2; i += kThreads) {
        int j = i ^ stride;
        if (j > i) {
          uint64_t a = keys[i], b = keys[j];
          bool asc = (i & size) == 0;
          if ((a > b) == asc) keys[i] = b, keys[j] = a;
        }
      }
      __syncthreads();
    }
  }
  const int n_walk = k > 0 ? k : n_cand; // top-k: the first k of the canonical order
  for (int j = tid; j < n_walk; j += kThreads) {
    float wj = weight(x[(uint32_t)keys[j]], xmax, T);
    wbuf[j] = useM && wj < minP && j > 0 ? ~0ull : mass(wj); // ~0: cut by min-p
  }
  __syncthreads();

  // Steps 5 (the walk) and 6 (the draw), sequential in canonical order.
  if (tid == 0) {
    int Lk = n_walk;
    unsigned long long cum = 0;
    for (int j = 0; j < n_walk; j++) {
      if (wbuf[j] == ~0ull) {
        Lk = j;
        break;
      }
      if (useP) {
        cum += wbuf[j];
        if (cum >= thr) {
          Lk = j + 1;
          break;
        }
      }
    }
    unsigned long long total = 0;
    for (int j = 0; j < Lk; j++) total += wbuf[j];
    unsigned long long target = draw_target(ubits, total), c = 0;
    int pick = (int)(uint32_t)keys[0];
    for (int j = 0; j < Lk; j++) {
      c += wbuf[j];
      if (c > target) {
        pick = (int)(uint32_t)keys[j];
        break;
      }
    }
    out[r] = pick;
  }
}

__global__ void uniform_kernel(float* out, const uint64_t* seeds, const uint64_t* indices, int n, uint32_t stream) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = uniform(seeds[i], indices[i], stream);
}

size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

} // namespace

extern "C" {

int vireo_sample_workspace_bytes(size_t* bytes, int rows, int vocab) {
  VIREO_CHECK_ARG(bytes && rows >= 0 && vocab >= 0, "vireo_sample_workspace_bytes: bad arguments");
  size_t rv = (size_t)rows * vocab;
  // counts first (the part that must start zeroed), then x, e and the kept weights.
  *bytes = align256(rv * 4) + 2 * align256(rv * 4) + align256((size_t)rows * kCap * 8);
  return VIREO_OK;
}

int vireo_sample(vireo_stream_t stream, int logits_dtype, const void* logits, int ld, int rows, int vocab,
                 const vireo_sampling_params* params, const int32_t* history, int32_t* out, void* workspace,
                 size_t workspace_bytes) {
  if (rows == 0) return VIREO_OK;
  VIREO_CHECK_ARG(logits && params && out && workspace && rows > 0 && vocab > 0 && ld >= vocab,
                  "vireo_sample: bad arguments rows=%d vocab=%d ld=%d", rows, vocab, ld);
  size_t need = 0;
  vireo_sample_workspace_bytes(&need, rows, vocab);
  VIREO_CHECK_ARG(workspace_bytes >= need, "vireo_sample: workspace of %zu bytes, need %zu (rows=%d vocab=%d)",
                  workspace_bytes, need, rows, vocab);
  size_t rv = (size_t)rows * vocab;
  char* p = (char*)workspace;
  int32_t* counts = (int32_t*)p;
  float* x = (float*)(p + align256(rv * 4));
  float* e = (float*)(p + 2 * align256(rv * 4));
  unsigned long long* w = (unsigned long long*)(p + 3 * align256(rv * 4));
  cudaStream_t s = as_stream(stream);
  VIREO_DISPATCH_FLOAT("vireo_sample", logits_dtype, L, {
    sample_kernel<L><<<rows, kThreads, 0, s>>>((const L*)logits, ld, vocab, params, history, out, x, e, counts, w);
  });
  return launch_status("vireo_sample", "rows=%d vocab=%d logits %s", rows, vocab, dtype_name(logits_dtype));
}

int vireo_philox_uniform(vireo_stream_t stream, float* out, const uint64_t* seeds, const uint64_t* indices, int n,
                         uint32_t stream_id) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && seeds && indices && n > 0, "vireo_philox_uniform: bad arguments n=%d", n);
  uniform_kernel<<<ceil_div(n, 256), 256, 0, as_stream(stream)>>>(out, seeds, indices, n, stream_id);
  return launch_status("vireo_philox_uniform", "n=%d", n);
}

} // extern "C"
