// decode.cu: the paged-cache index of a pass and the small kernel of a decode loop kept
// on the device (ARCHITECTURE.md, "One op set"; DESIGN.md, "Decode loop on the device").
//
//   - vireo_kv_index turns a pass's device-resident positions, sequence numbers and
//     block tables into the metadata vireo_write_kv and vireo_attention take (slots,
//     seqs, row_seq), so every pass, eager or a captured decode step, reads what varies
//     per step from device memory, and a step can be captured as a graph once and
//     replayed. Napkin math: n rows read pos/bs+1 table entries each (Llama-3-8B at
//     8k context, 256 rows: 128 KB, well under 1 µs of bandwidth); it is launch bound,
//     ~2-3 µs, twice per layer.
//   - vireo_decode_advance runs after vireo_sample: it reports each row's token, appends
//     it to the row's penalty history, advances the Philox draw index and the position,
//     and ends rows (pos = -1: the finished mask) on a stop id or at their limit.
//
// Both are one thread (or one warp) per row; they cost microseconds. Reference
// semantics: runtime/backend/backend.go (KVIndex, DecodeLooper).
#include "common.cuh"

using namespace vireo;

namespace {

constexpr int kIndexWarps = 8; // rows per block of kv_index

// One warp per row: the lanes check the row's block-table entries 0 .. pos/bs together.
__global__ void __launch_bounds__(kIndexWarps * 32)
    kv_index_kernel(const int32_t* __restrict__ pos, const int32_t* __restrict__ seq, const int32_t* __restrict__ tables,
                    int n, int n_tables, int max_blocks, int block_size, int num_blocks, int max_ctx,
                    int32_t* __restrict__ slots, int32_t* __restrict__ seqs, int32_t* __restrict__ row_seq) {
  const int lane = threadIdx.x & 31;
  const int i = blockIdx.x * kIndexWarps + (threadIdx.x >> 5);
  if (i >= n) return; // whole warps leave together: i is uniform within a warp
  const int p = pos[i];
  const int sq = seq[i];
  const bool has_table = sq >= 0 && sq < n_tables;
  const int32_t* t = tables + (size_t)(has_table ? sq : 0) * max_blocks;
  const int last = p >= 0 ? p / block_size : -1; // last block the row's context touches
  const bool in_table = has_table && p >= 0 && last < max_blocks;
  // Every entry 0 .. last inside the cache? (Entries past last are never read.)
  bool ok = in_table;
  if (in_table) {
    bool bad = false;
    for (int b = lane; b <= last; b += 32) {
      int blk = t[b];
      bad |= blk < 0 || blk >= num_blocks;
    }
    ok = !__any_sync(0xffffffffu, bad);
  }
  if (lane != 0) return;
  // The slot: only the entry for pos itself matters to the write.
  int slot = -1;
  if (in_table) {
    int blk = t[last];
    if (blk >= 0 && blk < num_blocks) slot = blk * block_size + p % block_size;
  }
  slots[i] = slot;
  seqs[4 * i] = i;
  seqs[4 * i + 1] = 1;
  seqs[4 * i + 2] = p >= 0 ? p : 0;
  seqs[4 * i + 3] = (has_table ? sq : 0) * max_blocks;
  // pos+1 > max_ctx, written so that pos = INT_MAX cannot overflow.
  row_seq[i] = ok && p < max_ctx ? i : -1;
}

__global__ void decode_advance_kernel(int rows, int32_t* __restrict__ ids, int32_t* __restrict__ pos,
                                      const int32_t* __restrict__ limit, const int32_t* __restrict__ stop_ids,
                                      const int32_t* __restrict__ stop_count, const int32_t* __restrict__ next,
                                      vireo_sampling_params* __restrict__ params, int32_t* __restrict__ history,
                                      int32_t* __restrict__ out) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const int p = pos[r];
  if (p < 0) {
    out[r] = VIREO_TOKEN_ENDED;
    return;
  }
  const int t = next[r];
  bool end;
  if (t < 0) {
    out[r] = VIREO_TOKEN_HOST;
    end = true;
  } else {
    out[r] = t;
    vireo_sampling_params& P = params[r];
    if (history) history[P.history_off + P.history_len] = t;
    P.history_len += 1;
    P.token_index += 1;
    int ns = stop_count[r];
    ns = ns < 0 ? 0 : (ns > VIREO_MAX_STOP_IDS ? VIREO_MAX_STOP_IDS : ns);
    end = false;
    for (int j = 0; j < ns; j++) end |= stop_ids[r * VIREO_MAX_STOP_IDS + j] == t;
    end |= p + 1 >= limit[r]; // p < INT_MAX here: pos < limit held before this step
    if (!end) {
      ids[r] = t;
      pos[r] = p + 1;
    }
  }
  if (end) {
    pos[r] = -1;
    // The row is done for this loop, but the sampler still runs over it every step
    // (fixed shape): make that the cheap greedy path with no penalties.
    vireo_sampling_params& P = params[r];
    P.temperature = 0.f;
    P.repetition_penalty = 1.f;
    P.presence_penalty = 0.f;
    P.frequency_penalty = 0.f;
  }
}

} // namespace

extern "C" {

int vireo_kv_index(vireo_stream_t stream, const int32_t* pos, const int32_t* seq, const int32_t* tables, int n,
                   int n_tables, int max_blocks, int block_size, int num_blocks, int max_ctx, int32_t* slots,
                   int32_t* seqs, int32_t* row_seq) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(pos && seq && tables && slots && seqs && row_seq && n > 0 && n_tables > 0 && max_blocks > 0 &&
                      block_size > 0 && num_blocks > 0 && max_ctx >= 0 &&
                      (long long)n_tables * max_blocks <= 0x7fffffffLL &&
                      (long long)num_blocks * block_size <= 0x7fffffffLL,
                  "vireo_kv_index: bad arguments n=%d tables=%d max_blocks=%d block=%d blocks=%d max_ctx=%d", n,
                  n_tables, max_blocks, block_size, num_blocks, max_ctx);
  kv_index_kernel<<<ceil_div(n, kIndexWarps), kIndexWarps * 32, 0, as_stream(stream)>>>(
      pos, seq, tables, n, n_tables, max_blocks, block_size, num_blocks, max_ctx, slots, seqs, row_seq);
  return launch_status("vireo_kv_index", "n=%d tables=%d max_blocks=%d block=%d blocks=%d max_ctx=%d", n, n_tables,
                       max_blocks, block_size, num_blocks, max_ctx);
}

int vireo_decode_advance(vireo_stream_t stream, int rows, int32_t* ids, int32_t* pos, const int32_t* limit,
                         const int32_t* stop_ids, const int32_t* stop_count, const int32_t* next,
                         vireo_sampling_params* params, int32_t* history, int32_t* out) {
  if (rows == 0) return VIREO_OK;
  VIREO_CHECK_ARG(ids && pos && limit && stop_ids && stop_count && next && params && out && rows > 0,
                  "vireo_decode_advance: bad arguments rows=%d", rows);
  decode_advance_kernel<<<ceil_div(rows, 128), 128, 0, as_stream(stream)>>>(rows, ids, pos, limit, stop_ids,
                                                                             stop_count, next, params, history, out);
  return launch_status("vireo_decode_advance", "rows=%d", rows);
}

} // extern "C"
