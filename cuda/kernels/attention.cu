// attention.cu: the paged KV cache write and causal paged attention.
//
// Reference: runtime/backend/cpu/attention.go (and WriteKV in ops.go). One kernel serves
// prefill chunks and decode tokens alike: a block takes one query row and up to 8 query
// heads that share a kv head (GQA: each K/V row is read once for the group), its four
// warps stride over the row's positions with an online softmax each, and the warps'
// states are merged in shared memory. Long contexts are split over blockIdx.z (split-K);
// the splits' (max, sum, unnormalized output) are merged by a second kernel with the
// log-sum-exp rule. Scores and softmax are fp32; K/V are stored in the activation dtype.
#include "common.cuh"

using namespace vireo;

namespace {

constexpr int kMaxGroup = 8;   // query heads per block
constexpr int kWarps = 4;      // warps per block
constexpr int kMaxHeadDim = 256;

template <typename T>
__global__ void write_kv_kernel(T* __restrict__ kc, T* __restrict__ vc, const T* __restrict__ k,
                                const T* __restrict__ v, int ld_k, int ld_v, const int32_t* __restrict__ slots,
                                int kv_heads, int head_dim, int block_size, int num_blocks) {
  int i = blockIdx.x, h = blockIdx.y;
  int slot = slots[i];
  if (slot < 0 || slot >= num_blocks * block_size) return;
  int blk = slot / block_size, off = slot % block_size;
  size_t dst = (((size_t)blk * kv_heads + h) * block_size + off) * head_dim;
  const T* ks = k + (size_t)i * ld_k + h * head_dim;
  const T* vs = v + (size_t)i * ld_v + h * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    kc[dst + d] = ks[d];
    vc[dst + d] = vs[d];
  }
}

__device__ __forceinline__ float exp_or_zero(float a, float m) { return a == -INFINITY ? 0.f : expf(a - m); }

// NC: head-dim elements per lane (head_dim <= 32*NC); lane holds d = lane + 32*c.
template <typename T, int NC>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(T* __restrict__ out, const T* __restrict__ q, int ld_out, int ld_q, const T* __restrict__ kc,
                     const T* __restrict__ vc, const int32_t* __restrict__ seqs, const int32_t* __restrict__ row_seq,
                     const int32_t* __restrict__ tables, int heads, int kv_heads, int head_dim, int block_size,
                     int split_len, float scale, float* __restrict__ ws_acc, float* __restrict__ ws_ml) {
  __shared__ float q_s[kMaxGroup][kMaxHeadDim];
  __shared__ float acc_s[kWarps][kMaxGroup][kMaxHeadDim];
  __shared__ float m_s[kWarps][kMaxGroup], l_s[kWarps][kMaxGroup];

  const int r = blockIdx.x;
  const int group = heads / kv_heads;
  const int gchunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / gchunks;
  const int g0 = (blockIdx.y % gchunks) * kMaxGroup;
  const int ng = min(kMaxGroup, group - g0);
  const int h0 = kvh * group + g0; // first query head of this block
  const int split = blockIdx.z, n_splits = gridDim.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  const int si = row_seq[r];
  if (si < 0) {
    if (n_splits == 1) {
      for (int t = threadIdx.x; t < ng * head_dim; t += blockDim.x)
        out[(size_t)r * ld_out + (h0 + t / head_dim) * head_dim + t % head_dim] = from_f32<T>(0.f);
    }
    return; // with splits, the merge kernel writes the zeros
  }
  const int q0 = seqs[4 * si], pos = seqs[4 * si + 2], boff = seqs[4 * si + 3];
  const int ctx = pos + (r - q0) + 1;
  const int p_begin = split * split_len, p_end = min(ctx, p_begin + split_len);

  for (int t = threadIdx.x; t < ng * head_dim; t += blockDim.x) {
    int j = t / head_dim, d = t % head_dim;
    q_s[j][d] = to_f32(q[(size_t)r * ld_q + (h0 + j) * head_dim + d]);
  }
  __syncthreads();

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][NC];
#pragma unroll
  for (int j = 0; j < kMaxGroup; j++) {
    m[j] = -INFINITY;
    l[j] = 0.f;
#pragma unroll
    for (int c = 0; c < NC; c++) acc[j][c] = 0.f;
  }

  for (int p = p_begin + warp; p < p_end; p += kWarps) {
    int blk = tables[boff + p / block_size];
    size_t row = (((size_t)blk * kv_heads + kvh) * block_size + p % block_size) * head_dim;
    float kv[NC], vv[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
      int d = lane + 32 * c;
      bool ok = d < head_dim;
      kv[c] = ok ? to_f32(kc[row + d]) : 0.f;
      vv[c] = ok ? to_f32(vc[row + d]) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < kMaxGroup; j++) {
      if (j < ng) {
        float s = 0.f;
#pragma unroll
        for (int c = 0; c < NC; c++) {
          int d = lane + 32 * c;
          if (d < head_dim) s += kv[c] * q_s[j][d];
        }
        s = warp_sum(s) * scale;
        float mn = fmaxf(m[j], s);
        float corr = exp_or_zero(m[j], mn);
        float e = expf(s - mn);
        l[j] = l[j] * corr + e;
#pragma unroll
        for (int c = 0; c < NC; c++) acc[j][c] = acc[j][c] * corr + e * vv[c];
        m[j] = mn;
      }
    }
  }

  // Merge the warps' states.
#pragma unroll
  for (int j = 0; j < kMaxGroup; j++) {
    if (j < ng) {
      if (lane == 0) {
        m_s[warp][j] = m[j];
        l_s[warp][j] = l[j];
      }
#pragma unroll
      for (int c = 0; c < NC; c++) {
        int d = lane + 32 * c;
        if (d < head_dim) acc_s[warp][j][d] = acc[j][c];
      }
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < ng * head_dim; t += blockDim.x) {
    int j = t / head_dim, d = t % head_dim;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, m_s[w][j]);
    float L = 0.f, A = 0.f;
    for (int w = 0; w < kWarps; w++) {
      float f = exp_or_zero(m_s[w][j], M);
      L += l_s[w][j] * f;
      A += acc_s[w][j][d] * f;
    }
    int h = h0 + j;
    if (n_splits == 1) {
      out[(size_t)r * ld_out + h * head_dim + d] = from_f32<T>(L > 0.f ? A / L : 0.f);
    } else {
      size_t part = ((size_t)r * heads + h) * n_splits + split;
      ws_acc[part * head_dim + d] = A;
      if (d == 0) {
        ws_ml[2 * part] = M;
        ws_ml[2 * part + 1] = L;
      }
    }
  }
}

// One block per (row, head): out = Σ_s e^{m_s-M} acc_s / Σ_s e^{m_s-M} l_s.
template <typename T>
__global__ void attention_merge_kernel(T* __restrict__ out, int ld_out, const int32_t* __restrict__ row_seq,
                                       int heads, int head_dim, int n_splits, const float* __restrict__ ws_acc,
                                       const float* __restrict__ ws_ml) {
  int r = blockIdx.x, h = blockIdx.y;
  T* o = out + (size_t)r * ld_out + h * head_dim;
  if (row_seq[r] < 0) {
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) o[d] = from_f32<T>(0.f);
    return;
  }
  size_t base = ((size_t)r * heads + h) * n_splits;
  float M = -INFINITY;
  for (int s = 0; s < n_splits; s++) M = fmaxf(M, ws_ml[2 * (base + s)]);
  float L = 0.f;
  for (int s = 0; s < n_splits; s++) L += ws_ml[2 * (base + s) + 1] * exp_or_zero(ws_ml[2 * (base + s)], M);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float A = 0.f;
    for (int s = 0; s < n_splits; s++) A += ws_acc[(base + s) * head_dim + d] * exp_or_zero(ws_ml[2 * (base + s)], M);
    o[d] = from_f32<T>(L > 0.f ? A / L : 0.f);
  }
}

constexpr int kMinSplitLen = 256; // positions per split at least
constexpr int kMaxSplits = 32;

int sm_count() {
  static int sms = 0;
  if (sms == 0) {
    int dev = 0, v = 0;
    // Failures here are not this launch's: clear them (cudaGetLastError) so that the
    // attention launch's own check does not report them.
    if (cudaGetDevice(&dev) != cudaSuccess) {
      cudaGetLastError();
      dev = 0;
    }
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) {
      cudaGetLastError();
      v = 100;
    }
    sms = v;
  }
  return sms;
}

// How many splits of the context fill the device for a grid of base_blocks blocks per
// split: the same rule sizes the workspace (with base_blocks = n_rows, a lower bound of
// the real grid, so the workspace always covers the launch's choice).
int choose_splits(long long base_blocks, int max_ctx) {
  if (max_ctx <= kMinSplitLen || base_blocks <= 0) return 1;
  long long want = (2LL * sm_count() + base_blocks - 1) / base_blocks;
  int most = (max_ctx + kMinSplitLen - 1) / kMinSplitLen;
  if (want > most) want = most;
  if (want > kMaxSplits) want = kMaxSplits;
  return (int)(want < 1 ? 1 : want);
}

size_t split_bytes(int n_rows, int heads, int head_dim, int splits) {
  return (size_t)n_rows * heads * splits * (head_dim + 2) * sizeof(float);
}


struct AttnArgs {
  void* out;
  const void* q;
  int ld_out, ld_q;
  const void *kc, *vc;
  const int32_t *seqs, *row_seq, *tables;
  int heads, kv_heads, head_dim, block_size, split_len;
  float scale;
  float *ws_acc, *ws_ml;
};

template <typename T, int NC>
void launch_attention_nc(const AttnArgs& a, dim3 grid, cudaStream_t s) {
  attention_kernel<T, NC><<<grid, kWarps * 32, 0, s>>>((T*)a.out, (const T*)a.q, a.ld_out, a.ld_q, (const T*)a.kc,
                                                       (const T*)a.vc, a.seqs, a.row_seq, a.tables, a.heads,
                                                       a.kv_heads, a.head_dim, a.block_size, a.split_len, a.scale,
                                                       a.ws_acc, a.ws_ml);
}

template <typename T>
int launch_attention(const AttnArgs& a, dim3 grid, int splits, int n_rows, cudaStream_t s) {
  if (a.head_dim <= 32) launch_attention_nc<T, 1>(a, grid, s);
  else if (a.head_dim <= 64) launch_attention_nc<T, 2>(a, grid, s);
  else if (a.head_dim <= 128) launch_attention_nc<T, 4>(a, grid, s);
  else launch_attention_nc<T, 8>(a, grid, s);
  if (splits > 1) {
    int st = launch_status("vireo_attention", "rows=%d heads=%d kv_heads=%d head_dim=%d splits=%d", n_rows, a.heads,
                           a.kv_heads, a.head_dim, splits);
    if (st) return st;
    attention_merge_kernel<T><<<dim3(n_rows, a.heads), 64, 0, s>>>((T*)a.out, a.ld_out, a.row_seq, a.heads,
                                                                   a.head_dim, splits, a.ws_acc, a.ws_ml);
  }
  return VIREO_OK;
}

} // namespace

extern "C" {

int vireo_write_kv(vireo_stream_t stream, int dtype, void* k_cache, void* v_cache, const void* k, const void* v,
                   int ld_k, int ld_v, const int32_t* slots, int n, int kv_heads, int head_dim, int block_size,
                   int num_blocks) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(k_cache && v_cache && k && v && slots && n > 0 && kv_heads > 0 && head_dim > 0 &&
                      block_size > 0 && num_blocks > 0 && ld_k >= kv_heads * head_dim && ld_v >= kv_heads * head_dim,
                  "vireo_write_kv: bad arguments n=%d kv_heads=%d head_dim=%d block=%d blocks=%d ld_k=%d ld_v=%d", n,
                  kv_heads, head_dim, block_size, num_blocks, ld_k, ld_v);
  dim3 grid(n, kv_heads);
  int th = head_dim >= 128 ? 128 : (head_dim >= 64 ? 64 : 32);
  VIREO_DISPATCH_ACT("vireo_write_kv", dtype, T, {
    write_kv_kernel<T><<<grid, th, 0, as_stream(stream)>>>((T*)k_cache, (T*)v_cache, (const T*)k, (const T*)v, ld_k,
                                                           ld_v, slots, kv_heads, head_dim, block_size, num_blocks);
  });
  return launch_status("vireo_write_kv", "n=%d kv_heads=%d head_dim=%d block=%d blocks=%d", n, kv_heads, head_dim,
                       block_size, num_blocks);
}

int vireo_attention_workspace_bytes(size_t* bytes, int n_rows, int heads, int head_dim, int max_ctx) {
  VIREO_CHECK_ARG(bytes && n_rows >= 0 && heads >= 0 && head_dim >= 0,
                  "vireo_attention_workspace_bytes: bad arguments rows=%d heads=%d head_dim=%d", n_rows, heads,
                  head_dim);
  // The most splits vireo_attention can choose: its grid has at least n_rows blocks per
  // split (kv_heads * group chunks >= 1), so this bounds its choice from above. Sizing
  // for ceil(max_ctx/256) splits regardless of the rows asked for up to 4 GiB for a
  // prefill chunk (8192 rows x 32 heads x 32 splits x 130 floats) that never splits.
  int splits = choose_splits(n_rows, max_ctx);
  *bytes = splits > 1 ? split_bytes(n_rows, heads, head_dim, splits) : 0;
  return VIREO_OK;
}

int vireo_attention(vireo_stream_t stream, int dtype, void* out, const void* q, int ld_out, int ld_q,
                    const void* k_cache, const void* v_cache, const int32_t* seqs, const int32_t* row_seq,
                    const int32_t* block_tables, int n_rows, int n_seqs, int heads, int kv_heads, int head_dim,
                    int block_size, int max_ctx, float scale, void* workspace, size_t workspace_bytes) {
  if (n_rows == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && q && k_cache && v_cache && row_seq && n_rows > 0 && n_rows <= 0x7fffffff && heads > 0 &&
                      kv_heads > 0 && heads % kv_heads == 0 && head_dim > 0 && head_dim <= kMaxHeadDim &&
                      block_size > 0 && max_ctx >= 0 && ld_q >= heads * head_dim && ld_out >= heads * head_dim,
                  "vireo_attention: bad arguments rows=%d heads=%d kv_heads=%d head_dim=%d (<= %d) block=%d "
                  "max_ctx=%d ld_q=%d ld_out=%d",
                  n_rows, heads, kv_heads, head_dim, kMaxHeadDim, block_size, max_ctx, ld_q, ld_out);
  VIREO_CHECK_ARG(n_seqs == 0 || (seqs && block_tables), "vireo_attention: %d sequences without tables", n_seqs);
  int group = heads / kv_heads;
  int gchunks = (group + kMaxGroup - 1) / kMaxGroup;
  long long base_blocks = (long long)n_rows * kv_heads * gchunks;
  VIREO_CHECK_ARG(kv_heads * gchunks <= 65535, "vireo_attention: %d kv heads x %d groups", kv_heads, gchunks);

  // Split long contexts so the grid fills the device, within the workspace.
  int splits = choose_splits(base_blocks, max_ctx);
  while (splits > 1 && (!workspace || split_bytes(n_rows, heads, head_dim, splits) > workspace_bytes)) splits--;
  // One split covers every position whatever max_ctx says; with splits, max_ctx must be
  // the largest context (the Go side computes it from the batch).
  int split_len = splits > 1 ? (max_ctx + splits - 1) / splits : (1 << 30);
  float* ws_acc = (float*)workspace;
  float* ws_ml = splits > 1 ? ws_acc + (size_t)n_rows * heads * splits * head_dim : nullptr;
  dim3 grid(n_rows, kv_heads * gchunks, splits);
  cudaStream_t s = as_stream(stream);
  AttnArgs a{out, q, ld_out, ld_q, k_cache, v_cache, seqs, row_seq, block_tables, heads, kv_heads, head_dim,
             block_size, split_len, scale, ws_acc, ws_ml};
  int st = VIREO_OK;
  if (dtype == VIREO_F16) st = launch_attention<__half>(a, grid, splits, n_rows, s);
  else if (dtype == VIREO_BF16) st = launch_attention<__nv_bfloat16>(a, grid, splits, n_rows, s);
  else return set_error(VIREO_ERR_ARG, "vireo_attention: activation dtype %s", dtype_name(dtype));
  if (st) return st;
  return launch_status("vireo_attention", "rows=%d seqs=%d heads=%d kv_heads=%d head_dim=%d max_ctx=%d splits=%d",
                       n_rows, n_seqs, heads, kv_heads, head_dim, max_ctx, splits);
}

} // extern "C"
