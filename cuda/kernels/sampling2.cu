// sampling2.cu: the v2 sampler: runtime/sampling.Sampler.Sample for every row of a batch,
// token for token, with any number of candidates, on many blocks per row.
//
// Napkin math (Llama-3 vocabulary, V = 128,256, f16 logits, one H200):
//   bytes per row: logits 0.26 MB read once; x and e (fp32, 0.51 MB each) written once
//     and read back by up to 8 passes (K2, six radix passes, I): ~7 MB of L2 traffic,
//     L2-resident up to ~24 rows (50 MB L2), DRAM beyond (~7.5 MB/row at 4.3 TB/s =
//     1.7 µs/row).
//   flops: V double-precision exp (~30 DP flops each): 4 MFLOP DP per row, spread over
//     the row's blocks (32 blocks: ~1.5 µs at 64 DP lanes/SM/clock).
//   launches: 11 kernels (K0, K1, K2, S0-S5, I, F); a pass with nothing left to do exits
//     at once. Expected: ~15-20 µs per step at batch 1-8 (launch and latency bound: each
//     pass is a few µs of dependent work), ~2 µs per row at batch 64 (bandwidth bound).
//     The v1 kernel (sampling.cu) takes 0.3-1 ms per row on one block, and gives rows
//     with more than 4,096 candidates to the host.
//   binds: launch latency at small batch, L2/DRAM bandwidth at large batch.
//
// Specification: runtime/sampling/doc.go. Its masses are integers (floor(e·2^40)), so
// every sum is exact in any order: the blocks of a row reduce with atomics, and the
// top-p cut and the drawn token are found by selection over the canonical order (radix
// select on the logits' order keys, 8 bits per pass, with per-bucket counts and masses;
// tokens of equal logit have equal masses), never by sorting. Passes (grid chunks ×
// rows unless said otherwise; the row's last block to finish a pass, found by an atomic
// ticket, moves the row's state machine on):
//   K0 (rows)  penalties: history counts by atomics (in a zeroed scratch), each distinct
//              history id's penalized logit into x, flagged in a bitmap
//   K1         x = the canonical logit (NaN → -Inf, -0 → +0) unless penalized; the row's
//              argmax by a 64-bit atomicMax of (order key << 32 | ~id)
//   K2         e = float32(exp(double((x - xmax)/T))), masses, Z, the min-p mass, the
//              histogram of the order key's top byte; last block: start the top-k
//              (count) and top-p (mass) selections, or, with min-p only, the draw's; with
//              no filter, find the chunk where the id-order draw lands
//   S0-S5      one byte of each running selection per pass; when top-k/top-p are
//              settled, the kept mass is known and the draw's selection starts (the
//              first canonical position whose running mass exceeds the target)
//   I          only when the drawn logit is tied and the draw is not its lowest id: the
//              tied tokens per chunk, then the chunk and rank of the drawn one
//   F (rows)   the token (scanning one chunk when needed), and the row's state reset
//
// The Go model runtime/backend/cuda/kmodel/sample2.go mirrors these passes function for
// function (its tests check it draws runtime/sampling's tokens and that every pass
// reads every element exactly once through the right load path); change both together.
//
// Where bit equality can fail: exp, as in v1 (CUDA's double exp and Go's math.Exp may
// differ in the last double ulp; the float32 rounding then differs with probability
// about 2^-29 per weight).
#include <float.h>

#include "common.cuh"

using namespace vireo;

namespace {

constexpr int kMaxThreads = 1024;
constexpr int kSel = 3; // top-k, top-p, the draw
enum { kSelCount = 1, kSelMass = 2 };
enum { kModeSelect = 0, kModeDone = 1, kModeIDSel = 2, kModeScanID = 3, kModeScanMass = 4 };
enum { kSlotK = 0, kSlotP = 1, kSlotD = 2 };

typedef unsigned long long u64;

// One radix selection over the order keys, descending (kmodel: selection).
struct Sel {
  int kind;          // 0: unused
  unsigned prefix, mask;
  int shift;         // the next digit's shift; -8 once settled
  u64 target;        // count or mass to reach
  u64 count_above, mass_above;
  u64 g, w;          // settled: tokens of the key, the mass of each
  unsigned min_id;   // settled: the lowest id of the key
  unsigned pad;
};

// A row's state (kmodel: rowState). All zero between calls (F resets it).
struct RowState {
  u64 best_key; // atomicMax of order_key(x) << 32 | ~id
  u64 z, mass_m;
  unsigned arrive; // tickets of the pass running
  int mode;
  int token, chunk;
  unsigned key;
  unsigned pad;
  u64 rank, target, mass_start;
  Sel sel[kSel];
};

// A histogram of one selection's pass: counts, masses and ~(lowest id) per byte value
// (~id so that zero means none and atomicMax keeps the lowest id).
struct Hist {
  unsigned count[256];
  u64 mass[256];
  unsigned not_id[256];
};

struct Work {
  float* x;        // [rows][vp]
  float* e;        // [rows][vp]
  int32_t* counts; // [rows][V], zero between calls
  uint32_t* pen;   // [rows][words], zero between calls
  RowState* st;    // [rows]
  Hist* hist;      // [rows][4]: the base histogram (K2), then one per selection
  u64* chunk_val;  // [rows][chunks]
  int vp, words, chunks;
};

size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

// The workspace's layout; returns its size.
size_t layout(Work* w, char* base, int rows, int V, int chunk) {
  size_t vp = ((size_t)V + 3) / 4 * 4, words = ((size_t)V + 31) / 32, chunks = ((size_t)V + chunk - 1) / chunk;
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* p = base ? base + off : nullptr;
    off += align256(bytes);
    return p;
  };
  // The parts that must start zeroed first (counts, pen, state, histograms).
  char* counts = take((size_t)rows * V * 4);
  char* pen = take((size_t)rows * words * 4);
  char* st = take((size_t)rows * sizeof(RowState));
  char* hist = take((size_t)rows * 4 * sizeof(Hist));
  char* x = take((size_t)rows * vp * 4);
  char* e = take((size_t)rows * vp * 4);
  char* cv = take((size_t)rows * chunks * 8);
  if (w) {
    *w = Work{(float*)x, (float*)e, (int32_t*)counts, (uint32_t*)pen, (RowState*)st, (Hist*)hist, (u64*)cv,
              (int)vp, (int)words, (int)chunks};
  }
  return off;
}

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

// runtime/sampling.UniformBits.
__device__ __forceinline__ uint32_t uniform_bits(uint64_t seed, uint64_t index) {
  uint4 c = make_uint4((uint32_t)index, (uint32_t)(index >> 32), 0u, 0u);
  return philox4x32_10(c, make_uint2((uint32_t)seed, (uint32_t)(seed >> 32))).x >> 8;
}

__device__ __forceinline__ uint32_t order_key(float v) {
  uint32_t b = __float_as_uint(v);
  return (b >> 31) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t k) {
  return (k >> 31) ? __uint_as_float(k & 0x7fffffffu) : __uint_as_float(~k);
}

__device__ __forceinline__ float canon(float v) {
  if (v != v) return -INFINITY;
  return v == 0.f ? 0.f : v;
}

__device__ __forceinline__ float weight(float v, float xmax, float T) {
  if (xmax > FLT_MAX) return v == xmax ? 1.f : 0.f;
  return (float)exp((double)__fdiv_rn(__fsub_rn(v, xmax), T));
}

__device__ __forceinline__ u64 mass(float e) { return (u64)__dmul_rz((double)e, 1099511627776.0); }

__device__ __forceinline__ u64 top_p_threshold(float top_p, u64 z) {
  uint32_t b = __float_as_uint(top_p);
  uint32_t ex = (b >> 23) & 0xff;
  u64 mant = b & 0x7fffff;
  int shift = 149;
  if (ex != 0) mant |= 1ull << 23, shift = 150 - (int)ex;
  u64 lo = mant * z, hi = __umul64hi(mant, z);
  if (shift >= 128) return (hi | lo) ? 1ull : 0ull;
  u64 q, rem;
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

__device__ __forceinline__ u64 draw_target(uint32_t r, u64 total) {
  u64 lo = (u64)r * total, hi = __umul64hi((u64)r, total);
  return (hi << 40) | (lo >> 24);
}

__device__ __forceinline__ u64 ceil_div(u64 a, u64 b) { return b == 0 ? a : (a + b - 1) / b; }

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ u64 warp_max_u64(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    u64 o2 = __shfl_xor_sync(0xffffffffu, v, o);
    v = o2 > v ? o2 : v;
  }
  return v;
}

// Sum over the block of a u64 (every thread gets it). sh: 32 u64 of shared memory.
__device__ __forceinline__ u64 block_sum_u64(u64 v, u64* sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum_u64(v);
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  u64 t = lane < nw ? sh[lane] : 0ull;
  return warp_sum_u64(t);
}

struct RowParams {
  bool greedy, use_p, use_m;
  float xmax, T, top_p, min_p;
  u64 k;
};

__device__ __forceinline__ RowParams row_params(u64 best_key, const vireo_sampling_params& P, int V) {
  RowParams rp;
  rp.xmax = key_value((uint32_t)(best_key >> 32));
  rp.T = P.temperature;
  rp.greedy = !(rp.T > 0.f) || rp.xmax == -INFINITY;
  rp.k = (P.top_k > 0 && P.top_k < V) ? (u64)P.top_k : 0ull;
  rp.top_p = P.top_p;
  rp.use_p = rp.top_p > 0.f && rp.top_p < 1.f;
  rp.min_p = P.min_p;
  rp.use_m = rp.min_p > 0.f;
  if (rp.min_p > 1.f) rp.min_p = 1.f;
  return rp;
}

// The row's ticket: true in the last block of the row to finish this pass (which then
// sees every other block's atomics), after which the counter is back to zero.
__device__ __forceinline__ bool last_block(RowState* st, int chunks) {
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned t = atomicAdd(&st->arrive, 1u);
    s_last = t == (unsigned)chunks - 1;
    if (s_last) st->arrive = 0;
  }
  __syncthreads();
  if (s_last) __threadfence();
  return s_last;
}

// Picks a selection's digit from hist (warp 0 of the last block): the first bucket, from
// 255 down, where the running count (selCount) or mass (selMass) reaches the target.
// Lane l holds buckets 255-8l .. 248-8l; a scan of the lanes' totals gives each lane the
// count and mass above its buckets. kmodel: resolve.
__device__ void resolve(Sel* s, const Hist* h, int fault) {
  const int lane = threadIdx.x & 31;
  unsigned c[8];
  u64 m[8], tc = 0, tm = 0;
#pragma unroll
  for (int j = 0; j < 8; j++) {
    int b = 255 - 8 * lane - j;
    c[j] = __ldcg(&h->count[b]);
    m[j] = __ldcg(&h->mass[b]);
    tc += c[j], tm += m[j];
  }
  // Exclusive scan of (tc, tm) over the lanes, lane 0 first.
  u64 ic = tc, im = tm;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    u64 pc = __shfl_up_sync(0xffffffffu, ic, o), pm = __shfl_up_sync(0xffffffffu, im, o);
    if (lane >= o) ic += pc, im += pm;
  }
  const int kind = s->kind;
  const u64 target = s->target;
  u64 ca = s->count_above + ic - tc, ma = s->mass_above + im - tm;
  int found = -1;
#pragma unroll
  for (int j = 0; j < 8; j++) {
    bool reach = kind == kSelMass ? ma + m[j] >= target : ca + c[j] >= target;
    if (found < 0) {
      if (reach) found = j;
      else ca += c[j], ma += m[j];
    }
  }
  unsigned hit = __ballot_sync(0xffffffffu, found >= 0);
  if (hit == 0 || lane != __ffs(hit) - 1) return; // (hit == 0: unreachable, the target is within the total)
  int b = 255 - 8 * lane - found;
  if (fault == 1 && b > 0) { // the broken variant: one bucket late
    ca += __ldcg(&h->count[b]);
    ma += __ldcg(&h->mass[b]);
    b--;
  }
  s->count_above = ca;
  s->mass_above = ma;
  s->prefix |= (unsigned)b << s->shift;
  s->mask |= 0xffu << s->shift;
  if (s->shift == 0) {
    u64 g = __ldcg(&h->count[b]);
    s->g = g;
    s->w = g ? __ldcg(&h->mass[b]) / g : 0ull;
    s->min_id = ~__ldcg(&h->not_id[b]);
  }
  s->shift -= 8;
}

__device__ __forceinline__ bool sel_active(const Sel& s) { return s.kind != 0 && s.shift >= 0; }
__device__ __forceinline__ bool sel_settled(const Sel& s) { return s.kind != 0 && s.shift < 0; }

// kmodel: afterDraw (one thread).
__device__ void after_draw(RowState* st) {
  Sel& d = st->sel[kSlotD];
  if (!sel_settled(d)) return;
  u64 c = ceil_div(d.target - d.mass_above, d.w);
  if (c == 1) {
    st->mode = kModeDone;
    st->token = (int)d.min_id;
  } else {
    st->mode = kModeIDSel;
    st->key = d.prefix;
    st->target = c;
  }
}

// Starts the draw's selection (thread 0 sets it up, warp 0 resolves its first digit from
// the base histogram, thread 0 checks it). Called by the whole last block.
__device__ void start_draw(RowState* st, const Hist* base, u64 total, uint32_t r, int fault, bool start) {
  if (start && threadIdx.x == 0) {
    Sel& d = st->sel[kSlotD];
    d = Sel{};
    d.kind = kSelMass;
    d.shift = 24;
    d.target = draw_target(r, total) + 1;
  }
  __syncthreads();
  if (start && threadIdx.x < 32) resolve(&st->sel[kSlotD], base, fault);
  __syncthreads();
  if (start && threadIdx.x == 0) after_draw(st);
}

// Vector loop of a chunk: fn(i0, n, thread) for each group of VEC elements starting at
// i0 (n of them in range; n == VEC and aligned: one 16-byte access). kmodel: forChunk.
template <int VEC, typename F>
__device__ __forceinline__ void for_chunk(int lo, int hi, F fn) {
  int nvec = (hi - lo + VEC - 1) / VEC;
  for (int v = threadIdx.x; v < nvec; v += blockDim.x) {
    int i0 = lo + v * VEC;
    fn(i0, min(VEC, hi - i0));
  }
}

// ---- K0: penalties ------------------------------------------------------------------

template <typename L>
__global__ void __launch_bounds__(kMaxThreads)
    k0_penalties(const L* __restrict__ logits, int ld, int V, const vireo_sampling_params* __restrict__ params,
                 const int32_t* __restrict__ history, Work w) {
  const int r = blockIdx.x;
  const vireo_sampling_params P = params[r];
  const float rep = P.repetition_penalty, pres = P.presence_penalty, freq = P.frequency_penalty;
  const bool use_rep = rep > 0.f && rep != 1.f;
  if (!history || P.history_len <= 0 || !(use_rep || pres != 0.f || freq != 0.f)) return;
  const int32_t* h = history + P.history_off;
  int32_t* counts = w.counts + (size_t)r * V;
  float* x = w.x + (size_t)r * w.vp;
  uint32_t* pen = w.pen + (size_t)r * w.words;
  for (int j = threadIdx.x; j < P.history_len; j += blockDim.x) {
    int t = h[j];
    if (t >= 0 && t < V) atomicAdd(&counts[t], 1);
  }
  __syncthreads();
  for (int j = threadIdx.x; j < P.history_len; j += blockDim.x) {
    int t = h[j];
    if (t < 0 || t >= V) continue;
    int c = atomicExch(&counts[t], 0);
    if (c == 0) continue;
    float v = canon(to_f32(logits[(size_t)r * ld + t]));
    if (use_rep) v = v > 0.f ? __fdiv_rn(v, rep) : __fmul_rn(v, rep);
    v = __fsub_rn(v, pres);
    v = __fsub_rn(v, __fmul_rn(freq, (float)c));
    x[t] = canon(v);
    atomicOr(&pen[t >> 5], 1u << (t & 31));
  }
}

// ---- K1: copy and argmax ------------------------------------------------------------

template <typename L> struct Vec;
template <> struct Vec<float> { static constexpr int n = 4; };
template <> struct Vec<__half> { static constexpr int n = 8; };
template <> struct Vec<__nv_bfloat16> { static constexpr int n = 8; };

template <typename L>
__global__ void __launch_bounds__(kMaxThreads)
    k1_copy(const L* __restrict__ logits, int ld, int V, int chunk, bool aligned, Work w) {
  constexpr int VEC = Vec<L>::n;
  __shared__ u64 sh[32];
  const int r = blockIdx.y, c = blockIdx.x;
  const int lo = c * chunk, hi = min(V, lo + chunk);
  const L* lr = logits + (size_t)r * ld;
  float* x = w.x + (size_t)r * w.vp;
  uint32_t* pen = w.pen + (size_t)r * w.words;
  u64 best = 0;
  for_chunk<VEC>(lo, hi, [&](int i0, int n) {
    float v[VEC];
    if (aligned && n == VEC) {
      uint4 raw = *reinterpret_cast<const uint4*>(lr + i0);
      const L* p = reinterpret_cast<const L*>(&raw);
#pragma unroll
      for (int j = 0; j < VEC; j++) v[j] = to_f32(p[j]);
    } else {
#pragma unroll
      for (int j = 0; j < VEC; j++) v[j] = j < n ? to_f32(lr[i0 + j]) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < VEC; j++) {
      if (j >= n) break;
      int i = i0 + j;
      float xv = canon(v[j]);
      if ((pen[i >> 5] >> (i & 31)) & 1u) xv = x[i];
      v[j] = xv;
      u64 k = ((u64)order_key(xv) << 32) | (u64)(~(uint32_t)i);
      best = k > best ? k : best;
    }
    if (n == VEC) {
#pragma unroll
      for (int j = 0; j < VEC; j += 4) *reinterpret_cast<float4*>(x + i0 + j) = make_float4(v[j], v[j + 1], v[j + 2], v[j + 3]);
    } else {
      for (int j = 0; j < n; j++) x[i0 + j] = v[j];
    }
  });
  // The block's best, then the row's.
  best = warp_max_u64(best);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int i = 1; i < (int)(blockDim.x >> 5); i++) best = sh[i] > best ? sh[i] : best;
    atomicMax(&w.st[r].best_key, best);
  }
  // Clear the chunk's penalty flags (every read of them above is done).
  for (int wd = lo / 32 + threadIdx.x; wd < min(w.words, (lo + chunk) / 32); wd += blockDim.x) pen[wd] = 0;
}

// ---- K2: weights, masses and the first digit ------------------------------------------

__global__ void __launch_bounds__(kMaxThreads)
    k2_weights(int V, int chunk, const vireo_sampling_params* __restrict__ params, Work w, uint32_t fault) {
  __shared__ unsigned s_count[256];
  __shared__ u64 s_mass[256];
  __shared__ u64 sh[32];
  const int r = blockIdx.y, c = blockIdx.x;
  RowState* st = w.st + r;
  const vireo_sampling_params P = params[r];
  const RowParams rp = row_params(st->best_key, P, V);
  if (rp.greedy) return; // every block of the row returns: F writes the argmax
  for (int b = threadIdx.x; b < 256; b += blockDim.x) s_count[b] = 0, s_mass[b] = 0;
  __syncthreads();
  const int lo = c * chunk, hi = min(V, lo + chunk);
  const float* x = w.x + (size_t)r * w.vp;
  float* e = w.e + (size_t)r * w.vp;
  u64 z = 0, zm = 0;
  for_chunk<4>(lo, hi, [&](int i0, int n) {
    float xv[4], ev[4];
    if (n == 4) {
      float4 q = *reinterpret_cast<const float4*>(x + i0);
      xv[0] = q.x, xv[1] = q.y, xv[2] = q.z, xv[3] = q.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) xv[j] = j < n ? x[i0 + j] : 0.f;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      ev[j] = 0.f;
      if (j >= n) continue;
      ev[j] = weight(xv[j], rp.xmax, rp.T);
      u64 m = mass(ev[j]);
      z += m;
      if (rp.use_m && ev[j] >= rp.min_p) zm += m;
      unsigned b = order_key(xv[j]) >> 24;
      atomicAdd(&s_count[b], 1u);
      if (m) atomicAdd(&s_mass[b], m);
    }
    if (n == 4) *reinterpret_cast<float4*>(e + i0) = make_float4(ev[0], ev[1], ev[2], ev[3]);
    else
      for (int j = 0; j < n; j++) e[i0 + j] = ev[j];
  });
  z = block_sum_u64(z, sh);
  zm = block_sum_u64(zm, sh);
  Hist* base = w.hist + (size_t)r * 4;
  if (threadIdx.x == 0) {
    w.chunk_val[(size_t)r * w.chunks + c] = z;
    atomicAdd(&st->z, z);
    if (zm) atomicAdd(&st->mass_m, zm);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += blockDim.x) {
    if (s_count[b]) atomicAdd(&base->count[b], s_count[b]);
    if (s_mass[b]) atomicAdd(&base->mass[b], s_mass[b]);
  }
  if (!last_block(st, w.chunks)) return;

  // The row's last block: start the selections.
  const u64 Z = __ldcg(&st->z);
  if (threadIdx.x == 0) {
    if (rp.k > 0) {
      Sel& s = st->sel[kSlotK];
      s = Sel{};
      s.kind = kSelCount, s.shift = 24, s.target = rp.k;
    }
    if (rp.use_p) {
      Sel& s = st->sel[kSlotP];
      s = Sel{};
      s.kind = kSelMass, s.shift = 24, s.target = top_p_threshold(rp.top_p, Z);
    }
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    if (rp.k > 0) resolve(&st->sel[kSlotK], base, fault);
    __syncwarp();
    if (rp.use_p) resolve(&st->sel[kSlotP], base, fault);
  }
  __syncthreads();
  if (rp.k > 0 || rp.use_p) return;
  const uint32_t ubits = uniform_bits(P.seed, P.token_index);
  if (rp.use_m) {
    start_draw(st, base, __ldcg(&st->mass_m), ubits, fault, true);
    return;
  }
  // No filter: the id-order draw; find the chunk where the running mass passes the
  // target (every chunk's mass is known).
  if (threadIdx.x == 0) {
    u64 target = draw_target(ubits, Z), cum = 0;
    const u64* cv = w.chunk_val + (size_t)r * w.chunks;
    for (int ch = 0; ch < w.chunks; ch++) {
      u64 cm = __ldcg(&cv[ch]);
      if (cum + cm > target) {
        st->mode = kModeScanMass, st->chunk = ch, st->target = target, st->mass_start = cum;
        break;
      }
      cum += cm;
    }
  }
}

// ---- S: one radix pass of every running selection -------------------------------------

__global__ void __launch_bounds__(kMaxThreads)
    s_pass(int V, int chunk, const vireo_sampling_params* __restrict__ params, Work w, uint32_t fault) {
  __shared__ unsigned s_count[kSel][256];
  __shared__ u64 s_mass[kSel][256];
  __shared__ unsigned s_not_id[kSel][256];
  __shared__ Sel s_sel[kSel];
  __shared__ int s_any;
  const int r = blockIdx.y, c = blockIdx.x;
  RowState* st = w.st + r;
  if (threadIdx.x == 0) {
    int any = 0;
    for (int s = 0; s < kSel; s++) {
      s_sel[s] = st->sel[s];
      any |= sel_active(s_sel[s]) ? 1 << s : 0;
    }
    s_any = st->mode == kModeSelect ? any : 0;
  }
  __syncthreads();
  const int any = s_any;
  if (!any) return; // every block of the row sees the same state
  for (int t = threadIdx.x; t < kSel * 256; t += blockDim.x) {
    (&s_count[0][0])[t] = 0, (&s_mass[0][0])[t] = 0, (&s_not_id[0][0])[t] = 0;
  }
  __syncthreads();
  const int lo = c * chunk, hi = min(V, lo + chunk);
  const float* x = w.x + (size_t)r * w.vp;
  const float* e = w.e + (size_t)r * w.vp;
  for_chunk<4>(lo, hi, [&](int i0, int n) {
    float xv[4], ev[4];
    if (n == 4) {
      float4 q = *reinterpret_cast<const float4*>(x + i0), p = *reinterpret_cast<const float4*>(e + i0);
      xv[0] = q.x, xv[1] = q.y, xv[2] = q.z, xv[3] = q.w;
      ev[0] = p.x, ev[1] = p.y, ev[2] = p.z, ev[3] = p.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) xv[j] = j < n ? x[i0 + j] : 0.f, ev[j] = j < n ? e[i0 + j] : 0.f;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      if (j >= n) break;
      unsigned key = order_key(xv[j]);
      u64 m = mass(ev[j]);
#pragma unroll
      for (int s = 0; s < kSel; s++) {
        if (!((any >> s) & 1)) continue;
        const Sel& sl = s_sel[s];
        if ((key & sl.mask) != sl.prefix) continue;
        unsigned b = (key >> sl.shift) & 0xffu;
        atomicAdd(&s_count[s][b], 1u);
        if (m) atomicAdd(&s_mass[s][b], m);
        if (sl.shift == 0) atomicMax(&s_not_id[s][b], ~(unsigned)(i0 + j));
      }
    }
  });
  __syncthreads();
  Hist* hist = w.hist + (size_t)r * 4 + 1;
  for (int t = threadIdx.x; t < kSel * 256; t += blockDim.x) {
    int s = t >> 8, b = t & 255;
    if (!((any >> s) & 1)) continue;
    if (s_count[s][b]) atomicAdd(&hist[s].count[b], s_count[s][b]);
    if (s_mass[s][b]) atomicAdd(&hist[s].mass[b], s_mass[s][b]);
    if (s_not_id[s][b]) atomicMax(&hist[s].not_id[b], s_not_id[s][b]);
  }
  if (!last_block(st, w.chunks)) return;

  // The row's last block: resolve the digits, clear the histograms, move on.
  if (threadIdx.x < 32) {
    for (int s = 0; s < kSel; s++) {
      if ((any >> s) & 1) resolve(&st->sel[s], &hist[s], fault);
      __syncwarp();
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < kSel * 256; t += blockDim.x) {
    int s = t >> 8, b = t & 255;
    if (!((any >> s) & 1)) continue;
    hist[s].count[b] = 0, hist[s].mass[b] = 0, hist[s].not_id[b] = 0;
  }
  __shared__ int s_start;
  __shared__ u64 s_total;
  const vireo_sampling_params P = params[r];
  if (threadIdx.x == 0) {
    // kmodel: advance.
    s_start = 0;
    const Sel &sk = st->sel[kSlotK], &sp = st->sel[kSlotP], &sd = st->sel[kSlotD];
    if (sd.kind != 0) {
      after_draw(st);
    } else if (!sel_active(sk) && !sel_active(sp)) {
      u64 total = ~0ull;
      if (sel_settled(sk)) {
        u64 t = sk.mass_above + (sk.target - sk.count_above) * sk.w;
        total = t < total ? t : total;
      }
      if (sel_settled(sp)) {
        u64 t = sp.mass_above + ceil_div(sp.target - sp.mass_above, sp.w) * sp.w;
        total = t < total ? t : total;
      }
      if (P.min_p > 0.f) {
        u64 t = st->mass_m;
        total = t < total ? t : total;
      }
      s_total = total;
      s_start = 1;
    }
  }
  __syncthreads();
  start_draw(st, w.hist + (size_t)r * 4, s_total, uniform_bits(P.seed, P.token_index), fault, s_start != 0);
}

// ---- I: the rank of the drawn token among its ties ------------------------------------

__global__ void __launch_bounds__(kMaxThreads) i_pass(int V, int chunk, Work w) {
  __shared__ u64 sh[32];
  const int r = blockIdx.y, c = blockIdx.x;
  RowState* st = w.st + r;
  if (st->mode != kModeIDSel) return;
  const unsigned key = st->key;
  const int lo = c * chunk, hi = min(V, lo + chunk);
  const float* x = w.x + (size_t)r * w.vp;
  u64 n = 0;
  for_chunk<4>(lo, hi, [&](int i0, int cnt) {
    if (cnt == 4) {
      float4 q = *reinterpret_cast<const float4*>(x + i0);
      n += (order_key(q.x) == key) + (order_key(q.y) == key) + (order_key(q.z) == key) + (order_key(q.w) == key);
    } else {
      for (int j = 0; j < cnt; j++) n += order_key(x[i0 + j]) == key;
    }
  });
  n = block_sum_u64(n, sh);
  if (threadIdx.x == 0) w.chunk_val[(size_t)r * w.chunks + c] = n;
  if (!last_block(st, w.chunks)) return;
  if (threadIdx.x == 0) {
    const u64* cv = w.chunk_val + (size_t)r * w.chunks;
    u64 cum = 0;
    for (int ch = 0; ch < w.chunks; ch++) {
      u64 cn = __ldcg(&cv[ch]);
      if (cum + cn >= st->target) {
        st->mode = kModeScanID, st->chunk = ch, st->rank = st->target - cum;
        break;
      }
      cum += cn;
    }
  }
}

// ---- F: the token, and the row's state reset ------------------------------------------

__global__ void __launch_bounds__(kMaxThreads)
    f_final(int V, int chunk, const vireo_sampling_params* __restrict__ params, Work w, int32_t* __restrict__ out) {
  __shared__ u64 sh[33];
  __shared__ int s_hit;
  const int r = blockIdx.x, T = blockDim.x, t = threadIdx.x;
  RowState* st = w.st + r;
  const RowParams rp = row_params(st->best_key, params[r], V);
  const int mode = st->mode;
  if (rp.greedy) {
    if (t == 0) out[r] = (int32_t)(~(uint32_t)st->best_key);
  } else if (mode == kModeDone) {
    if (t == 0) out[r] = st->token;
  } else if (mode == kModeScanID || mode == kModeScanMass) {
    // T contiguous segments of the chunk, one per thread: totals, an exclusive scan of
    // them, and the first thread whose segment passes the mark walks it.
    const int lo = st->chunk * chunk, hi = min(V, lo + chunk);
    const int seg = (chunk + T - 1) / T;
    const int s0 = lo + t * seg, s1 = min(hi, s0 + seg);
    const float* x = w.x + (size_t)r * w.vp;
    const float* e = w.e + (size_t)r * w.vp;
    const unsigned key = st->key;
    const bool by_id = mode == kModeScanID;
    const u64 mark = by_id ? st->rank : st->target;
    auto val = [&](int i) -> u64 { return by_id ? (u64)(order_key(x[i]) == key) : mass(e[i]); };
    u64 tot = 0;
    for (int i = s0; i < s1; i++) tot += val(i);
    // Inclusive scan of the totals over the block: warps, then the warps' totals.
    const int lane = t & 31, wid = t >> 5, nw = T >> 5;
    u64 inc = tot;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      u64 p = __shfl_up_sync(0xffffffffu, inc, o);
      if (lane >= o) inc += p;
    }
    if (lane == 31) sh[wid] = inc;
    if (t == 0) s_hit = T;
    __syncthreads();
    if (t == 0) {
      u64 run = by_id ? 0ull : st->mass_start;
      for (int i = 0; i < nw; i++) {
        u64 v = sh[i];
        sh[i] = run;
        run += v;
      }
    }
    __syncthreads();
    u64 cum = sh[wid] + inc - tot; // before this thread's segment
    bool hit = by_id ? cum + tot >= mark : cum + tot > mark;
    if (hit && s0 < s1) atomicMin(&s_hit, t);
    __syncthreads();
    if (t == s_hit) {
      for (int i = s0; i < s1; i++) {
        cum += val(i);
        if (by_id ? cum >= mark : cum > mark) {
          out[r] = i;
          break;
        }
      }
    }
  } else if (t == 0) {
    out[r] = -3; // unreachable: the state machine ends in one of the modes above
  }
  __syncthreads();
  // Reset the row for the next call: the state and every histogram.
  if (t == 0) *st = RowState{};
  Hist* h = w.hist + (size_t)r * 4;
  for (int i = t; i < 4 * 256; i += T) {
    Hist& hh = h[i >> 8];
    hh.count[i & 255] = 0, hh.mass[i & 255] = 0, hh.not_id[i & 255] = 0;
  }
}

} // namespace

extern "C" {

int vireo_sample2_workspace_bytes(size_t* bytes, int rows, int vocab, int chunk) {
  VIREO_CHECK_ARG(bytes && rows >= 0 && vocab >= 0 && chunk >= 256 && chunk % 256 == 0,
                  "vireo_sample2_workspace_bytes: bad arguments rows=%d vocab=%d chunk=%d", rows, vocab, chunk);
  *bytes = layout(nullptr, nullptr, rows, vocab, chunk);
  return VIREO_OK;
}

int vireo_sample2(vireo_stream_t stream, int logits_dtype, const void* logits, int ld, int rows, int vocab,
                  const vireo_sampling_params* params, const int32_t* history, int32_t* out, void* workspace,
                  size_t workspace_bytes, const vireo_sample2_config* cfg) {
  if (rows == 0) return VIREO_OK;
  VIREO_CHECK_ARG(cfg, "vireo_sample2: no configuration");
  const int T = cfg->threads, C = cfg->chunk;
  VIREO_CHECK_ARG(logits && params && out && workspace && rows > 0 && rows <= 65535 && vocab > 0 &&
                      vocab <= VIREO_SAMPLE2_MAX_VOCAB && ld >= vocab,
                  "vireo_sample2: bad arguments rows=%d (<= 65535) vocab=%d (<= %d) ld=%d", rows, vocab,
                  VIREO_SAMPLE2_MAX_VOCAB, ld);
  VIREO_CHECK_ARG(T >= 64 && T <= kMaxThreads && T % 32 == 0 && C >= 256 && C % 256 == 0 && C <= (1 << 20),
                  "vireo_sample2: configuration threads=%d chunk=%d (threads a multiple of 32 in [64, 1024], "
                  "chunk a multiple of 256 up to 2^20)",
                  T, C);
  Work w;
  size_t need = layout(&w, (char*)workspace, rows, vocab, C);
  VIREO_CHECK_ARG(workspace_bytes >= need, "vireo_sample2: workspace of %zu bytes, need %zu (rows=%d vocab=%d chunk=%d)",
                  workspace_bytes, need, rows, vocab, C);
  cudaStream_t s = as_stream(stream);
  dim3 grid(w.chunks, rows);
  const uint32_t fault = (uint32_t)cfg->fault;
  int esize = logits_dtype == VIREO_F32 ? 4 : 2;
  bool aligned = ((uintptr_t)logits % 16 == 0) && ((size_t)ld * esize % 16 == 0);
  VIREO_DISPATCH_FLOAT("vireo_sample2", logits_dtype, L, {
    k0_penalties<L><<<rows, T, 0, s>>>((const L*)logits, ld, vocab, params, history, w);
    k1_copy<L><<<grid, T, 0, s>>>((const L*)logits, ld, vocab, C, aligned, w);
  });
  int st = launch_status("vireo_sample2", "K0/K1 rows=%d vocab=%d threads=%d chunk=%d", rows, vocab, T, C);
  if (st) return st;
  k2_weights<<<grid, T, 0, s>>>(vocab, C, params, w, fault);
  for (int p = 0; p < VIREO_SAMPLE2_PASSES; p++) s_pass<<<grid, T, 0, s>>>(vocab, C, params, w, fault);
  i_pass<<<grid, T, 0, s>>>(vocab, C, w);
  f_final<<<rows, T, 0, s>>>(vocab, C, params, w, out);
  return launch_status("vireo_sample2", "rows=%d vocab=%d logits %s threads=%d chunk=%d", rows, vocab,
                       dtype_name(logits_dtype), T, C);
}

} // extern "C"
