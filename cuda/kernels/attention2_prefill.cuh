// attention2_prefill.cuh: the prefill kernel of attention2.cu, FlashAttention-2 style on
// tensor cores (mma.sync m16n8k16, f16 or bf16 in, fp32 accumulation), over the paged
// KV blocks. Napkin math: attention2.cu.
//
// A block takes one tile of bm query rows (a "prefill" tile of the plan: valid rows of
// one sequence) and one query head; warp w owns rows 16w .. 16w+15. The K and V tiles of
// bn keys go through shared memory, two stages deep, by 16-byte cp.async gathered
// through the block table (keys past the tile's longest context are zero-filled, so the
// cache's stale slots never reach an accumulator). Per KV tile a warp computes its
// 16 × bn scores S = Q·Kᵀ (Q fragments kept in registers from one ldmatrix pass), masks
// positions past each row's own context (only tiles that reach past the shortest
// context of the tile), updates the rows' running max and sum (base-2 online softmax,
// a quad of lanes per row), reuses the S accumulators as the A fragments of P·V, and
// accumulates O = P·V with V fragments from ldmatrix.trans. Tiles are taken longest
// first (the grid walks them backwards), so the causal tail does not straggle.
//
// Fragment layouts (PTX ISA, mma.m16n8k16, lane = 4g + t): A rows g / g+8, columns
// 2t, 2t+1 / 2t+8, 2t+9; B columns g, rows 2t, 2t+1 / 2t+8, 2t+9; C rows g / g+8,
// columns 2t, 2t+1. ldmatrix.x4: lane i gives the row address of row i%8 of matrix i/8
// and receives, of each matrix, row g columns 2t, 2t+1 (.trans: rows 2t, 2t+1, column g).
// The Go model (kmodel/attn2.go) emulates these, address for address.
#pragma once

#include "common.cuh"

namespace vireo {

struct PrefillArgs {
  void* out;
  const void* q;
  int ld_out, ld_q;
  const void *kc, *vc;
  const int32_t *seqs, *row_seq, *tables;
  const int4* tiles;
  int n_rows, heads, kv_heads, block_size;
  float scale; // times log2(e)
  int fault;
};

inline bool prefill_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

template <typename T> struct MmaType;
template <> struct MmaType<__half> {
  static __device__ __forceinline__ void mma(float* c, const uint32_t* a, const uint32_t* b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <> struct MmaType<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float* c, const uint32_t* a, const uint32_t* b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

// Shared-memory row stride in elements: head_dim plus 8 (16 bytes), so the 8 rows of an
// ldmatrix fall in 8 distinct 16-byte bank groups.
template <int HD> __host__ __device__ constexpr int prefill_ld() { return HD + 8; }

template <int HD, int BM, int BN> __host__ __device__ constexpr size_t prefill_smem() {
  return (size_t)(BM + 4 * BN) * prefill_ld<HD>() * 2; // Q, then K and V, two stages each
}

// Copies a tile of `rows` rows × HD into shared memory (row stride prefill_ld), 16 bytes
// per chunk: chunk c = threadIdx.x + i·threads is row c / (HD/8), columns (c % (HD/8))·8.
// src(row) gives the global row's address, or NULL to zero-fill (the copy then names
// dummy, a valid address it reads nothing from). kmodel: tileChunks.
template <typename T, int HD, typename Src>
__device__ __forceinline__ void load_tile(T* dst, int rows, Src src, const T* dummy) {
  constexpr int CPR = HD / 8; // chunks per row
  for (int c = threadIdx.x; c < rows * CPR; c += blockDim.x) {
    const int row = c / CPR, col = (c % CPR) * 8;
    const T* g = src(row);
    cp_async16(dst + row * prefill_ld<HD>() + col, g ? g + col : dummy, g != nullptr);
  }
}

template <typename T, int HD, int BM, int BN>
__global__ void __launch_bounds__(BM * 2) attn_prefill(PrefillArgs a) {
  constexpr int LD = prefill_ld<HD>();
  constexpr int KS = HD / 16; // k-steps of Q·Kᵀ
  constexpr int NT = BN / 8;  // n-tiles of S
  constexpr int DT = HD / 8;  // n-tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sq = reinterpret_cast<T*>(smem_raw);
  T* sk = sq + BM * LD; // [2][BN][LD]
  T* sv = sk + 2 * BN * LD;

  const int ntiles = gridDim.x;
  const int tile = ntiles - 1 - blockIdx.x, h = blockIdx.y;
  const int4 plan = a.tiles[tile];
  if (!plan.x) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int r0 = tile * BM, n = min(BM, a.n_rows - r0);
  const int kvh = h / (a.heads / a.kv_heads);
  const int boff = a.seqs[4 * a.row_seq[r0] + 3];
  const int maxctx = plan.y, minctx = plan.z;
  const T* q = (const T*)a.q;
  const T* kc = (const T*)a.kc;
  const T* vc = (const T*)a.vc;
  const int bs = a.block_size;

  // The contexts of the lane's two rows (0 past the tile's rows: masked, never written).
  int ctx[2];
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int rr = 16 * warp + g + 8 * i;
    ctx[i] = 0;
    if (rr < n) {
      const int si = a.row_seq[r0 + rr];
      ctx[i] = a.seqs[4 * si + 2] + (r0 + rr - a.seqs[4 * si]) + 1;
    }
  }

  auto kv_src = [&](const T* base, int kb) {
    return [=](int row) -> const T* {
      const int p = kb + row;
      if (p >= maxctx) return nullptr;
      const int blk = a.tables[boff + p / bs];
      return base + (((size_t)blk * a.kv_heads + kvh) * bs + p % bs) * HD;
    };
  };
  load_tile<T, HD>(
      sq, BM, [&](int row) -> const T* { return row < n ? q + (size_t)(r0 + row) * a.ld_q + h * HD : nullptr; }, q);
  int nkv = (maxctx + BN - 1) / BN;
  if (a.fault == 1 && nkv > 1) nkv--; // the broken variant: the last KV tile is skipped
  load_tile<T, HD>(sk, BN, kv_src(kc, 0), kc);
  load_tile<T, HD>(sv, BN, kv_src(vc, 0), vc);
  cp_async_commit();

  uint32_t qa[KS][4];
  float o[DT][4];
#pragma unroll
  for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int j = 0; j < nkv; j++) {
    const int st = j & 1;
    if (j + 1 < nkv) { // prefetch the next tile into the other stage
      load_tile<T, HD>(sk + (st ^ 1) * BN * LD, BN, kv_src(kc, (j + 1) * BN), kc);
      load_tile<T, HD>(sv + (st ^ 1) * BN * LD, BN, kv_src(vc, (j + 1) * BN), vc);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ks++) ldsm_x4(qa[ks], sq + (16 * warp + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8);
    }
    const T* kt = sk + st * BN * LD;
    const T* vt = sv + st * BN * LD;

    // S = Q·Kᵀ: B fragments of two k-steps per ldmatrix.x4 (key rows nt·8 + i%8,
    // columns (ks + (i/8)/2)·16 + ((i/8)%2)·8).
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < KS; ks += 2) {
        uint32_t b[4];
        const int mi = lane >> 3;
        ldsm_x4(b, kt + (nt * 8 + (lane & 7)) * LD + (ks + (mi >> 1)) * 16 + (mi & 1) * 8);
        MmaType<T>::mma(s[nt], qa[ks], b);
        MmaType<T>::mma(s[nt], qa[ks + 1], b + 2);
      }
    }

    // Scale, mask, online softmax (rows g and g+8 of the warp's 16; a quad per row).
    const int kb = j * BN;
    const bool full = kb + BN <= minctx;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      float mx = m[i];
#pragma unroll
      for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int c = 0; c < 2; c++) {
          float& v = s[nt][2 * i + c];
          v *= a.scale;
          if (!full && kb + nt * 8 + 2 * t + c >= ctx[i]) v = -INFINITY;
          mx = fmaxf(mx, v);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;
      const float corr = exp2f(m[i] - base); // m = -inf: 0
      m[i] = mx;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int c = 0; c < 2; c++) {
          float& v = s[nt][2 * i + c];
          v = exp2f(v - base);
          sum += v;
        }
      l[i] = l[i] * corr + sum;
#pragma unroll
      for (int d = 0; d < DT; d++) o[d][2 * i] *= corr, o[d][2 * i + 1] *= corr;
    }

    // O += P·V: P's fragments are S's accumulators; V fragments by ldmatrix.trans (key
    // rows kk·16 + ((i/8)%2)·8 + i%8, columns (dt + (i/8)/2)·8).
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++) {
      uint32_t pa[4];
      pa[0] = MmaType<T>::pack(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = MmaType<T>::pack(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = MmaType<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = MmaType<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dt = 0; dt < DT; dt += 2) {
        uint32_t b[4];
        const int mi = lane >> 3;
        ldsm_x4_trans(b, vt + (kk * 16 + (mi & 1) * 8 + (lane & 7)) * LD + (dt + (mi >> 1)) * 8);
        MmaType<T>::mma(o[dt], pa, b);
        MmaType<T>::mma(o[dt + 1], pa, b + 2);
      }
    }
    __syncthreads(); // the stage is reloaded two tiles later
  }
  cp_async_wait<0>();

  // O / l, rows g and g+8: 4-byte stores of column pairs.
  T* out = (T*)a.out;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    float li = l[i];
    li += __shfl_xor_sync(0xffffffffu, li, 1);
    li += __shfl_xor_sync(0xffffffffu, li, 2);
    const int rr = 16 * warp + g + 8 * i;
    if (rr >= n) continue;
    const float inv = li > 0.f ? 1.f / li : 0.f;
    T* orow = out + (size_t)(r0 + rr) * a.ld_out + h * HD;
#pragma unroll
    for (int d = 0; d < DT; d++) {
      uint32_t pk = MmaType<T>::pack(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
      *reinterpret_cast<uint32_t*>(orow + d * 8 + 2 * t) = pk;
    }
  }
}

template <typename T, int HD, int BM, int BN>
int launch_prefill_cfg(const PrefillArgs& a, cudaStream_t s) {
  constexpr size_t smem = prefill_smem<HD, BM, BN>();
  auto k = attn_prefill<T, HD, BM, BN>;
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return cuda_status(e, "vireo_attention2", "prefill: shared memory limit");
  }
  const int ntiles = (a.n_rows + BM - 1) / BM;
  k<<<dim3(ntiles, a.heads), BM * 2, smem, s>>>(a);
  return VIREO_OK;
}

template <typename T>
int launch_prefill(const PrefillArgs& a, int head_dim, int bm, int bn, cudaStream_t s) {
#define VIREO_PREFILL_CASE(HD, BM, BN) \
  if (head_dim == HD && bm == BM && bn == BN) return launch_prefill_cfg<T, HD, BM, BN>(a, s);
  VIREO_PREFILL_CASE(64, 64, 32)
  VIREO_PREFILL_CASE(64, 64, 64)
  VIREO_PREFILL_CASE(64, 128, 32)
  VIREO_PREFILL_CASE(64, 128, 64)
  VIREO_PREFILL_CASE(128, 64, 32)
  VIREO_PREFILL_CASE(128, 64, 64)
  VIREO_PREFILL_CASE(128, 128, 32)
  VIREO_PREFILL_CASE(128, 128, 64)
#undef VIREO_PREFILL_CASE
  return set_error(VIREO_ERR_UNSUPPORTED, "vireo_attention2: prefill head_dim=%d bm=%d bn=%d", head_dim, bm, bn);
}

} // namespace vireo
