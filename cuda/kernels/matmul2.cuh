// matmul2.cuh: kernels v2 for the int8-weight matrix products — one tensor-core template
// with a cp.async multi-stage shared-memory pipeline, instantiated for W8A16 (decode and
// batched decode, 1–256 rows) and W8A8 (prefill), with a deterministic split-K; and for
// W4A16 (4-bit weights with group scales, runtime/quant/w4: compute_w4 below, napkin
// math in matmul2_w4a16.cu).
//
//   out[i][j] (+)= epilogue( Σ_k x[i][k] · W[j][k] · scales )      W row-major [n_w][k]
//
// Napkin math (the per-kernel figures, for an H200 at ≈4.3 TB/s copy bandwidth and the
// Llama-3-8B shapes, are in matmul2_w8a16.cu and matmul2_w8a8.cu; bench/NOTES.md keeps
// the predictions the GPU run checks). In short: a call moves n_w·k weight bytes (once,
// whatever n: a weight tile is read once per row tile, and at ≤ 256 rows decode has one
// or two row tiles), n·k activation elements per column tile (from L2), n·n_out outputs,
// and with split-K 4·BM·BN bytes of partials per tile and slice (L2-resident); it does
// 2·n·n_w·k flops. Decode and batched decode (W8A16, ≤ 64 rows) are DRAM-bound: the
// 4096×14336 int8 matrix (58.7 MB) ≈ 13.7 µs at 4.3 TB/s, expected within 10%; prefill
// (W8A8, 2,048 rows) is bound by mma.sync issue, expected 600–750 TOP/s.
//
// The block tile. A block of WM×WN warps computes BM = 16·MT·WM rows × BN = 8·NT·WN
// weight rows; each warp owns MT m16 fragments × NT n8 fragments of it, for every k of
// its slice. Per pipeline stage (BK k) the block copies, with 16-byte cp.async (.cg:
// through L2 only), the A tile [BM][BK] (activations) and the B tile [BN][BK] (int8
// weight rows) into shared memory; STAGES-1 stages are in flight while one is consumed.
// Rows past n, weight rows past n_w and k past the slice are zero-filled by cp.async
// (src-size 0), so the tails run the same instructions on zeros.
//
// Shared-memory rows are padded so the fragment loads are free of bank conflicts:
//   B (int8, ldmatrix: 8 rows × 16 B at one k): row stride BK+16 bytes, so 8
//     consecutive rows start in 8 distinct 16-byte bank groups (BK = 64: 80 B; 128: 144 B);
//   A int8 (W8A8, ldmatrix): the same;
//   A 16-bit (W8A16, lds.64: lanes (g, t) read row g, bytes 32i + 8t): stride 2·BK+32
//     bytes ≡ 32 (mod 128), so the 4 rows of a half-warp fall in distinct 32-byte groups.
//
// Fragments (PTX ISA, mma.sync): lane = 4g + t.
//   W8A8, m16n8k32 s8: A and B both come from ldmatrix.x4 of int8 rows, which hands lane
//     (g, t) bytes 4t..4t+3 of row g of each 8×16-byte matrix: exactly the s8 fragment
//     (a0: row g k 4t.., a1: row g+8, a2: row g k 16+4t.., a3: row g+8; b0: k 4t.. of
//     column g, b1: k 16+4t..).
//   W8A16, m16n8k16: B's ldmatrix.x4 of int8 rows gives lane (g, t), for each of four
//     16-k chunks i, the weights of row g at k = 16i+4t .. 16i+4t+3, dequantized to two
//     pairs: b0 = (16i+4t, +1), b1 = (16i+4t+2, +3). A dot product does not care in which
//     order k is summed, so logical k slots {2t, 2t+1} of the fragment are physical
//     16i+4t+{0,1} and slots {2t+8, 2t+9} are 16i+4t+{2,3}; A is read to match with one
//     8-byte lds per row: a0 = x[g][16i+4t .. +1], a2 = x[g][16i+4t+2 .. +3] (a1, a3 the
//     same for row g+8).
//
// Split-K and batch invariance. k is cut into `split` slices of `slice` k each (a
// multiple of 16); grid.z = split. Each block computes its slice's partial from zero,
// in increasing k, one m16n8k16 (k32) step at a time. With split > 1 every block writes
// its partial to the workspace ([tile][slice][BM·BN] in fragment order, coalesced),
// fences and bumps the tile's counter; the last block to arrive adds the partials in
// slice order 0..split-1 (its own from registers, bit-identical to the stored copy),
// applies the epilogue, and resets the counter to 0 for the next launch. So the value
// of an output element depends on (split, slice, the k order of the mma steps) and on
// its own row and column only — never on the tile configuration or on how many rows
// the call holds. The W8A16 dispatch (Go: runtime/backend/cuda/kmodel) picks split from
// the weight's shape alone, which keeps decode batch-invariant; W8A8 sums int32
// exactly, so its split is free.
//
// The thread→element mappings here are mirrored, function for function, by the Go
// model in runtime/backend/cuda/kmodel, whose tests check that every output element
// is written exactly once and every product of its dot product is formed exactly once
// from the right x and W elements, for every configuration, tail and split.
#pragma once

#include <type_traits>

#include "common.cuh"

namespace vireo {
namespace mm2 {

// The configuration kinds (vireo_mm2_kind), and the kernels' template kinds: W4A16
// weights instantiate kW4Sym (Q4_0-derived: y = s·(q−8)) or kW4Affine (Q4_K-derived:
// y = s·q − m), both of configuration kind kW4A16 (matmul2_w4a16.cu).
enum Kind { kW8A16 = 0, kW8A8 = 1, kW4A16 = 2, kW4Sym = 2, kW4Affine = 3 };
__host__ __device__ constexpr bool is_w4(int kind) { return kind >= kW4A16; }

// Params are one launch's operands (kernel argument, by value).
struct Params {
  void* out;
  int ld_out;
  // Split outputs (a fused q/k/v weight): columns [col2, col3) go to out2 (at column
  // c - col2), columns [col3, n_out) to out3; col2 = col3 = n_out when unused.
  void* out2;
  int ld_out2, col2;
  void* out3;
  int ld_out3, col3;
  const void* x; // W8A16: 16-bit [n][ld_x]; W8A8: int8 [n][ld_x]
  int ld_x;
  const float* x_scale; // W8A8 only
  const int8_t* w;      // [n_w][k]; W4A16: levels [n_w][k/2] (runtime/quant/w4)
  const float* w_scale; // [n_w]; unused by W4A16
  // W4A16: kW4Sym [n_w][k/32] f16 group scales; kW4Affine [n_w][k/256][2] f16 d, dmin
  // and w4_sub [n_w][k/32][2] the groups' 6-bit scale and min.
  const uint16_t* w4_scale;
  const uint8_t* w4_sub;
  int n, n_out, k, epi;
  int split, slice; // k slices and their length (multiple of 16)
  void* ws;         // split > 1: partials, then one int counter per tile
  int row_tiles, col_tiles;
  int rows_fast; // blockIdx.x walks row tiles (weight tiles stay hot in L2: prefill)
  int vec_out;   // bit s: segment s (out, out2, out3) allows paired (4-byte) stores
  int fault;     // deliberate fault for the on-card demonstration (VIREO_MM2_FAULT_*)
};

__device__ __forceinline__ float silu2(float g) { return g / (1.f + expf(-g)); }

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// 16 bytes global → shared through L2 only; valid == false zero-fills (src not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ uint2 lds64(uint32_t addr) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(addr));
  return v;
}

// int8 ×4 → two f16 pairs, exactly: (b ^ 0x80) under the exponent of 1024 is the half
// 1152 + b; subtracting 1152 leaves b.
__device__ __forceinline__ void deq_f16(uint32_t w, uint32_t& lo, uint32_t& hi) {
  uint32_t u = w ^ 0x80808080u;
  uint32_t l = __byte_perm(u, 0x64646464u, 0x4140), h = __byte_perm(u, 0x64646464u, 0x4342);
  const uint32_t bias = 0x64806480u; // half2(1152, 1152)
  __half2 a = __hsub2(*reinterpret_cast<__half2*>(&l), *reinterpret_cast<const __half2*>(&bias));
  __half2 b = __hsub2(*reinterpret_cast<__half2*>(&h), *reinterpret_cast<const __half2*>(&bias));
  lo = *reinterpret_cast<uint32_t*>(&a);
  hi = *reinterpret_cast<uint32_t*>(&b);
}

// int8 ×4 → two bf16 pairs, exactly, through fp32: (b ^ 0x80) in the low mantissa of
// 2^23 is 8388608 + 128 + b; subtracting 8388736 leaves b, which bf16 holds exactly.
__device__ __forceinline__ void deq_bf16(uint32_t w, uint32_t& lo, uint32_t& hi) {
  uint32_t u = w ^ 0x80808080u;
  const float base = 8388736.f;
  float f0 = __uint_as_float(__byte_perm(u, 0x4b000000u, 0x7650)) - base;
  float f1 = __uint_as_float(__byte_perm(u, 0x4b000000u, 0x7651)) - base;
  float f2 = __uint_as_float(__byte_perm(u, 0x4b000000u, 0x7652)) - base;
  float f3 = __uint_as_float(__byte_perm(u, 0x4b000000u, 0x7653)) - base;
  __nv_bfloat162 a = __floats2bfloat162_rn(f0, f1), b = __floats2bfloat162_rn(f2, f3);
  lo = *reinterpret_cast<uint32_t*>(&a);
  hi = *reinterpret_cast<uint32_t*>(&b);
}

template <typename T> __device__ __forceinline__ void deq(uint32_t w, uint32_t& lo, uint32_t& hi);
template <> __device__ __forceinline__ void deq<__half>(uint32_t w, uint32_t& lo, uint32_t& hi) { deq_f16(w, lo, hi); }
template <> __device__ __forceinline__ void deq<__nv_bfloat16>(uint32_t w, uint32_t& lo, uint32_t& hi) {
  deq_bf16(w, lo, hi);
}

template <typename T> __device__ __forceinline__ void mma_k16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void mma_k16<__half>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_k16<__nv_bfloat16>(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_k32_s8(int d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- the shape of one configuration (mirrored by kmodel.Config) --------------------

template <int KIND, int WM_, int WN_, int MT_, int NT_, int BK_, int STAGES_> struct Shape {
  static constexpr int WM = WM_, WN = WN_, MT = MT_, NT = NT_, BK = BK_, STAGES = STAGES_;
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int BM = 16 * MT * WM; // rows of x per block
  static constexpr int BN = 8 * NT * WN;  // weight rows per block
  static constexpr bool W4 = is_w4(KIND);
  static constexpr int AB = KIND == kW8A8 ? 1 : 2;            // bytes per A element
  static constexpr int AStride = KIND == kW8A8 ? BK + 16 : 2 * BK + 32; // bytes per A smem row
  static constexpr int BRow = W4 ? BK / 2 : BK;               // weight bytes per B row and stage
  static constexpr int BStride = BRow + 16;                   // bytes per B smem row
  static constexpr int AChunks = BK * AB / 16;                // 16-byte chunks per A row and stage
  static constexpr int BChunks = BRow / 16;                   // W4: one chunk = one 32-k group
  static constexpr int ABytes = BM * AStride, BBytes = BN * BStride;
  static constexpr int StageBytes = ABytes + BBytes;
  static constexpr int SmemBytes = STAGES * StageBytes;
  static constexpr int Acc = MT * NT * 4; // accumulators per thread
  static_assert(BK % 64 == 0, "BK: a multiple of 64 (four k16 chunks per B ldmatrix.x4)");
  static_assert(NT % 2 == 0, "NT even: SiLU-GLU pairs gate and up fragments, W8A8 loads B in pairs");
  static_assert(STAGES >= 2, "at least double buffering");
  static_assert(!W4 || BK % 128 == 0, "W4A16: a B ldmatrix.x4 takes four 32-k groups (64 bytes)");
};

// ---- index maps (kmodel mirrors each) ----------------------------------------------

// Output column of B-tile row r (0 ≤ r < BN) of column tile ct, and the weight row it
// reads. With SiLU-GLU the tile's first BN/2 rows are gate rows c0 .. c0+BN/2-1 and the
// last BN/2 the matching up rows n_out + c; a tile then covers BN/2 output columns.
__device__ __forceinline__ int tile_col(int r, int ct, int BN, bool glu) {
  return glu ? ct * (BN / 2) + (r < BN / 2 ? r : r - BN / 2) : ct * BN + r;
}
__device__ __forceinline__ long long tile_wrow(int r, int ct, int BN, bool glu, int n_out) {
  int c = tile_col(r, ct, BN, glu);
  return glu && r >= BN / 2 ? (long long)n_out + c : (long long)c;
}

// B-tile row of row 0 of warp column wn's n-fragment j: without GLU warp wn owns rows
// [wn·8·NT, (wn+1)·8·NT); with GLU its gate fragments j < NT/2 sit in the first half and
// its up fragments j ≥ NT/2 at the same offset in the second half.
__device__ __forceinline__ int frag_brow(int wn, int j, int NT, int BN, bool glu) {
  if (!glu) return wn * 8 * NT + 8 * j;
  int h = NT / 2;
  return j < h ? wn * 8 * h + 8 * j : BN / 2 + wn * 8 * h + 8 * (j - h);
}

template <class S> struct Tile {
  int rt, ct, slice_id; // row tile, column tile, k slice
  int k0, k1;           // the slice's k range
  int tile;             // row_tiles-major tile id (workspace index)
};

template <class S> __device__ __forceinline__ Tile<S> block_tile(const Params& p) {
  Tile<S> t;
  if (p.rows_fast) {
    t.rt = blockIdx.x, t.ct = blockIdx.y;
  } else {
    t.ct = blockIdx.x, t.rt = blockIdx.y;
  }
  t.slice_id = blockIdx.z;
  t.k0 = t.slice_id * p.slice;
  t.k1 = min(p.k, t.k0 + p.slice);
  t.tile = t.rt * p.col_tiles + t.ct;
  return t;
}

// Issues the cp.async copies of one stage: k [kb, kb+BK) of the A and B tiles.
template <class S>
__device__ __forceinline__ void load_stage(const Params& p, const Tile<S>& t, uint8_t* stage, int kb, bool glu) {
  const int tid = threadIdx.x;
  uint8_t* sa = stage;
  uint8_t* sb = stage + S::ABytes;
  const uint8_t* x = (const uint8_t*)p.x;
#pragma unroll
  for (int c0 = 0; c0 < S::BM * S::AChunks; c0 += S::kThreads) {
    int c = c0 + tid;
    if (S::BM * S::AChunks % S::kThreads == 0 || c < S::BM * S::AChunks) {
      int r = c / S::AChunks, ch = c % S::AChunks;
      int row = t.rt * S::BM + r;
      int kk = kb + ch * (16 / S::AB); // first k of the chunk
      bool ok = row < p.n && kk < t.k1;
      const uint8_t* src = ok ? x + ((size_t)row * p.ld_x + kk) * S::AB : x;
      cp_async16(smem_u32(sa + r * S::AStride + ch * 16), src, ok);
    }
  }
#pragma unroll
  for (int c0 = 0; c0 < S::BN * S::BChunks; c0 += S::kThreads) {
    int c = c0 + tid;
    if (S::BN * S::BChunks % S::kThreads == 0 || c < S::BN * S::BChunks) {
      int r = c / S::BChunks, ch = c % S::BChunks;
      int col = tile_col(r, t.ct, S::BN, glu);
      long long wr = tile_wrow(r, t.ct, S::BN, glu, p.n_out);
      int kk = kb + ch * (S::W4 ? 32 : 16); // first k of the chunk
      bool ok = col < p.n_out && kk < t.k1;
      const int8_t* src = !ok ? p.w : S::W4 ? p.w + wr * (p.k / 2) + kk / 2 : p.w + wr * p.k + kk;
      cp_async16(smem_u32(sb + r * S::BStride + ch * 16), src, ok);
    }
  }
}

// The warp's MMA work on one stage. W8A16: per 64-k group, one ldmatrix.x4 per
// n-fragment (four k16 chunks), then per chunk one lds.64 per 8 rows of A and the
// dequantized B pairs.
template <typename T, class S>
__device__ __forceinline__ void compute_w8a16(const uint8_t* stage, float (&acc)[S::MT][S::NT][4], int wm, int wn,
                                              bool glu, bool half_rows) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const uint32_t sa = smem_u32(stage), sb = smem_u32(stage + S::ABytes);
#pragma unroll
  for (int kg = 0; kg < S::BK / 64; kg++) {
    uint32_t bq[S::NT][4];
#pragma unroll
    for (int j = 0; j < S::NT; j++) {
      // Lanes 8q..8q+7 address matrix q: rows brow..brow+7 at k chunk q of the group.
      int row = frag_brow(wn, j, S::NT, S::BN, glu) + (lane & 7);
      ldmatrix_x4(bq[j], sb + row * S::BStride + kg * 64 + (lane >> 3) * 16);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      uint32_t a[S::MT][4];
#pragma unroll
      for (int m = 0; m < S::MT; m++) {
        int r = wm * 16 * S::MT + m * 16 + g;
        uint32_t off = (uint32_t)((kg * 64 + 16 * i + 4 * t) * 2);
        uint2 lo = lds64(sa + r * S::AStride + off);
        a[m][0] = lo.x, a[m][2] = lo.y;
        if (S::MT == 1 && half_rows) {
          a[m][1] = a[m][3] = 0u; // rows 8..15 of the only fragment are padding
        } else {
          uint2 hi = lds64(sa + (r + 8) * S::AStride + off);
          a[m][1] = hi.x, a[m][3] = hi.y;
        }
      }
#pragma unroll
      for (int j = 0; j < S::NT; j++) {
        uint32_t b0, b1;
        deq<T>(bq[j][i], b0, b1);
#pragma unroll
        for (int m = 0; m < S::MT; m++) mma_k16<T>(acc[m][j], a[m], b0, b1);
      }
    }
  }
}

// ---- W4A16 (matmul2_w4a16.cu) ------------------------------------------------------
//
// Levels → a register pair of two adjacent inputs, exactly: the word's nibbles n and
// n+4 (runtime/quant/w4's interleave: inputs 2i and 2i+1 of the lane's eight) ORed into
// the mantissa of 1024 (f16) or 128 (bf16), minus 1024 or 128 (Affine: q) or 1032 or
// 136 (Sym: q − 8). sh = 0, 4, 8, 12 picks nibbles (0,4), (1,5), (2,6), (3,7).
template <typename T, bool SYM> __device__ __forceinline__ uint32_t deq4(uint32_t w, int sh);
template <> __device__ __forceinline__ uint32_t deq4<__half, true>(uint32_t w, int sh) {
  uint32_t v = ((w >> sh) & 0x000f000fu) | 0x64006400u;
  const uint32_t bias = 0x64086408u; // half2(1032, 1032)
  __half2 r = __hsub2(*reinterpret_cast<__half2*>(&v), *reinterpret_cast<const __half2*>(&bias));
  return *reinterpret_cast<uint32_t*>(&r);
}
template <> __device__ __forceinline__ uint32_t deq4<__half, false>(uint32_t w, int sh) {
  uint32_t v = ((w >> sh) & 0x000f000fu) | 0x64006400u;
  const uint32_t bias = 0x64006400u; // half2(1024, 1024)
  __half2 r = __hsub2(*reinterpret_cast<__half2*>(&v), *reinterpret_cast<const __half2*>(&bias));
  return *reinterpret_cast<uint32_t*>(&r);
}
template <> __device__ __forceinline__ uint32_t deq4<__nv_bfloat16, true>(uint32_t w, int sh) {
  uint32_t v = ((w >> sh) & 0x000f000fu) | 0x43004300u;
  const uint32_t bias = 0x43084308u; // bf16x2(136, 136)
  __nv_bfloat162 r =
      __hsub2(*reinterpret_cast<__nv_bfloat162*>(&v), *reinterpret_cast<const __nv_bfloat162*>(&bias));
  return *reinterpret_cast<uint32_t*>(&r);
}
template <> __device__ __forceinline__ uint32_t deq4<__nv_bfloat16, false>(uint32_t w, int sh) {
  uint32_t v = ((w >> sh) & 0x000f000fu) | 0x43004300u;
  const uint32_t bias = 0x43004300u; // bf16x2(128, 128)
  __nv_bfloat162 r =
      __hsub2(*reinterpret_cast<__nv_bfloat162*>(&v), *reinterpret_cast<const __nv_bfloat162*>(&bias));
  return *reinterpret_cast<uint32_t*>(&r);
}
// A pair of ones (the B operand that sums a group's activations for the Affine offset).
template <typename T> __device__ __forceinline__ uint32_t ones2();
template <> __device__ __forceinline__ uint32_t ones2<__half>() { return 0x3c003c00u; }
template <> __device__ __forceinline__ uint32_t ones2<__nv_bfloat16>() { return 0x3f803f80u; }

// Group gi of weight row wr: its scale s and offset m in fp32 (the products of the
// stored f16 and 6-bit fields are exact in fp32).
template <int KIND>
__device__ __forceinline__ void group_scale(const Params& p, long long wr, int gi, float& s, float& m) {
  if (KIND == kW4Sym) {
    s = __half2float(__ushort_as_half(__ldg(p.w4_scale + wr * (p.k / 32) + gi)));
    m = 0.f;
    return;
  }
  const unsigned short* d = p.w4_scale + (wr * (p.k / 256) + gi / 8) * 2;
  const uint8_t* sub = p.w4_sub + (wr * (p.k / 32) + gi) * 2;
  s = __half2float(__ushort_as_half(__ldg(d))) * (float)__ldg(sub);
  m = __half2float(__ushort_as_half(__ldg(d + 1))) * (float)__ldg(sub + 1);
}

// The warp's MMA work on one stage of W4A16. Per 128 k, one ldmatrix.x4 per n-fragment
// gives lane (g, t) word t of the four 16-byte chunks (= 32-k groups) of row g. Per group
// q: two m16n8k16 steps s into fresh accumulators tmp, the lane's inputs 8t+4s .. +3 of
// the group (a0/b0: +0, +1; a2/b1: +2, +3: the A lds.64 reads the same four halves), and
// for Affine one more mma per m16 fragment against ones (xs: the group's sum of x per
// row); then acc += s·tmp − m·xs with the group's scale of each output column. So the
// tensor cores multiply exact integer levels and the scales are applied in fp32. Groups
// past the slice (zero-filled) are skipped, uniformly over the block.
template <typename T, int KIND, class S>
__device__ __forceinline__ void compute_w4(const Params& p, const Tile<S>& tl, const uint8_t* stage,
                                           float (&acc)[S::MT][S::NT][4], int wm, int wn, bool glu, bool half_rows,
                                           int kb) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const uint32_t sa = smem_u32(stage), sb = smem_u32(stage + S::ABytes);
  constexpr bool SYM = KIND == kW4Sym;
#pragma unroll
  for (int kg = 0; kg < S::BK / 128; kg++) {
    uint32_t bq[S::NT][4];
#pragma unroll
    for (int j = 0; j < S::NT; j++) {
      int row = frag_brow(wn, j, S::NT, S::BN, glu) + (lane & 7);
      ldmatrix_x4(bq[j], sb + row * S::BStride + kg * 64 + (lane >> 3) * 16);
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int k0 = kb + kg * 128 + 32 * q; // the group's first k
      if (k0 >= tl.k1) break;
      float tmp[S::MT][S::NT][4];
      float xs[S::MT][4];
#pragma unroll
      for (int m = 0; m < S::MT; m++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          xs[m][e] = 0.f;
#pragma unroll
          for (int j = 0; j < S::NT; j++) tmp[m][j][e] = 0.f;
        }
      }
#pragma unroll
      for (int s = 0; s < 2; s++) {
        uint32_t a[S::MT][4];
#pragma unroll
        for (int m = 0; m < S::MT; m++) {
          int r = wm * 16 * S::MT + m * 16 + g;
          uint32_t off = (uint32_t)((kg * 128 + 32 * q + 8 * t + 4 * s) * 2);
          uint2 lo = lds64(sa + r * S::AStride + off);
          a[m][0] = lo.x, a[m][2] = lo.y;
          if (S::MT == 1 && half_rows) {
            a[m][1] = a[m][3] = 0u;
          } else {
            uint2 hi = lds64(sa + (r + 8) * S::AStride + off);
            a[m][1] = hi.x, a[m][3] = hi.y;
          }
        }
#pragma unroll
        for (int j = 0; j < S::NT; j++) {
          uint32_t b0 = deq4<T, SYM>(bq[j][q], 8 * s), b1 = deq4<T, SYM>(bq[j][q], 8 * s + 4);
#pragma unroll
          for (int m = 0; m < S::MT; m++) mma_k16<T>(tmp[m][j], a[m], b0, b1);
        }
        if (!SYM) {
#pragma unroll
          for (int m = 0; m < S::MT; m++) mma_k16<T>(xs[m], a[m], ones2<T>(), ones2<T>());
        }
      }
      const int gi = k0 / 32;
#pragma unroll
      for (int j = 0; j < S::NT; j++) {
#pragma unroll
        for (int e2 = 0; e2 < 2; e2++) {
          const int br = frag_brow(wn, j, S::NT, S::BN, glu) + 2 * t + e2;
          float sc = 0.f, mn = 0.f;
          if (tile_col(br, tl.ct, S::BN, glu) < p.n_out)
            group_scale<KIND>(p, tile_wrow(br, tl.ct, S::BN, glu, p.n_out), gi, sc, mn);
#pragma unroll
          for (int m = 0; m < S::MT; m++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
              const int e = 2 * h + e2;
              acc[m][j][e] = SYM ? fmaf(sc, tmp[m][j][e], acc[m][j][e])
                                 : fmaf(sc, tmp[m][j][e], fmaf(-mn, xs[m][e], acc[m][j][e]));
            }
          }
        }
      }
    }
  }
}

// W8A8: per 32-k step, one ldmatrix.x4 per A fragment (rows 0-7/8-15 × k 0-15/16-31)
// and one per pair of n-fragments (fragment 2q' + q/2, k half q%2).
template <class S>
__device__ __forceinline__ void compute_w8a8(const uint8_t* stage, int (&acc)[S::MT][S::NT][4], int wm, int wn,
                                             bool glu) {
  const int lane = threadIdx.x & 31;
  const uint32_t sa = smem_u32(stage), sb = smem_u32(stage + S::ABytes);
  const int q = lane >> 3, r8 = lane & 7;
#pragma unroll
  for (int ks = 0; ks < S::BK / 32; ks++) {
    uint32_t a[S::MT][4];
#pragma unroll
    for (int m = 0; m < S::MT; m++) {
      int row = wm * 16 * S::MT + m * 16 + (q & 1) * 8 + r8;
      ldmatrix_x4(a[m], sa + row * S::AStride + ks * 32 + (q >> 1) * 16);
    }
#pragma unroll
    for (int jp = 0; jp < S::NT / 2; jp++) {
      uint32_t b[4];
      int row = frag_brow(wn, 2 * jp + (q >> 1), S::NT, S::BN, glu) + r8;
      ldmatrix_x4(b, sb + row * S::BStride + ks * 32 + (q & 1) * 16);
#pragma unroll
      for (int m = 0; m < S::MT; m++) {
        mma_k32_s8(acc[m][2 * jp], a[m], b[0], b[1]);
        mma_k32_s8(acc[m][2 * jp + 1], a[m], b[2], b[3]);
      }
    }
  }
}

// Output element e of accumulator (m, j): row and B-tile row (the C fragment: c0, c1 at
// row g, columns 2t, 2t+1; c2, c3 at row g+8).
template <class S> __device__ __forceinline__ int acc_row(const Tile<S>& t, int wm, int m, int e, int g) {
  return t.rt * S::BM + wm * 16 * S::MT + m * 16 + g + (e >= 2 ? 8 : 0);
}
template <class S>
__device__ __forceinline__ int acc_brow(int wn, int j, int e, int t4, bool glu) {
  return frag_brow(wn, j, S::NT, S::BN, glu) + 2 * t4 + (e & 1);
}

template <typename T> __device__ __forceinline__ void store1(T* p, float v, bool accum) {
  if (accum) v += to_f32(*p);
  *p = from_f32<T>(v);
}
template <typename T> __device__ __forceinline__ void store2(T* p, float v0, float v1, bool accum);
template <> __device__ __forceinline__ void store2<__half>(__half* p, float v0, float v1, bool accum) {
  __half2* q = reinterpret_cast<__half2*>(p);
  if (accum) {
    float2 o = __half22float2(*q);
    v0 += o.x, v1 += o.y;
  }
  *q = __floats2half2_rn(v0, v1);
}
template <>
__device__ __forceinline__ void store2<__nv_bfloat16>(__nv_bfloat16* p, float v0, float v1, bool accum) {
  __nv_bfloat162* q = reinterpret_cast<__nv_bfloat162*>(p);
  if (accum) {
    float2 o = __bfloat1622float2(*q);
    v0 += o.x, v1 += o.y;
  }
  *q = __floats2bfloat162_rn(v0, v1);
}

// Value of an accumulator after the scales: W8A16 acc·w_scale; W8A8
// (acc·x_scale)·w_scale.
template <int KIND, typename A> __device__ __forceinline__ float scaled(A acc, float xs, float ws) {
  if (is_w4(KIND)) return (float)acc; // the group scales are applied per group
  if (KIND == kW8A16) return (float)acc * ws;
  return (float)acc * xs * ws;
}

// Address of output element (row, col): its segment s (0: out, 1: out2, 2: out3) and
// its column l there.
template <typename T> __device__ __forceinline__ T* seg_ptr(const Params& p, int row, int col, int& s, int& l) {
  if (col < p.col2) {
    s = 0, l = col;
    return (T*)p.out + (size_t)row * p.ld_out + l;
  }
  if (col < p.col3) {
    s = 1, l = col - p.col2;
    return (T*)p.out2 + (size_t)row * p.ld_out2 + l;
  }
  s = 2, l = col - p.col3;
  return (T*)p.out3 + (size_t)row * p.ld_out3 + l;
}

// The epilogue of a finished tile: scales, then none / residual add / SiLU(gate)·up.
// The two values of a fragment row (elements 2h, 2h+1) are adjacent columns of one
// weight-tile half, stored together when vec_out allows.
template <int KIND, typename T, class S, typename A>
__device__ __forceinline__ void epilogue(const Params& p, const Tile<S>& t, A (&acc)[S::MT][S::NT][4], int wm, int wn,
                                         bool glu) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const bool accum = p.epi == VIREO_EPI_ACCUMULATE;
#pragma unroll
  for (int j = 0; j < (glu ? S::NT / 2 : S::NT); j++) {
    const int br = acc_brow<S>(wn, j, 0, t4, glu);
    const int col = tile_col(br, t.ct, S::BN, glu); // and col + 1
    if (col >= p.n_out) continue;
    const bool two = col + 1 < p.n_out;
    const long long wg = tile_wrow(br, t.ct, S::BN, glu, p.n_out);
    const float sg0 = is_w4(KIND) ? 1.f : p.w_scale[wg], sg1 = is_w4(KIND) || !two ? 1.f : p.w_scale[wg + 1];
    float su0 = 0.f, su1 = 0.f;
    if (glu && !is_w4(KIND)) {
      const long long wu = tile_wrow(acc_brow<S>(wn, j + S::NT / 2, 0, t4, glu), t.ct, S::BN, glu, p.n_out);
      su0 = p.w_scale[wu], su1 = two ? p.w_scale[wu + 1] : 0.f;
    }
#pragma unroll
    for (int m = 0; m < S::MT; m++) {
#pragma unroll
      for (int h = 0; h < 2; h++) { // h: row g (elements 0, 1) or g+8 (2, 3)
        int row = acc_row<S>(t, wm, m, 2 * h, g);
        if (p.fault == VIREO_MM2_FAULT_ROW && row + 1 < p.n) row += 1;
        if (row >= p.n) continue;
        const float xs = KIND == kW8A8 ? p.x_scale[row] : 1.f;
        float v0 = scaled<KIND>(acc[m][j][2 * h], xs, sg0), v1 = scaled<KIND>(acc[m][j][2 * h + 1], xs, sg1);
        if (glu) {
          v0 = silu2(v0) * scaled<KIND>(acc[m][j + S::NT / 2][2 * h], xs, su0);
          v1 = silu2(v1) * scaled<KIND>(acc[m][j + S::NT / 2][2 * h + 1], xs, su1);
        }
        int s0, l0, s1, l1;
        T* o0 = seg_ptr<T>(p, row, col, s0, l0);
        if (!two) {
          store1<T>(o0, v0, accum);
          continue;
        }
        T* o1 = seg_ptr<T>(p, row, col + 1, s1, l1);
        if (s0 == s1 && (l0 & 1) == 0 && (p.vec_out >> s0 & 1)) {
          store2<T>(o0, v0, v1, accum);
        } else {
          store1<T>(o0, v0, accum);
          store1<T>(o1, v1, accum);
        }
      }
    }
  }
}

// Split-K: publishes this block's partial and reports whether it is the tile's last
// block, in which case acc holds the sum of every slice, in slice order, on return.
template <class S, typename A>
__device__ __forceinline__ bool split_fixup(const Params& p, const Tile<S>& t, A (&acc)[S::MT][S::NT][4]) {
  __shared__ int last;
  const int tid = threadIdx.x;
  A* part = (A*)p.ws;
  int* counters = (int*)((char*)p.ws + (size_t)p.row_tiles * p.col_tiles * p.split * S::BM * S::BN * sizeof(A));
  const size_t tile_base = (size_t)t.tile * p.split * (S::BM * S::BN);
  A* mine = part + tile_base + (size_t)t.slice_id * (S::BM * S::BN);
#pragma unroll
  for (int m = 0; m < S::MT; m++)
#pragma unroll
    for (int j = 0; j < S::NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) mine[((m * S::NT + j) * 4 + e) * S::kThreads + tid] = acc[m][j][e];
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int prev = atomicAdd(&counters[t.tile], 1);
    last = prev == p.split - 1;
    if (last) counters[t.tile] = 0; // ready for the next launch (stream order)
  }
  __syncthreads();
  if (!last) return false;
  __threadfence();
#pragma unroll
  for (int m = 0; m < S::MT; m++)
#pragma unroll
    for (int j = 0; j < S::NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int idx = ((m * S::NT + j) * 4 + e) * S::kThreads + tid;
        A v = 0;
        for (int s = 0; s < p.split; s++) v += s == t.slice_id ? acc[m][j][e] : __ldcg(part + tile_base + (size_t)s * (S::BM * S::BN) + idx);
        acc[m][j][e] = v;
      }
  return true;
}

template <int KIND, typename T, class S>
__global__ void __launch_bounds__(S::kThreads, 1) mm2_kernel(const Params p) {
  extern __shared__ __align__(128) uint8_t smem[];
  using A = typename std::conditional<KIND == kW8A8, int, float>::type;
  const Tile<S> t = block_tile<S>(p);
  const int warp = threadIdx.x >> 5;
  const int wm = warp / S::WN, wn = warp % S::WN;
  const bool glu = p.epi == VIREO_EPI_SILU_GLU;
  const bool half_rows = p.n - t.rt * S::BM <= 8;

  A acc[S::MT][S::NT][4];
#pragma unroll
  for (int m = 0; m < S::MT; m++)
#pragma unroll
    for (int j = 0; j < S::NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[m][j][e] = 0;

  int nk = t.k1 > t.k0 ? (t.k1 - t.k0 + S::BK - 1) / S::BK : 0;
  if (p.fault == VIREO_MM2_FAULT_KSTEP && nk > 1) nk -= 1; // drops the slice's last stage
#pragma unroll
  for (int s = 0; s < S::STAGES - 1; s++) {
    if (s < nk) load_stage<S>(p, t, smem + s * S::StageBytes, t.k0 + s * S::BK, glu);
    cp_async_commit();
  }
  for (int it = 0; it < nk; it++) {
    cp_async_wait<S::STAGES - 2>();
    __syncthreads();
    int pf = it + S::STAGES - 1;
    if (pf < nk) load_stage<S>(p, t, smem + (pf % S::STAGES) * S::StageBytes, t.k0 + pf * S::BK, glu);
    cp_async_commit();
    const uint8_t* st = smem + (it % S::STAGES) * S::StageBytes;
    if constexpr (is_w4(KIND)) {
      compute_w4<T, KIND, S>(p, t, st, acc, wm, wn, glu, half_rows, t.k0 + it * S::BK);
    } else if constexpr (KIND == kW8A16) {
      compute_w8a16<T, S>(st, acc, wm, wn, glu, half_rows);
    } else {
      compute_w8a8<S>(st, acc, wm, wn, glu);
    }
  }
  cp_async_wait<0>();

  if (p.split > 1 && !split_fixup<S>(p, t, acc)) return;
  epilogue<KIND, T, S>(p, t, acc, wm, wn, glu);
}

// ---- host side ------------------------------------------------------------------

// The configuration table: X(index, warps_m, warps_n, m_tiles, n_tiles, bk, stages).
// W8A16: 0-2 one 16-row fragment (decode, 1..16 rows: 128 or 256 weight rows per
// block, 128- or 64-k stages), 3 32 rows, 4 64 rows (8 warps), 5 128 rows (8 warps of
// 64×32). W8A8: 6 128×128 (8 warps of 64×32), 7 the same with 128-k stages, 8 16×128
// (a few prompt rows), 9 64×128. kmodel.Configs mirrors this list (a cuda-tagged test
// compares it with vireo_matmul2_config).
#define VIREO_MM2_W8A16_CONFIGS(X) \
  X(0, 1, 4, 1, 4, 128, 4)         \
  X(1, 1, 8, 1, 4, 128, 4)         \
  X(2, 1, 4, 1, 4, 64, 6)          \
  X(3, 1, 4, 2, 4, 64, 4)          \
  X(4, 2, 4, 2, 4, 64, 4)          \
  X(5, 2, 4, 4, 4, 64, 3)
#define VIREO_MM2_W8A8_CONFIGS(X) \
  X(6, 2, 4, 4, 4, 64, 4)         \
  X(7, 2, 4, 4, 4, 128, 3)        \
  X(8, 1, 4, 1, 4, 128, 4)        \
  X(9, 2, 4, 2, 4, 64, 4)
// W4A16 (matmul2_w4a16.cu; bk a multiple of 128): 10-11 decode (1..16 rows, 128 or 256
// weight rows per block), 12 32 rows, 13 64 rows (8 warps); more rows take 64-row tiles.
#define VIREO_MM2_W4A16_CONFIGS(X) \
  X(10, 1, 4, 1, 4, 128, 4)        \
  X(11, 1, 8, 1, 4, 128, 4)        \
  X(12, 1, 4, 2, 4, 128, 4)        \
  X(13, 2, 4, 2, 4, 128, 3)
constexpr int kConfigs = 14;

// One row of the configuration table (vireo_mm2_config; kmodel.Configs mirrors it).
struct CfgRow {
  int kind, wm, wn, mt, nt, bk, stages;
};

// The launch function of configuration i for activation type dt (one per kernel file).
int launch_w8a16(int cfg, int dt, const Params& p, dim3 grid, cudaStream_t s);
int launch_w8a8(int cfg, int dt, const Params& p, dim3 grid, cudaStream_t s);
int launch_w4a16(int cfg, int dt, bool affine, const Params& p, dim3 grid, cudaStream_t s);

// Sets the dynamic shared-memory limit of kernel f once per process (every device the
// process uses gets it on first launch there: cudaFuncSetAttribute is per device).
template <typename F> int prepare(F f, int smem) {
  if (smem <= 48 * 1024) return VIREO_OK;
  cudaError_t e = cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return cuda_status(e, "vireo_matmul2", "cudaFuncSetAttribute(max dynamic shared memory)");
  return VIREO_OK;
}

template <int KIND, typename T, class S> int launch(const Params& p, dim3 grid, cudaStream_t s) {
  static int prepared = -1; // device+1 it was prepared for
  int dev = 0;
  cudaGetDevice(&dev);
  if (prepared != dev + 1) {
    if (int st = prepare(mm2_kernel<KIND, T, S>, S::SmemBytes)) return st;
    prepared = dev + 1;
  }
  mm2_kernel<KIND, T, S><<<grid, S::kThreads, S::SmemBytes, s>>>(p);
  return VIREO_OK;
}

} // namespace mm2
} // namespace vireo
