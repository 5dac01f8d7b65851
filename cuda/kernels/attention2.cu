// attention2.cu: causal paged attention, kernels v2: split-KV decode (flash-decoding)
// with GQA grouping and 16-byte loads, and a FlashAttention-2-style prefill kernel on
// tensor cores (attention2_prefill.cuh) over the same paged blocks.
//
// Napkin math, Llama-3-8B shape (32 query heads, 8 KV heads of 128, fp16 KV, blocks of
// 16), one H200 (~4.3 TB/s copy, ~990 TFLOP/s dense fp16 by the datasheet, ~660 at the
// mma.sync rate we expect without wgmma):
//   decode, batch 1, context 8,192: K and V of the row are 2 × 8192 × 8 × 128 × 2 B =
//     33.6 MB, read once (a block holds the 4 query heads of a KV head: GQA grouping),
//     flops 4 × 8192 × 32 × 128 = 134 MFLOP (0.3 µs): bandwidth bound, 7.8 µs at
//     4.3 TB/s; with splits of 256 positions the grid is 32 splits × 8 KV heads = 256
//     blocks (~2 per SM), plus the split merge (32 × 32 × 130 floats = 0.5 MB) done by
//     the last split block of each (row, KV head): expected ~10 µs. v1 reads each KV
//     row per warp with 2-byte loads: ~25-40 µs.
//   decode, batch 32, context 2,048: 32 × 8.4 MB = 268 MB: ~65 µs at 4.3 TB/s.
//   prefill, 2,048 tokens, causal: flops 4 × 2048² / 2 × 128 × 32 = 34.4 GFLOP; K/V per
//     (query tile, head) from L2 (the whole layer's K/V is 8.4 MB): compute bound, at
//     ~350 TFLOP/s of mma.sync (half the dense peak, as FA2 reaches on an H100) ~100 µs,
//     ~2× torch SDPA-flash's ~50-60 µs: the target is >= 50% of SDPA. v1 runs one
//     position per warp: 2-5 ms.
//
// One entry, vireo_attention2: the host picks (vireo_attention2_config) whether query
// tiles go to the tensor-core kernel. Then a small planning kernel marks each tile of bm
// rows "prefill" when all its rows are valid, share one block table and are at least two
// (a prefill chunk); the prefill kernel takes those tiles and the decode kernel every
// other row (decode tokens, mixed tiles, idle and invalid rows, unsupported head dims).
// A decode row (the only row of its sequence in a pass) is therefore always computed
// by the decode kernel, whose numerics depend on the row's own context only (see
// split_len below): decode is batch-invariant, and a replayed graph computes what an
// eager step does.
//
// The Go model runtime/backend/cuda/kmodel/attn2.go mirrors the thread→element mapping of
// both kernels function for function; its tests check that every K/V element of a
// row's context is read exactly once per (row, KV head) by the decode kernel, once per
// (query tile, head) by the prefill kernel, nothing past the context, and that every
// output element is written exactly once. Change both together.
#include "attention2_prefill.cuh"

using namespace vireo;

namespace {

constexpr int kMaxGroup = 8; // query heads per decode block
constexpr int kPrefillMinRows = 16; // kmodel.PrefillMinRows
constexpr float kLog2e = 1.4426950408889634f;

struct DecodeArgs {
  void* out;
  const void* q;
  int ld_out, ld_q;
  const void *kc, *vc;
  const int32_t *seqs, *row_seq, *tables;
  const int4* tiles; // the plan (prefill tiles skip here), or NULL
  int bm;
  int heads, kv_heads, head_dim, block_size;
  int split_len, max_splits, gchunks;
  int pstride; // the call's split count (its longest context's): partials per (row, head)
  float scale; // times log2(e): the softmax runs in base 2
  float* partial;       // [rows][heads][pstride][head_dim + 2]: m, l, acc
  unsigned* counters;   // [rows][kv_heads][gchunks], zero between calls
  int fault;
};

// Loads VEC elements of type T at p as floats (VEC·sizeof(T) bytes: 16 or 4).
template <typename T, int VEC>
__device__ __forceinline__ void load_vec(const T* p, float (&f)[VEC]) {
  if constexpr (VEC == 8) {
    uint4 raw = *reinterpret_cast<const uint4*>(p);
    const T* h = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; i++) f[i] = to_f32(h[i]);
  } else {
    static_assert(VEC == 2, "VEC is 8 (16-byte loads) or 2 (4-byte loads)");
    uint32_t raw = *reinterpret_cast<const uint32_t*>(p);
    const T* h = reinterpret_cast<const T*>(&raw);
    f[0] = to_f32(h[0]);
    f[1] = to_f32(h[1]);
  }
}

// The row's context and its splits: split_len grows past the configured one only when
// the context would need more than max_splits, so a row's splits depend on its context
// alone. kmodel: decodeSplits.
__device__ __forceinline__ void decode_splits(int ctx, int split_len, int max_splits, int* len, int* n) {
  int l = max(split_len, (ctx + max_splits - 1) / max_splits);
  *len = l;
  *n = (ctx + l - 1) / l;
}

// Decode: one block per (split, KV head × head chunk, row). The block's query heads
// (up to 8 of one KV head) share every K and V row it loads. Lanes form groups of LPK
// (lanes per key); a group holds one key's head_dim in NV vectors of VEC elements per
// lane (dims (j·LPK + gl)·VEC + v), so a warp works on 32/LPK keys at once and the
// block's streams (warp × group) each walk the positions p0 + stream + NS·i of the
// split with an online softmax of their own, U keys per step (2·U·NV loads in flight
// per lane). The streams merge in order in shared memory; with one split the block
// writes the output, else its (m, l, acc) go to the workspace and the last split block
// of the (row, KV head, head chunk) merges the splits in order.
template <typename T, int VEC, int LPK, int NV, int GM>
__global__ void __launch_bounds__(256, 1) attn_decode(DecodeArgs a) {
  constexpr int KPW = 32 / LPK; // keys per warp
  constexpr int U = 2;          // keys per stream per step
  extern __shared__ float smem[];
  const int hd = a.head_dim;
  const int warps = blockDim.x >> 5;
  const int NS = warps * KPW;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gl = lane % LPK, stream = warp * KPW + lane / LPK;
  const int r = blockIdx.z, split = blockIdx.x;
  const int kvh = blockIdx.y / a.gchunks, gc = blockIdx.y % a.gchunks;
  const int group = a.heads / a.kv_heads;
  const int g0 = gc * kMaxGroup, ng = min(GM, group - g0);
  const int h0 = kvh * group + g0;
  T* out = (T*)a.out;

  if (a.tiles && a.tiles[r / a.bm].x) return; // the prefill kernel computes this row
  const int si = a.row_seq[r];
  if (si < 0) { // idle or invalid: zeros, written once (split 0)
    if (split == 0)
      for (int t = threadIdx.x; t < ng * hd; t += blockDim.x)
        out[(size_t)r * a.ld_out + (h0 + t / hd) * hd + t % hd] = from_f32<T>(0.f);
    return;
  }
  const int q0 = a.seqs[4 * si], pos = a.seqs[4 * si + 2], boff = a.seqs[4 * si + 3];
  const int ctx = pos + (r - q0) + 1;
  int slen, nsplit;
  decode_splits(ctx, a.split_len, a.max_splits, &slen, &nsplit);
  if (split >= nsplit) return;
  const int p0 = split * slen, p1 = min(ctx, p0 + slen);

  // The lane's query slices, scaled (base-2 softmax).
  float qf[GM][NV][VEC];
#pragma unroll
  for (int g = 0; g < GM; g++)
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const int d0 = (j * LPK + gl) * VEC;
      if (g < ng && d0 < hd) {
        load_vec<T, VEC>((const T*)a.q + (size_t)r * a.ld_q + (h0 + g) * hd + d0, qf[g][j]);
#pragma unroll
        for (int v = 0; v < VEC; v++) qf[g][j][v] *= a.scale;
      } else {
#pragma unroll
        for (int v = 0; v < VEC; v++) qf[g][j][v] = 0.f;
      }
    }

  float m[GM], l[GM], acc[GM][NV][VEC];
#pragma unroll
  for (int g = 0; g < GM; g++) {
    m[g] = -INFINITY, l[g] = 0.f;
#pragma unroll
    for (int j = 0; j < NV; j++)
#pragma unroll
      for (int v = 0; v < VEC; v++) acc[g][j][v] = 0.f;
  }

  const T* kc = (const T*)a.kc;
  const T* vc = (const T*)a.vc;
  const int bs = a.block_size;
  // The broken variant drops each split's last position.
  const int pend = a.fault == 1 ? p1 - 1 : p1;
  for (int base = p0 + stream; base < pend; base += NS * U) {
    float kf[U][NV][VEC], vf[U][NV][VEC];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int p = base + u * NS;
      ok[u] = p < pend;
      size_t off = 0;
      if (ok[u]) {
        const int blk = a.tables[boff + p / bs];
        off = (((size_t)blk * a.kv_heads + kvh) * bs + p % bs) * hd;
      }
#pragma unroll
      for (int j = 0; j < NV; j++) {
        const int d0 = (j * LPK + gl) * VEC;
        if (ok[u] && d0 < hd) {
          load_vec<T, VEC>(kc + off + d0, kf[u][j]);
          load_vec<T, VEC>(vc + off + d0, vf[u][j]);
        } else {
#pragma unroll
          for (int v = 0; v < VEC; v++) kf[u][j][v] = 0.f, vf[u][j][v] = 0.f;
        }
      }
    }
#pragma unroll
    for (int g = 0; g < GM; g++) {
      if (g >= ng) break;
      float s[U];
      float smax = -INFINITY;
#pragma unroll
      for (int u = 0; u < U; u++) {
        float d = 0.f;
#pragma unroll
        for (int j = 0; j < NV; j++)
#pragma unroll
          for (int v = 0; v < VEC; v++) d = fmaf(qf[g][j][v], kf[u][j][v], d);
#pragma unroll
        for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        s[u] = ok[u] ? d : -INFINITY;
        smax = fmaxf(smax, s[u]);
      }
      const float mn = fmaxf(m[g], smax);
      const float corr = m[g] == -INFINITY ? 0.f : exp2f(m[g] - mn);
      float pu[U];
      float ls = 0.f;
#pragma unroll
      for (int u = 0; u < U; u++) {
        pu[u] = ok[u] ? exp2f(s[u] - mn) : 0.f;
        ls += pu[u];
      }
      l[g] = l[g] * corr + ls;
      m[g] = mn;
#pragma unroll
      for (int j = 0; j < NV; j++)
#pragma unroll
        for (int v = 0; v < VEC; v++) {
          float t = acc[g][j][v] * corr;
#pragma unroll
          for (int u = 0; u < U; u++) t = fmaf(pu[u], vf[u][j][v], t);
          acc[g][j][v] = t;
        }
    }
  }

  // Merge the streams in order: smem[(stream·GM + g)·(hd + 2) + ...] = m, l, acc.
  const int rs = hd + 2;
#pragma unroll
  for (int g = 0; g < GM; g++) {
    if (g >= ng) break;
    float* sp = smem + (size_t)(stream * GM + g) * rs;
    if (gl == 0) sp[0] = m[g], sp[1] = l[g];
#pragma unroll
    for (int j = 0; j < NV; j++)
#pragma unroll
      for (int v = 0; v < VEC; v++) {
        const int d = (j * LPK + gl) * VEC + v;
        if (d < hd) sp[2 + d] = acc[g][j][v];
      }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < ng * hd; t += blockDim.x) {
    const int g = t / hd, d = t % hd;
    float M = -INFINITY;
    for (int s = 0; s < NS; s++) M = fmaxf(M, smem[(size_t)(s * GM + g) * rs]);
    float L = 0.f, A = 0.f;
    for (int s = 0; s < NS; s++) {
      const float* sp = smem + (size_t)(s * GM + g) * rs;
      const float f = sp[0] == -INFINITY ? 0.f : exp2f(sp[0] - M);
      L += sp[1] * f;
      A += sp[2 + d] * f;
    }
    const int h = h0 + g;
    if (nsplit == 1) {
      out[(size_t)r * a.ld_out + h * hd + d] = from_f32<T>(L > 0.f ? A / L : 0.f);
    } else {
      float* pp = a.partial + (((size_t)r * a.heads + h) * a.pstride + split) * rs;
      if (d == 0) pp[0] = M, pp[1] = L;
      pp[2 + d] = A;
    }
  }
  if (nsplit == 1) return;

  // The last split block of (row, KV head, head chunk) merges the splits in order.
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* c = a.counters + ((size_t)r * a.kv_heads + kvh) * a.gchunks + gc;
    s_last = atomicAdd(c, 1u) == (unsigned)nsplit - 1;
    if (s_last) *c = 0;
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int t = threadIdx.x; t < ng * hd; t += blockDim.x) {
    const int g = t / hd, d = t % hd, h = h0 + g;
    const float* pb = a.partial + ((size_t)r * a.heads + h) * a.pstride * rs;
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, __ldcg(pb + (size_t)s * rs));
    float L = 0.f, A = 0.f;
    for (int s = 0; s < nsplit; s++) {
      const float ms = __ldcg(pb + (size_t)s * rs);
      const float f = ms == -INFINITY ? 0.f : exp2f(ms - M);
      L += __ldcg(pb + (size_t)s * rs + 1) * f;
      A += __ldcg(pb + (size_t)s * rs + 2 + d) * f;
    }
    out[(size_t)r * a.ld_out + h * hd + d] = from_f32<T>(L > 0.f ? A / L : 0.f);
  }
}

// The plan: tile t of bm rows is a prefill tile (x = 1) when it has at least two rows,
// all valid and sharing one block table; y = the longest context of its rows, z = the
// shortest. kmodel: planTiles.
__global__ void attn_plan(const int32_t* __restrict__ seqs, const int32_t* __restrict__ row_seq, int n_rows, int bm,
                          int4* __restrict__ tiles) {
  const int t = blockIdx.x;
  const int r0 = t * bm, n = min(bm, n_rows - r0);
  __shared__ int s_boff, s_ok, s_max, s_min;
  if (threadIdx.x == 0) {
    const int si = row_seq[r0];
    s_boff = si >= 0 ? seqs[4 * si + 3] : -1;
    s_ok = si >= 0 && n >= 2;
    s_max = 0, s_min = 0x7fffffff;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int si = row_seq[r0 + i];
    if (si < 0 || seqs[4 * si + 3] != s_boff) {
      s_ok = 0; // benign race: every writer writes 0
      continue;
    }
    const int ctx = seqs[4 * si + 2] + (r0 + i - seqs[4 * si]) + 1;
    atomicMax(&s_max, ctx);
    atomicMin(&s_min, ctx);
  }
  __syncthreads();
  if (threadIdx.x == 0) tiles[t] = make_int4(s_ok, s_max, s_min, 0);
}

size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

struct Layout {
  size_t counters, tiles, partial, total;
};

// The call's split count: that of its longest context, max_ctx. A row's split count
// never exceeds it (ceil(ctx/split_len) grows with ctx up to max_splits, which every
// context past split_len·max_splits gets), so it strides the partials and sizes the
// grid. kmodel: Attn2Config.CallSplits.
int call_splits(const vireo_attention2_config& c, int max_ctx) {
  if (max_ctx <= 0) return 1;
  const int slen = max(c.split_len, (max_ctx + c.max_splits - 1) / c.max_splits);
  return (max_ctx + slen - 1) / slen;
}

// The partials take rows × heads × call_splits × (head_dim + 2) floats, none when no
// row can split: a decode step up to 256 positions needs none; a 2,048-row prefill
// chunk at 2,048 positions (Llama-3-8B) 272 MB, sized for the worst case, every row by
// the decode kernel (rows in prefill tiles write none).
Layout layout(int n_rows, int heads, int kv_heads, int head_dim, const vireo_attention2_config& cfg, int max_ctx) {
  const int group = heads / kv_heads, gchunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int ns = call_splits(cfg, max_ctx);
  Layout L;
  L.counters = 0;
  L.tiles = align256((size_t)n_rows * kv_heads * gchunks * 4);
  const int bm = cfg.bm > 0 ? cfg.bm : 64;
  L.partial = L.tiles + align256((size_t)((n_rows + bm - 1) / bm) * sizeof(int4));
  L.total = L.partial + (ns > 1 ? align256((size_t)n_rows * heads * ns * (head_dim + 2) * 4) : 0);
  return L;
}

template <typename T, int VEC, int LPK, int NV, int GM>
int launch_decode_one(const DecodeArgs& a, dim3 grid, int threads, size_t smem, cudaStream_t s) {
  auto k = attn_decode<T, VEC, LPK, NV, GM>;
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return cuda_status(e, "vireo_attention2", "decode: shared memory limit");
  }
  k<<<grid, threads, smem, s>>>(a);
  return VIREO_OK;
}

// The merge of the streams takes streams × GM × (head_dim + 2) floats of shared memory.
template <typename T, int VEC, int LPK, int NV>
int launch_decode_gm(const DecodeArgs& a, dim3 grid, int threads, size_t smem_per_stream_head, int group,
                     cudaStream_t s) {
  const size_t ns = threads / 32 * (32 / LPK);
  if (group >= 8) return launch_decode_one<T, VEC, LPK, NV, 8>(a, grid, threads, ns * 8 * smem_per_stream_head, s);
  if (group > 2) return launch_decode_one<T, VEC, LPK, NV, 4>(a, grid, threads, ns * 4 * smem_per_stream_head, s);
  if (group == 2) return launch_decode_one<T, VEC, LPK, NV, 2>(a, grid, threads, ns * 2 * smem_per_stream_head, s);
  return launch_decode_one<T, VEC, LPK, NV, 1>(a, grid, threads, ns * smem_per_stream_head, s);
}

// The decode kernel's variant for a head dim: 16-byte loads (hd % 8 == 0 and aligned
// operands), LPK = the power of two >= hd/8 lanes per key; else 4-byte loads, 32 lanes
// per key and hd/64 vectors each. kmodel: DecodeVariant.
template <typename T>
int launch_decode(const DecodeArgs& a, dim3 grid, int threads, bool vec16, cudaStream_t s) {
  const int hd = a.head_dim, group = min(a.heads / a.kv_heads, kMaxGroup);
  const size_t sh = (size_t)(hd + 2) * 4;
  if (vec16) {
    if (hd <= 32) return launch_decode_gm<T, 8, 4, 1>(a, grid, threads, sh, group, s);
    if (hd <= 64) return launch_decode_gm<T, 8, 8, 1>(a, grid, threads, sh, group, s);
    if (hd <= 128) return launch_decode_gm<T, 8, 16, 1>(a, grid, threads, sh, group, s);
    return launch_decode_gm<T, 8, 32, 1>(a, grid, threads, sh, group, s);
  }
  if (hd <= 64) return launch_decode_gm<T, 2, 32, 1>(a, grid, threads, sh, group, s);
  if (hd <= 128) return launch_decode_gm<T, 2, 32, 2>(a, grid, threads, sh, group, s);
  if (hd <= 192) return launch_decode_gm<T, 2, 32, 3>(a, grid, threads, sh, group, s);
  return launch_decode_gm<T, 2, 32, 4>(a, grid, threads, sh, group, s);
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

} // namespace

extern "C" {

int vireo_attention2_workspace_bytes(size_t* bytes, int n_rows, int heads, int kv_heads, int head_dim, int max_ctx,
                                     const vireo_attention2_config* cfg) {
  VIREO_CHECK_ARG(bytes && cfg && n_rows >= 0 && heads > 0 && kv_heads > 0 && heads % kv_heads == 0 &&
                      head_dim > 0 && max_ctx >= 0 && cfg->max_splits >= 1 && cfg->split_len >= 1,
                  "vireo_attention2_workspace_bytes: bad arguments rows=%d heads=%d kv_heads=%d head_dim=%d max_ctx=%d",
                  n_rows, heads, kv_heads, head_dim, max_ctx);
  *bytes = layout(n_rows, heads, kv_heads, head_dim, *cfg, max_ctx).total;
  return VIREO_OK;
}

int vireo_attention2(vireo_stream_t stream, int dtype, void* out, const void* q, int ld_out, int ld_q,
                     const void* k_cache, const void* v_cache, const int32_t* seqs, const int32_t* row_seq,
                     const int32_t* block_tables, int n_rows, int n_seqs, int heads, int kv_heads, int head_dim,
                     int block_size, int max_ctx, float scale, void* workspace, size_t workspace_bytes,
                     const vireo_attention2_config* cfg) {
  if (n_rows == 0) return VIREO_OK;
  VIREO_CHECK_ARG(cfg, "vireo_attention2: no configuration");
  VIREO_CHECK_ARG(out && q && k_cache && v_cache && row_seq && workspace && n_rows > 0 && n_rows <= 65535 &&
                      heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && head_dim > 0 && head_dim <= 256 &&
                      head_dim % 2 == 0 && block_size > 0 && max_ctx >= 0 && ld_q >= heads * head_dim &&
                      ld_out >= heads * head_dim && ld_q % 2 == 0 && ld_out % 2 == 0,
                  "vireo_attention2: bad arguments rows=%d (<= 65535) heads=%d kv_heads=%d head_dim=%d (even, <= 256) "
                  "block=%d max_ctx=%d ld_q=%d ld_out=%d",
                  n_rows, heads, kv_heads, head_dim, block_size, max_ctx, ld_q, ld_out);
  VIREO_CHECK_ARG(n_seqs == 0 || (seqs && block_tables), "vireo_attention2: %d sequences without tables", n_seqs);
  const vireo_attention2_config c = *cfg;
  VIREO_CHECK_ARG(c.split_len >= 16 && c.max_splits >= 1 && c.max_splits <= 1024 && c.warps >= 1 && c.warps <= 8 &&
                      (c.prefill == 0 || ((c.bm == 64 || c.bm == 128) && (c.bn == 32 || c.bn == 64))),
                  "vireo_attention2: configuration split_len=%d (>= 16) max_splits=%d (1..1024) warps=%d (1..8) "
                  "prefill=%d bm=%d (64, 128) bn=%d (32, 64)",
                  c.split_len, c.max_splits, c.warps, c.prefill, c.bm, c.bn);
  const int group = heads / kv_heads, gchunks = (group + kMaxGroup - 1) / kMaxGroup;
  VIREO_CHECK_ARG((long long)kv_heads * gchunks <= 65535, "vireo_attention2: %d kv heads x %d head chunks", kv_heads,
                  gchunks);
  const Layout L = layout(n_rows, heads, kv_heads, head_dim, c, max_ctx);
  VIREO_CHECK_ARG(workspace_bytes >= L.total, "vireo_attention2: workspace of %zu bytes, need %zu", workspace_bytes,
                  L.total);
  cudaStream_t s = as_stream(stream);
  char* ws = (char*)workspace;
  // kmodel: Attn2Config.UsesPrefill (a pass of fewer than kPrefillMinRows rows is decode
  // rows or a short chunk: the decode kernel alone, no plan launch).
  const bool prefill = c.prefill != 0 && n_rows >= kPrefillMinRows && prefill_supported(head_dim) && aligned16(q) && aligned16(out) &&
                       aligned16(k_cache) && aligned16(v_cache) && ld_q % 8 == 0 && ld_out % 8 == 0;
  int4* tiles = nullptr;
  if (prefill) {
    tiles = (int4*)(ws + L.tiles);
    const int ntiles = (n_rows + c.bm - 1) / c.bm;
    attn_plan<<<ntiles, 128, 0, s>>>(seqs, row_seq, n_rows, c.bm, tiles);
    int st = launch_status("vireo_attention2", "plan rows=%d bm=%d", n_rows, c.bm);
    if (st) return st;
    PrefillArgs p{out, q, ld_out, ld_q, k_cache, v_cache, seqs, row_seq, block_tables, tiles, n_rows,
                  heads, kv_heads, block_size, scale * kLog2e, c.fault};
    if (dtype == VIREO_F16) st = launch_prefill<__half>(p, head_dim, c.bm, c.bn, s);
    else if (dtype == VIREO_BF16) st = launch_prefill<__nv_bfloat16>(p, head_dim, c.bm, c.bn, s);
    else return set_error(VIREO_ERR_ARG, "vireo_attention2: activation dtype %s", dtype_name(dtype));
    if (st) return st;
    st = launch_status("vireo_attention2", "prefill rows=%d heads=%d head_dim=%d bm=%d bn=%d", n_rows, heads,
                       head_dim, c.bm, c.bn);
    if (st) return st;
  }
  // The decode kernel: splits for the longest context (rows with shorter ones leave the
  // extra split blocks at once).
  const int nsplit = call_splits(c, max_ctx);
  DecodeArgs a{out, q, ld_out, ld_q, k_cache, v_cache, seqs, row_seq, block_tables, tiles, c.bm > 0 ? c.bm : 64,
               heads, kv_heads, head_dim, block_size, c.split_len, c.max_splits, gchunks, nsplit, scale * kLog2e,
               (float*)(ws + L.partial), (unsigned*)(ws + L.counters), c.fault};
  const bool vec16 = head_dim % 8 == 0 && aligned16(q) && aligned16(out) && aligned16(k_cache) &&
                     aligned16(v_cache) && ld_q % 8 == 0 && ld_out % 8 == 0;
  dim3 grid(nsplit, kv_heads * gchunks, n_rows);
  int st;
  if (dtype == VIREO_F16) st = launch_decode<__half>(a, grid, 32 * c.warps, vec16, s);
  else if (dtype == VIREO_BF16) st = launch_decode<__nv_bfloat16>(a, grid, 32 * c.warps, vec16, s);
  else return set_error(VIREO_ERR_ARG, "vireo_attention2: activation dtype %s", dtype_name(dtype));
  if (st) return st;
  return launch_status("vireo_attention2",
                       "decode rows=%d seqs=%d heads=%d kv_heads=%d head_dim=%d max_ctx=%d splits=%d warps=%d",
                       n_rows, n_seqs, heads, kv_heads, head_dim, max_ctx, nsplit, c.warps);
}

} // extern "C"
