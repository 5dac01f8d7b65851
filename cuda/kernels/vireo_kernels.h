// vireo_kernels.h: the one C ABI between Go (package cgo) and Vireo's CUDA kernels.
//
// Everything the Go side does on the GPU goes through these functions: memory, streams,
// events, graphs, device information and the kernels. The CUDA runtime is linked
// statically into libvireo_kernels.so, so there is exactly one runtime in the process
// and the Go binary never links cudart itself.
//
// Conventions
//   - Every function returns an int status: 0 (VIREO_OK) on success, otherwise one of
//     vireo_status. The message (op name, shapes, CUDA error string) is kept per host
//     thread; read it with vireo_last_error on the same thread (the Go side locks its
//     goroutine to the OS thread across the call and the read).
//   - Pointers are raw device pointers unless the comment says "host". Shapes are
//     explicit, in elements; matrices are row-major, "ld" is a row stride in elements.
//   - dtype arguments take vireo_dtype values; "activation" dtypes are VIREO_F16 and
//     VIREO_BF16. Arithmetic accumulates in fp32 whatever the storage type.
//   - stream is a cudaStream_t as an opaque pointer; NULL is the legacy default stream.
//     Kernel launches are asynchronous; launch errors are reported at once (the kernel's
//     own faults surface at the next synchronizing call).
//   - The KV cache has the activation dtype (fp16 by default), one K and one V pool per
//     layer, each [num_blocks][kv_heads][block_size][head_dim].
#ifndef VIREO_KERNELS_H
#define VIREO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// 2: vireo_decode_index, vireo_decode_advance; vireo_rope skips rows with pos < 0.
// 3: vireo_fill_uniform, vireo_probe.
// 4: vireo_matmul_sp24.
// 5: vireo_kv_index (a per-row sequence into the block tables) replaces vireo_decode_index.
// 6: vireo_nvtx_range_id, vireo_nvtx_push, vireo_nvtx_pop.
// 7: vireo_lora.
// 8: vireo_attention2_workspace_bytes takes max_ctx (the partials are sized by the call's splits).
// 9: vireo_matmul2, vireo_matmul2_config, vireo_matmul2_workspace_bytes (kernels v2).
// 10: vireo_matmul2 takes W4A16 weights (VIREO_MM2_W4A16, vireo_mm2_args.w4_scale/w4_sub/w4_mode; configurations 10-13).
#define VIREO_ABI_VERSION 10

typedef void* vireo_stream_t;     // cudaStream_t
typedef void* vireo_event_t;      // cudaEvent_t
typedef void* vireo_graph_t;      // cudaGraph_t
typedef void* vireo_graph_exec_t; // cudaGraphExec_t

// Element types; the values equal Go's backend.DType.
enum vireo_dtype {
  VIREO_F32 = 0,
  VIREO_F16 = 1,
  VIREO_BF16 = 2,
  VIREO_I8 = 3,
  VIREO_I32 = 4,
};

enum vireo_status {
  VIREO_OK = 0,
  VIREO_ERR_CUDA = 1,        // a CUDA runtime call or launch failed
  VIREO_ERR_ARG = 2,         // bad shape, dtype or pointer
  VIREO_ERR_UNSUPPORTED = 3, // valid, but no kernel for this case
  VIREO_ERR_NO_DEVICE = 4,   // no CUDA device or driver
  VIREO_NOT_READY = 5,       // vireo_event_query: work still pending (not an error)
};

// ---- errors and versions ---------------------------------------------------------

// Copies this thread's last error message (NUL-terminated, truncated to len) into buf
// (host); returns the message's full length.
int vireo_last_error(char* buf, int len);
// VIREO_ABI_VERSION of the library.
int vireo_abi_version(void);
// CUDA runtime version the library was built with and the driver's version
// (e.g. 11080, 13000); driver 0 when no driver is installed.
int vireo_versions(int* runtime_version, int* driver_version);
// Compute capabilities compiled into the library as SASS, e.g. "80,90,90a" (host buf).
int vireo_build_archs(char* buf, int len);

// ---- devices ---------------------------------------------------------------------

typedef struct {
  char name[256];
  int major, minor;            // compute capability
  int multiprocessors;
  int max_threads_per_sm;
  int l2_bytes;
  int smem_per_block_optin;    // bytes a block may use after cudaFuncSetAttribute
  int clock_khz;               // SM clock
  int mem_clock_khz;
  int mem_bus_bits;
  int reserved;
  size_t total_mem;            // bytes
} vireo_device_info;

int vireo_device_count(int* count);                        // 0 devices: VIREO_ERR_NO_DEVICE
int vireo_set_device(int device);                          // for the calling thread
int vireo_device_info_get(int device, vireo_device_info* out); // out: host
int vireo_mem_info(size_t* free_bytes, size_t* total_bytes);   // current device
int vireo_device_sync(void);
// Launches one tiny kernel on the legacy stream and copies its 32 ints back to values
// (host): values[i] = 3*i + 1. A library without a kernel image for the card (or a
// broken driver) fails here with the CUDA error, before any real op runs.
int vireo_probe(int* values);

// ---- memory ----------------------------------------------------------------------

int vireo_malloc(void** ptr, size_t bytes);
int vireo_free(void* ptr);
int vireo_malloc_host(void** ptr, size_t bytes); // pinned host memory
int vireo_free_host(void* ptr);
// Copies with stream == NULL are synchronous (cudaMemcpy); otherwise asynchronous on
// stream (host memory should then be pinned for the copy to overlap).
int vireo_memcpy_h2d(void* dst, const void* src_host, size_t bytes, vireo_stream_t stream);
int vireo_memcpy_d2h(void* dst_host, const void* src, size_t bytes, vireo_stream_t stream);
int vireo_memcpy_d2d(void* dst, const void* src, size_t bytes, vireo_stream_t stream);
int vireo_memset(void* dst, int value, size_t bytes, vireo_stream_t stream);

// ---- streams, events, graphs -----------------------------------------------------

// Lower numbers are higher priorities; greatest <= least.
int vireo_stream_priority_range(int* least, int* greatest);
// A non-blocking stream (no implicit sync with the legacy default stream).
int vireo_stream_create(vireo_stream_t* stream, int priority);
int vireo_stream_destroy(vireo_stream_t stream);
int vireo_stream_sync(vireo_stream_t stream);

// timing != 0 creates an event usable with vireo_event_elapsed_ms.
int vireo_event_create(vireo_event_t* event, int timing);
int vireo_event_destroy(vireo_event_t event);
int vireo_event_record(vireo_event_t event, vireo_stream_t stream);
int vireo_stream_wait_event(vireo_stream_t stream, vireo_event_t event);
// VIREO_OK when the event's work is complete, VIREO_NOT_READY when pending.
int vireo_event_query(vireo_event_t event);
int vireo_event_sync(vireo_event_t event);
int vireo_event_elapsed_ms(float* ms, vireo_event_t start, vireo_event_t end);

// ---- NVTX ranges (nvtx.cu) ---------------------------------------------------------

#define VIREO_NVTX_MAX_RANGES 4096
// Registers a range name (at most 63 bytes are kept; the same name again gives the same
// id) in the "vireo" NVTX domain with a display color 0xRRGGBB. VIREO_ERR_ARG once
// VIREO_NVTX_MAX_RANGES names are registered.
int vireo_nvtx_range_id(const char* name, unsigned color, int* id);
// Opens a range of a registered id on the calling thread (an unknown id: nothing);
// pop closes the thread's innermost one. Without a tool attached both are no-ops.
void vireo_nvtx_push(int id);
void vireo_nvtx_pop(void);

// Capture (relaxed mode) every launch on stream into a graph until end_capture.
int vireo_graph_begin_capture(vireo_stream_t stream);
int vireo_graph_end_capture(vireo_stream_t stream, vireo_graph_t* graph);
int vireo_graph_instantiate(vireo_graph_exec_t* exec, vireo_graph_t graph);
int vireo_graph_launch(vireo_graph_exec_t exec, vireo_stream_t stream);
int vireo_graph_destroy(vireo_graph_t graph);
int vireo_graph_exec_destroy(vireo_graph_exec_t exec);

// ---- elementwise, norms, rope, embeddings (norm_rope.cu) -------------------------

// dst[i] = src[i] converted; f32, f16 and bf16 in any combination.
int vireo_convert(vireo_stream_t stream,
                  int dst_dtype, void* dst,       // [n]
                  int src_dtype, const void* src, // [n]
                  size_t n);

// out[i][:] = table[ids[i]][:] (times scales[ids[i]] for int8 tables). Ids outside
// [0, vocab) give a zero row (the Go side rejects them before launching).
int vireo_embed(vireo_stream_t stream, int dtype,
                void* out,            // [n][dim] activation dtype
                int table_dtype,
                const void* table,    // [vocab][dim] f32, f16, bf16 or i8
                const float* scales,  // [vocab] for an i8 table, else NULL
                const int32_t* ids,   // [n]
                int n, int dim, int vocab);

// RMSNorm: h = x[i] (+ residual[i]); out[i] = w * (h / sqrt(mean(h^2) + eps)).
// With residual non-NULL, h is also written back to residual (the fused add-norm).
// out may alias x.
int vireo_rmsnorm(vireo_stream_t stream, int dtype,
                  void* out,           // [n][dim]
                  const void* x,       // [n][dim]
                  void* residual,      // [n][dim] or NULL
                  int w_dtype,
                  const void* w,       // [dim] f32 or the activation dtype
                  int n, int dim, float eps);

// RMSNorm as above, then per-row symmetric int8 quantization of the result:
// q[i][k] = round(out/scale[i]), scale[i] = max|out[i]| / 127 (1 for a zero row).
int vireo_rmsnorm_quant(vireo_stream_t stream, int dtype,
                        int8_t* q,           // [n][dim]
                        float* scale,        // [n]
                        const void* x,       // [n][dim]
                        void* residual,      // [n][dim] or NULL
                        int w_dtype,
                        const void* w,       // [dim]
                        int n, int dim, float eps);

// Per-row symmetric int8 quantization of x (the W8A8 input of the o and down projections).
int vireo_quantize_rows(vireo_stream_t stream, int dtype,
                        int8_t* q,       // [n][dim]
                        float* scale,    // [n]
                        const void* x,   // [n][ld_x]
                        int ld_x, int n, int dim);

enum vireo_rope_style {
  VIREO_ROPE_PAIRS = 0,       // (2i, 2i+1): llama2.c, GGUF
  VIREO_ROPE_ROTATE_HALF = 1, // (i, i+d/2): HF checkpoints
};

// Rotates, in place, each of the n_heads heads of row i of x by position pos[i]:
// angle_k = pos * inv_freq[k] (computed in double, sin/cos rounded to float).
// A row with pos[i] < 0 is left as it is (an idle or ended row of a decode step whose
// positions live on the device; host paths never pass negative positions).
int vireo_rope(vireo_stream_t stream, int dtype,
               void* x,                // [n][ld_x], heads at columns h*head_dim
               int ld_x, int n, int n_heads, int head_dim,
               const int32_t* pos,     // [n]
               const float* inv_freq,  // [head_dim/2], scaling (Llama 3) applied on the host
               int style);

// out = silu(gate) * up = gate / (1 + exp(-gate)) * up.
int vireo_silu_mul(vireo_stream_t stream, int dtype,
                   void* out,          // [n][hidden]
                   const void* gate,   // [n][hidden]
                   const void* up,     // [n][hidden]
                   int n, int hidden);

// LoRA adapters per row (BGMV): for row i whose slot s = slots[i] is in [0, n_slots) and
// whose rank r = ranks[s] is in [1, max_rank],
//   t[k] = sum_c a[s*max_rank + k][c] * x[i][c]            (k < r, kept in fp32)
//   out[i][j] += sum_{k<r} t[k] * b[s*max_rank + k][j]      (b holds scale*B transposed)
// Other rows (the base model's, slot -1; out-of-range slots; empty slots) are left as
// they are. Rows of a slot beyond its rank are never read.
int vireo_lora(vireo_stream_t stream, int dtype,
               void* out,             // [n][out_dim]
               const void* x,         // [n][in]
               const void* a,         // [n_slots*max_rank][in]
               const void* b,         // [n_slots*max_rank][out_dim]
               const int32_t* ranks,  // [n_slots]
               const int32_t* slots,  // [n]
               int n, int in, int out_dim, int n_slots, int max_rank);

// out[i][:] = x[rows[i]][:], any element size. Rows outside [0, x_rows) give zeros.
int vireo_gather_rows(vireo_stream_t stream,
                      void* out,             // [n][cols]
                      const void* x,         // [x_rows][cols]
                      const int32_t* rows,   // [n]
                      int n, int cols, int x_rows, int elem_bytes);

// dst[i] = uniform draw i of seed, on the device (fill.cu): Philox4x32-10 with counter
// (i/4 as two words, 0x46494c4c, 0) and key (seed lo, seed hi), word i%4 = x;
// f32/f16/bf16: (2*u - 1) * scale with u = (x >> 8) * 2^-24 (rounded to the dtype);
// i8: (x % 255) - 127, in [-127, 127] (scale ignored). n in elements.
int vireo_fill_uniform(vireo_stream_t stream, int dtype, void* dst, size_t n, uint64_t seed, float scale);

// ---- paged attention (attention.cu) ----------------------------------------------

// k_cache/v_cache[slot/block_size][h][slot%block_size][:] = k/v[i][h*head_dim:...]
// for slot = slots[i], every kv head h. Slots outside the cache are skipped.
int vireo_write_kv(vireo_stream_t stream, int dtype,
                   void* k_cache,          // [num_blocks][kv_heads][block_size][head_dim]
                   void* v_cache,          // [num_blocks][kv_heads][block_size][head_dim]
                   const void* k,          // [n][ld_k], kv_heads*head_dim used
                   const void* v,          // [n][ld_v]
                   int ld_k, int ld_v,
                   const int32_t* slots,   // [n]
                   int n, int kv_heads, int head_dim, int block_size, int num_blocks);

// Bytes of fp32 scratch vireo_attention may use to split long contexts (split-K with a
// log-sum-exp merge). Passing less (even 0) is allowed: it then splits less.
int vireo_attention_workspace_bytes(size_t* bytes, int n_rows, int heads, int head_dim, int max_ctx);

// Causal paged attention over a mixed batch (prefill chunks and decode tokens).
// Sequence s owns query rows [q0, q0+nq) holding positions pos..pos+nq-1; its block
// table is block_tables[block_off : ...]. Query row r of sequence s attends to positions
// 0 .. pos+(r-q0) of its sequence. Rows with row_seq[r] < 0 are written as zeros.
// Query head h reads kv head h / (heads/kv_heads). head_dim <= 256, even.
int vireo_attention(vireo_stream_t stream, int dtype,
                    void* out,                  // [n_rows][ld_out], heads*head_dim used
                    const void* q,              // [n_rows][ld_q]
                    int ld_out, int ld_q,
                    const void* k_cache,        // [num_blocks][kv_heads][block_size][head_dim]
                    const void* v_cache,        // same
                    const int32_t* seqs,        // [n_seqs][4]: q0, nq, pos, block_off
                    const int32_t* row_seq,     // [n_rows]: sequence of each row, or -1
                    const int32_t* block_tables,// flattened block tables
                    int n_rows, int n_seqs, int heads, int kv_heads, int head_dim,
                    int block_size, int max_ctx, // max_ctx: largest pos+nq of the batch
                    float scale,                 // usually 1/sqrt(head_dim)
                    void* workspace, size_t workspace_bytes);

// ---- paged attention, kernels v2 (attention2.cu) ---------------------------------
//
// The same operation as vireo_attention (arguments alike; seqs, row_seq and block_tables
// as vireo_kv_index fills them, or any multi-row sequences), by a split-KV decode kernel
// with GQA grouping and 16-byte loads, and, when cfg->prefill is set, a tensor-core
// prefill kernel for tiles of bm rows that are valid rows of one sequence (at least two).
// head_dim even, <= 256; the prefill kernel takes head_dim 64 and 128 (16-byte aligned
// operands, ld_q and ld_out multiples of 8), other tiles go to the decode kernel.

enum vireo_attention2_fault {
  VIREO_ATTN2_FAULT_NONE = 0,
  VIREO_ATTN2_FAULT_DROP = 1, // decode: each split drops its last position; prefill: the last KV tile
};

// Launch configuration (Go: kmodel.Attn2Config, which picks it for a shape).
typedef struct {
  int32_t split_len;  // decode: positions per split, at least (>= 16)
  int32_t max_splits; // decode: splits per row at most (a longer context gets longer splits)
  int32_t warps;      // decode: warps per block (1..8)
  int32_t prefill;    // 1: prefill tiles on tensor cores; 0: every row by the decode kernel
  int32_t bm, bn;     // prefill: query rows per block (64, 128), keys per K/V tile (32, 64)
  int32_t fault;      // vireo_attention2_fault (0 in production)
} vireo_attention2_config;

// Bytes of workspace for a call of n_rows rows and longest context max_ctx: split
// counters (which must be zeroed once after allocation; every call leaves them zero),
// the tile plan and the splits' partial results (none when max_ctx needs one split).
// Calls sharing a workspace must be ordered (one stream).
int vireo_attention2_workspace_bytes(size_t* bytes, int n_rows, int heads, int kv_heads, int head_dim, int max_ctx,
                                     const vireo_attention2_config* cfg);

int vireo_attention2(vireo_stream_t stream, int dtype,
                     void* out, const void* q, int ld_out, int ld_q,
                     const void* k_cache, const void* v_cache,
                     const int32_t* seqs, const int32_t* row_seq, const int32_t* block_tables,
                     int n_rows, int n_seqs, int heads, int kv_heads, int head_dim,
                     int block_size, int max_ctx, float scale,
                     void* workspace, size_t workspace_bytes,
                     const vireo_attention2_config* cfg); // cfg: host

// ---- matrix products (matmul_*.cu) -----------------------------------------------

enum vireo_epilogue {
  VIREO_EPI_NONE = 0,       // out = x·Wᵀ
  VIREO_EPI_ACCUMULATE = 1, // out += x·Wᵀ (the residual add)
  VIREO_EPI_SILU_GLU = 2,   // W holds 2*n_out rows, gate rows then up rows:
                            // out[i][j] = silu(x·W[j]) * (x·W[n_out+j])
};

enum vireo_matmul_variant {
  VIREO_MM_AUTO = 0, // the library picks by shape
  VIREO_MM_SIMT = 1, // CUDA-core kernel, any shape (the reference path)
  VIREO_MM_MMA = 2,  // tensor cores (mma.sync); needs k % 32 == 0 and 16-byte aligned rows
};

// W8A16: out[i][j] (+)= w_scale[j] * Σ_k x[i][k] * w[j][k], int8 weights dequantized in
// registers, fp32 accumulation. SIMT for few rows (decode), dequant-to-f16 + mma.sync
// past about 8 rows.
int vireo_matmul_w8a16(vireo_stream_t stream, int dtype,
                       void* out,             // [n][ld_out] activation dtype
                       int ld_out,
                       const void* x,         // [n][ld_x] activation dtype
                       int ld_x,
                       const int8_t* w,       // [n_w][k] row-major; n_w = n_out (2*n_out for SILU_GLU)
                       const float* w_scale,  // [n_w]
                       int n, int n_out, int k, int epilogue, int variant);

// W8A8: out[i][j] (+)= x_scale[i] * w_scale[j] * Σ_k xq[i][k] * w[j][k], int8 tensor-core
// MMA (m16n8k32) with int32 accumulation. Needs k % 32 == 0 for the MMA variant.
int vireo_matmul_w8a8(vireo_stream_t stream, int dtype,
                      void* out,             // [n][ld_out] activation dtype
                      int ld_out,
                      const int8_t* xq,      // [n][k] per-row quantized activations
                      const float* x_scale,  // [n]
                      const int8_t* w,       // [n_w][k]
                      const float* w_scale,  // [n_w]
                      int n, int n_out, int k, int epilogue, int variant);

// 16-bit weights (the unquantized baseline): out[i][j] (+)= Σ_k x[i][k] * w[j][k],
// w in the activation dtype.
int vireo_matmul_f16(vireo_stream_t stream, int dtype,
                     void* out,          // [n][ld_out]
                     int ld_out,
                     const void* x,      // [n][ld_x]
                     int ld_x,
                     const void* w,      // [n_w][k] activation dtype
                     int n, int n_out, int k, int epilogue, int variant);

// 2:4 sparse weights (sparse24.cu; layout in runtime/backend/kinds.go): w holds the two
// kept values of every group of 4 inputs, [n_out][k/2], as the activation dtype or int8
// (then w_scale [n_out]), and meta their positions, [n_out][(k/4+1)/2] bytes, 4 bits per
// group. out[i][j] (+)= w_scale[j] * Σ_k x[i][k] * W[j][k] over the masked W.
//   - x_scale == NULL: x [n][ld_x] activations. AUTO: a SIMT kernel for up to 8 rows
//     (decode) and for any k % 4 == 0; from 9 rows, 16-bit kept values and k % 32 == 0,
//     mma.sp m16n8k32 tensor cores.
//   - x_scale != NULL: x int8 [n][k] quantized per row (W8A8) with int8 kept values:
//     mma.sp m16n8k64, k % 64 == 0.
// The epilogue is NONE or ACCUMULATE.
int vireo_matmul_sp24(vireo_stream_t stream, int dtype,
                      void* out, int ld_out,         // [n][ld_out] activation dtype
                      const void* x, int ld_x,       // [n][ld_x], or int8 [n][k] with x_scale
                      const float* x_scale,          // [n] or NULL
                      int w_dtype, const void* w,    // [n_out][k/2] kept values
                      const float* w_scale,          // [n_out] for int8 kept values, else NULL
                      const uint8_t* meta,           // [n_out][(k/4+1)/2]
                      int n, int n_out, int k, int epilogue, int variant);

// ---- matrix products, kernels v2 (matmul2*.cu) -----------------------------------
//
// One tensor-core template with a cp.async multi-stage shared-memory pipeline and a
// deterministic split-K, instantiated for a fixed table of tile configurations:
//   VIREO_MM2_W8A16: int8 weights × 16-bit activations, mma m16n8k16 (weights dequantized
//     in registers), fp32 accumulation: decode and batched decode (1–256 rows);
//   VIREO_MM2_W8A8: int8 weights × int8 activations quantized per token (x_scale),
//     mma m16n8k32, int32 accumulation: prefill;
//   VIREO_MM2_W4A16: 4-bit weights with per-group scales (runtime/quant/w4's format)
//     × 16-bit activations, mma m16n8k16 on exact integer levels, the group scales
//     applied in fp32: decode and batched decode.
// The caller (Go: runtime/backend/cuda/kmodel) picks the configuration and the split for
// a shape; the library checks them and launches. An output element's value depends on
// its own row and column, split and the weight's values only: never on the
// configuration or on n (see matmul2.cuh).

enum vireo_mm2_kind {
  VIREO_MM2_W8A16 = 0,
  VIREO_MM2_W8A8 = 1,
  VIREO_MM2_W4A16 = 2,
};

// How a W4A16 group's levels q become values (runtime/quant/w4.Mode).
enum vireo_w4_mode {
  VIREO_W4_SYM = 1,    // y = s·(q−8), s the group's f16 scale (from Q4_0)
  VIREO_W4_AFFINE = 2, // y = (d·sc)·q − dmin·mn (from Q4_K)
};

// Deliberate faults, for showing on a card that the op checks catch a broken kernel.
enum vireo_mm2_fault {
  VIREO_MM2_FAULT_NONE = 0,
  VIREO_MM2_FAULT_KSTEP = 1, // each k slice drops its last pipeline stage
  VIREO_MM2_FAULT_ROW = 2,   // the epilogue writes each row's values one row down
};

// One row of the configuration table: a block of warps_m × warps_n warps computes
// 16·m_tiles·warps_m rows × 8·n_tiles·warps_n weight rows, bk k per pipeline stage.
typedef struct {
  int32_t kind;                 // vireo_mm2_kind
  int32_t warps_m, warps_n;
  int32_t m_tiles, n_tiles;     // m16 and n8 fragments per warp
  int32_t bk, stages;
  int32_t block_rows, block_cols; // rows of x, weight rows per block
  int32_t threads;
  int32_t smem_bytes;           // dynamic shared memory per block
} vireo_mm2_config;

// Copies configuration i of the table into out (host); VIREO_ERR_ARG past the end.
int vireo_matmul2_config(int i, vireo_mm2_config* out);

typedef struct {
  int32_t kind;           // vireo_mm2_kind; must be the configuration's
  int32_t dtype;          // activation dtype of out (and of x for W8A16)
  void* out;              // [n][ld_out]
  int32_t ld_out;
  const void* x;          // W8A16: [n][ld_x] activation dtype; W8A8: int8 [n][ld_x]
  int32_t ld_x;
  const float* x_scale;   // W8A8: [n]
  const int8_t* w;        // [n_w][k]; n_w = n_out, or 2·n_out for SILU_GLU
  const float* w_scale;   // [n_w]
  int32_t n, n_out, k;    // k % 16 == 0; x, w 16-byte aligned; ld_x·elem % 16 == 0
  int32_t epilogue;       // vireo_epilogue
  // Split outputs (NONE or ACCUMULATE only): with out2 set, columns [col2, col3) of the
  // product go to out2 [n][ld_out2] (column c at c - col2) and, with out3 set, columns
  // [col3, n_out) to out3 [n][ld_out3]; out then holds columns [0, col2). NULL: unused.
  void* out2;
  int32_t ld_out2, col2;
  void* out3;
  int32_t ld_out3, col3;
  int32_t config;         // index into the table
  int32_t split;          // k slices, 1..64 (> 1 needs the workspace)
  int32_t rows_fast;      // 1: consecutive blocks walk row tiles (weight tiles stay in L2)
  int32_t fault;          // vireo_mm2_fault (0 in production)
  void* workspace;        // split > 1: vireo_matmul2_workspace_bytes, zeroed once
  size_t workspace_bytes;
  // W4A16 (kind VIREO_MM2_W4A16; w is then the levels [n_w][k/2], w_scale unused, k a
  // multiple of 32, or 256 for AFFINE):
  const uint16_t* w4_scale; // SYM: [n_w][k/32] f16; AFFINE: [n_w][k/256][2] f16 d, dmin
  const uint8_t* w4_sub;    // AFFINE: [n_w][k/32][2] the groups' 6-bit scale and min
  int32_t w4_mode;          // vireo_w4_mode
} vireo_mm2_args;

// Bytes of workspace a call with these parameters needs: fp32 (W8A16) or int32 (W8A8)
// partials of every tile and slice, then one int counter per tile. The counters must be
// zero before the first call (vireo_memset once after allocating); every call leaves
// them zero. Calls sharing a workspace must be ordered (one stream).
int vireo_matmul2_workspace_bytes(size_t* bytes, int config, int n, int n_out, int epilogue, int split);

int vireo_matmul2(vireo_stream_t stream, const vireo_mm2_args* args);

// ---- sampling (sampling.cu) ------------------------------------------------------

// Per-row sampling parameters, as Go's sampling.Params plus the draw's key. 56 bytes.
typedef struct {
  float temperature;        // 0 (or NaN, <= 0): greedy
  float top_p;              // (0,1) enables top-p
  float min_p;              // > 0 enables min-p
  float repetition_penalty; // 1 (or <= 0) disables
  float presence_penalty;
  float frequency_penalty;
  int32_t top_k;            // 0 < top_k < vocab enables top-k
  int32_t history_len;      // ids at history[history_off : history_off+history_len]
  int64_t history_off;
  uint64_t seed;            // Philox key
  uint64_t token_index;     // Philox counter: the request's draw number
} vireo_sampling_params;

// Candidates the device can sort per row; a row whose kept set cannot be bounded by
// this many tokens returns -1 (sample it on the host: runtime/sampling).
#define VIREO_SAMPLE_MAX_CANDIDATES 4096

// Scratch for vireo_sample: fp32 penalized logits and int32 counts per row. The counts
// part must be zeroed once after allocation (vireo_memset); vireo_sample leaves it zero.
int vireo_sample_workspace_bytes(size_t* bytes, int rows, int vocab);

// Samples one token per row exactly as runtime/sampling.Sampler.Sample (see that
// package's doc.go): penalties, greedy, temperature, top-k, top-p, min-p and the
// Philox4x32-10 draw keyed by (seed, token_index). out[r] = the token, or -1 when the
// row needs the host sampler (more than VIREO_SAMPLE_MAX_CANDIDATES candidates).
int vireo_sample(vireo_stream_t stream,
                 int logits_dtype,                      // f32, f16 or bf16
                 const void* logits,                    // [rows][ld]
                 int ld, int rows, int vocab,
                 const vireo_sampling_params* params,   // [rows] (device)
                 const int32_t* history,                // flattened ids (device), may be NULL
                 int32_t* out,                          // [rows]
                 void* workspace, size_t workspace_bytes);

// ---- sampling, kernels v2 (sampling2.cu) -----------------------------------------
//
// vireo_sample2 samples exactly as vireo_sample (runtime/sampling.Sampler.Sample, token
// for token) but on many blocks per row and for any number of candidates: it never
// gives a row to the host. Eleven kernels in stream order; see sampling2.cu.

// The largest vocabulary (runtime/sampling.MaxVocab: the masses' sums stay below 2^63).
#define VIREO_SAMPLE2_MAX_VOCAB (1 << 23)
// Radix passes launched per call (three digits for the filters, three for the draw).
#define VIREO_SAMPLE2_PASSES 6

enum vireo_sample2_fault {
  VIREO_SAMPLE2_FAULT_NONE = 0,
  VIREO_SAMPLE2_FAULT_DIGIT = 1, // the radix passes pick the bucket after the right one
};

// Launch configuration (Go: kmodel.Sample2Config, which picks it for a shape).
typedef struct {
  int32_t threads; // per block: a multiple of 32 in [64, 1024]
  int32_t chunk;   // vocabulary elements per block: a multiple of 256, at most 2^20
  int32_t fault;   // vireo_sample2_fault (0 in production)
} vireo_sample2_config;

// Bytes of workspace for rows × vocab with this chunk. The workspace must be zeroed once
// after allocation (vireo_memset); every call leaves the parts that must start zeroed
// zero again. Calls sharing a workspace must be ordered (one stream).
int vireo_sample2_workspace_bytes(size_t* bytes, int rows, int vocab, int chunk);

// out[r] = the token runtime/sampling draws for row r (params[r] and its history, as
// vireo_sample). rows <= 65535, vocab <= VIREO_SAMPLE2_MAX_VOCAB. cfg: host.
int vireo_sample2(vireo_stream_t stream,
                  int logits_dtype,                      // f32, f16 or bf16
                  const void* logits,                    // [rows][ld]
                  int ld, int rows, int vocab,
                  const vireo_sampling_params* params,   // [rows] (device)
                  const int32_t* history,                // flattened ids (device), may be NULL
                  int32_t* out,                          // [rows]
                  void* workspace, size_t workspace_bytes,
                  const vireo_sample2_config* cfg);

// u in [0,1) of runtime/sampling.Uniform, computed on the device (for checks).
int vireo_philox_uniform(vireo_stream_t stream,
                         float* out,               // [n]
                         const uint64_t* seeds,    // [n]
                         const uint64_t* indices,  // [n]
                         int n, uint32_t stream_id);

// ---- the paged-cache index and the decode loop on the device (decode.cu) ---------
//
// A pass's rows locate themselves in the paged cache through device memory: row i is
// the token at position pos[i] of the sequence whose block table is row seq[i] of
// tables ([n_tables][max_blocks] int32). pos[i] < 0 marks an idle (padding) or ended
// row. Eager passes and captured decode steps alike hand these to the ops (Go:
// backend.KVIndex).

// Fills, from device pos [n], seq [n] and tables [n_tables][max_blocks], the metadata of
// vireo_write_kv and vireo_attention for the pass, on the device (no host copy, so a
// step can be captured):
//   slots[i]   = tables[seq[i]][pos/bs]*bs + pos%bs, or -1 (vireo_write_kv skips the
//                row) when pos < 0, seq[i] is outside [0, n_tables), pos/bs >= max_blocks
//                or that entry is outside [0, num_blocks);
//   seqs[i]    = {i, 1, pos, seq[i]*max_blocks} (pos clamped to >= 0, seq to 0 when
//                out of range): one query row per sequence, block_tables = tables;
//   row_seq[i] = i, or -1 (vireo_attention writes the row as zeros) when the slot's
//                rules, pos+1 > max_ctx, or any entry for blocks 0..pos/bs outside
//                [0, num_blocks) say so.
// Pass the same max_ctx to vireo_attention (it fixes the split-K shape).
int vireo_kv_index(vireo_stream_t stream,
                   const int32_t* pos,     // [n]
                   const int32_t* seq,     // [n]
                   const int32_t* tables,  // [n_tables][max_blocks]
                   int n, int n_tables, int max_blocks, int block_size, int num_blocks, int max_ctx,
                   int32_t* slots,         // [n]    out
                   int32_t* seqs,          // [n][4] out
                   int32_t* row_seq);      // [n]    out

// Stop ids per row of vireo_decode_advance (Go: backend.MaxStopIDs).
#define VIREO_MAX_STOP_IDS 8
// Tokens vireo_decode_advance reports in place of a sampled id (Go: backend.TokenEnded,
// backend.TokenHost).
#define VIREO_TOKEN_ENDED (-1) // the row had ended before this step
#define VIREO_TOKEN_HOST (-2)  // vireo_sample gave -1: the host must sample; the row ends here

// One step of a device decode loop, after vireo_sample wrote next. Per row r:
//   pos[r] < 0:  out[r] = VIREO_TOKEN_ENDED; nothing else changes.
//   next[r] < 0: out[r] = VIREO_TOKEN_HOST; pos[r] = -1.
//   otherwise:   out[r] = next[r]; history[params[r].history_off + history_len] =
//                next[r] (when history is non-NULL; the caller reserves the room);
//                history_len += 1; token_index += 1; then if next[r] is one of
//                stop_ids[r][0 .. stop_count[r]) or pos[r]+1 >= limit[r], pos[r] = -1
//                (ended), else ids[r] = next[r] and pos[r] += 1.
// A row that ends also has its params set to greedy without penalties, so the sampler's
// later passes over it (the loop keeps its fixed shape) are cheap; its tokens are
// VIREO_TOKEN_ENDED from then on whatever is sampled.
int vireo_decode_advance(vireo_stream_t stream, int rows,
                         int32_t* ids,                   // [rows]
                         int32_t* pos,                   // [rows]
                         const int32_t* limit,           // [rows]
                         const int32_t* stop_ids,        // [rows][VIREO_MAX_STOP_IDS]
                         const int32_t* stop_count,      // [rows], clamped to [0, VIREO_MAX_STOP_IDS]
                         const int32_t* next,            // [rows], vireo_sample's out
                         vireo_sampling_params* params,  // [rows]
                         int32_t* history,               // the ids params index into, or NULL
                         int32_t* out);                  // [rows]: this step's tokens

#ifdef __cplusplus
}
#endif

#endif // VIREO_KERNELS_H
